"""Delivery: prefetch and fair dispatch, redelivery after a worker dies, acks and nacks, publisher
confirms, direct reply-to RPC, consumer cancel notification, exclusive consumers, qos changes
and transactions.
"""
import os
import select
import signal
import subprocess
import sys
import time
import unittest

import pika
import pika.exceptions

import brokers
import procs
from helpers import (ConfirmedPublisher, bodies, channel_error, consume_n, message_count, unique,
                     wait_for, wait_for_all)

broker = None
HERE = os.path.dirname(os.path.abspath(__file__))


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


class DeliveryCase(unittest.TestCase):
    def setUp(self):
        self.conn = self.connect()
        self.ch = self.conn.channel()

    def connect(self, **kw):
        conn = broker.connect(**kw)
        self.addCleanup(lambda: conn.is_open and conn.close())
        return conn

    def shared_queue(self, prefix="work", **kw):
        """A non-exclusive queue (several connections use it), deleted after the test."""
        q = unique(prefix)
        self.ch.queue_declare(q, **kw)
        self.addCleanup(self._delete_queue, q)
        return q

    def _delete_queue(self, q):
        conn = broker.connect()
        conn.channel().queue_delete(q)
        conn.close()

    def publish_confirmed(self, q, items, exchange=""):
        ch = self.conn.channel()
        ch.confirm_delivery()
        for body in items:
            ch.basic_publish(exchange, q, body.encode())
        ch.close()


class Collector:
    """Consumer callback that records (delivery_tag, body, redelivered)."""

    def __init__(self):
        self.got = []

    def __call__(self, _ch, method, props, body):
        self.got.append((method.delivery_tag, body.decode(), method.redelivered))

    @property
    def bodies(self):
        return [b for _, b, _ in self.got]


class PrefetchTests(DeliveryCase):
    def test_two_workers_with_prefetch_1_share_work_evenly(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["task-%02d" % i for i in range(20)])
        workers = []
        for _ in range(2):
            conn = self.connect()
            ch = conn.channel()
            ch.basic_qos(prefetch_count=1)
            held = []
            ch.basic_consume(q, lambda c, m, p, b, held=held: held.append((m.delivery_tag, b)))
            workers.append((conn, ch, held))
        done = [[], []]
        conns = [w[0] for w in workers]
        for _ in range(10):
            # Each round both workers hold exactly one task: a worker with an unacked task gets
            # nothing more, and an idle worker is never passed over while tasks are waiting.
            wait_for_all(conns, lambda: all(w[2] for w in workers), what="both workers busy")
            for i, (_conn, ch, held) in enumerate(workers):
                self.assertEqual(len(held), 1, "worker %d was given a second task" % i)
                tag, body = held.pop()
                done[i].append(body)
                ch.basic_ack(tag)
        self.assertEqual([len(d) for d in done], [10, 10])
        self.assertEqual(sorted(done[0] + done[1]), [b"task-%02d" % i for i in range(20)])
        self.assertEqual(message_count(self.ch, q), 0)

    def test_prefetch_5_without_acks_receives_exactly_5(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["m%d" % i for i in range(10)])
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=5)
        c = Collector()
        ch.basic_consume(q, c)
        wait_for(self.conn, lambda: len(c.got) >= 5, what="5 deliveries")
        # The queue answers declare after it has dispatched: 5 ready, and no 6th delivery
        # ahead of declare-ok on this channel.
        self.assertEqual(message_count(ch, q), 5)
        self.conn.process_data_events(time_limit=0)
        self.assertEqual(c.bodies, ["m0", "m1", "m2", "m3", "m4"])
        ch.basic_ack(c.got[0][0])  # one ack frees exactly one slot
        wait_for(self.conn, lambda: len(c.got) >= 6, what="6th delivery")
        self.assertEqual(message_count(ch, q), 4)
        self.conn.process_data_events(time_limit=0)
        self.assertEqual(len(c.got), 6)

    def test_qos_change_applies_to_existing_consumer(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["m%d" % i for i in range(10)])
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=1, global_qos=True)
        c = Collector()
        ch.basic_consume(q, c)
        wait_for(self.conn, lambda: c.got, what="first delivery")
        self.assertEqual(message_count(ch, q), 9)
        ch.basic_qos(prefetch_count=4, global_qos=True)  # raise the limit: 3 more flow
        wait_for(self.conn, lambda: len(c.got) >= 4, what="deliveries after raising qos")
        self.assertEqual(message_count(ch, q), 6)
        ch.basic_qos(prefetch_count=0, global_qos=True)  # unlimited: the rest flows
        wait_for(self.conn, lambda: len(c.got) >= 10, what="all deliveries")
        self.assertEqual(c.bodies, ["m%d" % i for i in range(10)])

    def test_consumer_prefetch_change_applies_to_new_consumers_only(self):
        # RabbitMQ: basic.qos with global=false sets the limit for consumers started after it.
        q1, q2 = self.shared_queue(), self.shared_queue()
        self.publish_confirmed(q1, ["a%d" % i for i in range(10)])
        self.publish_confirmed(q2, ["b%d" % i for i in range(10)])
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=1)
        old, new = Collector(), Collector()
        ch.basic_consume(q1, old)
        wait_for(self.conn, lambda: old.got, what="first delivery")
        ch.basic_qos(prefetch_count=3)
        ch.basic_consume(q2, new)
        wait_for(self.conn, lambda: len(new.got) >= 3, what="3 deliveries to the new consumer")
        self.assertEqual((message_count(ch, q1), message_count(ch, q2)), (9, 7))
        self.conn.process_data_events(time_limit=0)
        self.assertEqual((len(old.got), len(new.got)), (1, 3))

    def test_prefetch_size_is_not_implemented_540(self):
        conn = self.connect()
        with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
            conn.channel().basic_qos(prefetch_size=10)
        self.assertEqual((cm.exception.reply_code, cm.exception.reply_text),
                         (540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)"))

    def test_global_and_consumer_prefetch_both_apply(self):
        q1, q2 = self.shared_queue(), self.shared_queue()
        self.publish_confirmed(q1, ["a%d" % i for i in range(10)])
        self.publish_confirmed(q2, ["b%d" % i for i in range(10)])
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=3, global_qos=False)  # per consumer
        ch.basic_qos(prefetch_count=4, global_qos=True)   # shared by the channel
        c = Collector()
        ch.basic_consume(q1, c)
        wait_for(self.conn, lambda: len(c.got) >= 3, what="first consumer's 3")
        ch.basic_consume(q2, c)
        wait_for(self.conn, lambda: len(c.got) >= 4, what="channel limit of 4")
        self.assertEqual((message_count(ch, q1), message_count(ch, q2)), (7, 9))
        self.conn.process_data_events(time_limit=0)
        self.assertEqual(len(c.got), 4)


class RedeliveryTests(DeliveryCase):
    def test_killed_worker_messages_go_to_other_worker_redelivered(self):
        q = self.shared_queue()
        tasks = ["task-%d" % i for i in range(10)]
        self.publish_confirmed(q, tasks)
        worker = procs.spawn([sys.executable, os.path.join(HERE, "hold_worker.py"), broker.host,
                              str(broker.port), broker.user, broker.password, q, "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(procs.stop, worker, 5)
        held = self._read_worker_lines(worker, 4)  # "consuming" + 3 deliveries
        self.assertEqual(held[0], "consuming")
        held_bodies = [line.split(" ", 1)[1] for line in held[1:]]
        self.assertEqual(held_bodies, tasks[:3])

        other = self.connect()
        ch = other.channel()
        c = Collector()
        ch.basic_consume(q, lambda c_, m, p, b: (c(c_, m, p, b), ch.basic_ack(m.delivery_tag)))
        wait_for(other, lambda: len(c.got) >= 7, what="the 7 tasks nobody holds")
        self.assertEqual([(b, r) for _, b, r in c.got], [(t, False) for t in tasks[3:]])

        os.killpg(worker.pid, signal.SIGKILL)  # no close handshake: the TCP connection just dies
        worker.wait(timeout=10)
        wait_for(other, lambda: len(c.got) >= 10, what="the dead worker's 3 tasks")
        self.assertEqual([(b, r) for _, b, r in c.got[7:]], [(t, True) for t in tasks[:3]])
        self.assertEqual(message_count(ch, q), 0)
        other.process_data_events(time_limit=0)
        self.assertEqual(sorted(c.bodies), sorted(tasks))  # nothing lost, nothing extra

    def _read_worker_lines(self, proc, n, timeout=20):
        lines, buf = [], b""
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while len(lines) < n:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "worker printed only %r" % lines)
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                self.assertTrue(chunk, "worker exited early after %r" % lines)
                buf += chunk
                *complete, buf = buf.split(b"\n")
                lines += [line.decode() for line in complete]
        return lines

    def test_nack_multiple_requeues_to_original_position(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["m%d" % i for i in range(5)])
        c = Collector()
        self.ch.basic_consume(q, c)
        wait_for(self.conn, lambda: len(c.got) >= 5, what="5 deliveries")
        self.ch.basic_nack(delivery_tag=3, multiple=True, requeue=True)
        wait_for(self.conn, lambda: len(c.got) >= 8, what="3 redeliveries")
        self.assertEqual(c.got, [(1, "m0", False), (2, "m1", False), (3, "m2", False),
                                 (4, "m3", False), (5, "m4", False),
                                 (6, "m0", True), (7, "m1", True), (8, "m2", True)])
        self.ch.basic_ack(delivery_tag=8, multiple=True)
        # Had the nack not released tags 1-3, they would still be unacked and this 406s.
        with channel_error(self, 406, "PRECONDITION_FAILED - unknown delivery tag 3"):
            self.ch.basic_ack(delivery_tag=3)
            self.ch.queue_declare(q, passive=True)

    def test_nack_multiple_without_requeue_dead_letters_all(self):
        dlq = self.shared_queue("dlq")
        q = self.shared_queue(arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": dlq})
        self.publish_confirmed(q, ["m%d" % i for i in range(4)])
        c = Collector()
        self.ch.basic_consume(q, c)
        wait_for(self.conn, lambda: len(c.got) >= 4, what="4 deliveries")
        self.ch.basic_nack(delivery_tag=3, multiple=True, requeue=False)
        got = consume_n(self.conn, self.conn.channel(), dlq, 3)
        self.assertEqual([b for _, _, b in got], [b"m0", b"m1", b"m2"])
        self.ch.basic_reject(4, requeue=False)
        got = consume_n(self.conn, self.conn.channel(), dlq, 1)
        self.assertEqual(got[0][2], b"m3")

    def test_ack_of_unknown_tag_is_406_and_connection_stays_usable(self):
        q = self.shared_queue()
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - unknown delivery tag 42"):
            ch.basic_ack(42)
            ch.queue_declare(q, passive=True)  # the close arrives after this round trip
        self.assertTrue(self.conn.is_open)
        self.publish_confirmed(q, ["after"])
        self.assertEqual(bodies(self.conn.channel(), q), ["after"])

    def test_ack_tag_0_multiple_acks_everything_outstanding(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["m%d" % i for i in range(3)])
        ch = self.conn.channel()
        for _ in range(3):
            ch.basic_get(q)
        ch.basic_ack(0, multiple=True)
        with channel_error(self, 406, "PRECONDITION_FAILED - unknown delivery tag 3"):
            ch.basic_ack(3)
            ch.queue_declare(q, passive=True)

    def test_recover_requeue_redelivers_unacked(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["m0", "m1"])
        ch = self.conn.channel()
        c = Collector()
        ch.basic_consume(q, c)
        wait_for(self.conn, lambda: len(c.got) >= 2, what="2 deliveries")
        ch.basic_recover(requeue=True)
        wait_for(self.conn, lambda: len(c.got) >= 4, what="2 redeliveries")
        self.assertEqual(c.got, [(1, "m0", False), (2, "m1", False), (3, "m0", True),
                                 (4, "m1", True)])

    def test_recover_without_requeue_is_not_implemented_540(self):
        conn = self.connect()
        with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
            conn.channel().basic_recover(requeue=False)
        self.assertEqual((cm.exception.reply_code, cm.exception.reply_text),
                         (540, "NOT_IMPLEMENTED - requeue=false"))

    def test_double_ack_is_406(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["once"])
        ch = self.conn.channel()
        method, _, _ = ch.basic_get(q)
        ch.basic_ack(method.delivery_tag)
        with channel_error(self, 406, "PRECONDITION_FAILED - unknown delivery tag %d"
                           % method.delivery_tag):
            ch.basic_ack(method.delivery_tag)
            ch.queue_declare(q, passive=True)
        self.assertEqual(message_count(self.ch, q), 0)


class ConfirmTests(DeliveryCase):
    COUNT = 10000

    def test_10000_confirmed_publishes_each_confirmed_once(self):
        q = self.shared_queue("confirms")
        pub = ConfirmedPublisher(broker.params(), "", q, self.COUNT).run()
        self.assertEqual(pub.anomalies, [])
        self.assertEqual(pub.nacks, {})
        self.assertEqual(sorted(pub.acks), list(range(1, self.COUNT + 1)))
        self.assertEqual(set(pub.acks.values()), {1})
        self.assertEqual(message_count(self.ch, q), self.COUNT)

    def test_unroutable_mandatory_publish_is_returned_then_acked(self):
        pub = ConfirmedPublisher(broker.params(), "amq.direct", unique("nowhere"), 3,
                                 mandatory=True).run()
        self.assertEqual((sorted(pub.acks), pub.nacks), ([1, 2, 3], {}))
        self.assertEqual([m.reply_code for m, _, _ in pub.returned], [312, 312, 312])


class RpcTests(DeliveryCase):
    def test_rpc_over_direct_reply_to(self):
        rpc_q = self.shared_queue("rpc")
        server = self.connect()
        sch = server.channel()
        seen_reply_to = []

        def serve(ch, method, props, body):
            seen_reply_to.append(props.reply_to)
            ch.basic_publish("", props.reply_to, body.upper(),
                             pika.BasicProperties(correlation_id=props.correlation_id))
            ch.basic_ack(method.delivery_tag)
        sch.basic_consume(rpc_q, serve)

        client = self.conn.channel()
        replies = []
        client.basic_consume("amq.rabbitmq.reply-to",
                             lambda c, m, p, b: replies.append((p.correlation_id, b)),
                             auto_ack=True)
        for i in range(3):
            client.basic_publish("", rpc_q, b"request %d" % i,
                                 pika.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                                      correlation_id="c%d" % i))
        wait_for_all([self.conn, server], lambda: len(replies) >= 3, what="3 RPC replies")
        self.assertEqual(replies, [("c%d" % i, b"REQUEST %d" % i) for i in range(3)])
        # The broker hands the server a routable pseudo-queue name, not the literal one.
        for rt in seen_reply_to:
            self.assertTrue(rt.startswith("amq.rabbitmq.reply-to."), rt)
        self.assertEqual(len(set(seen_reply_to)), 1)

    def test_reply_to_without_reply_consumer_is_406(self):
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - fast reply consumer does not exist"):
            ch.basic_publish("", "whatever", b"x",
                             pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
            ch.queue_declare("", exclusive=True)

    def test_reply_consumer_must_be_no_ack(self):
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge"):
            ch.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=False)


class ConsumerTests(DeliveryCase):
    def test_consumer_is_cancelled_when_its_queue_is_deleted(self):
        q = self.shared_queue()
        ch = self.conn.channel()
        cancels = []
        ch.add_on_cancel_callback(lambda frame: cancels.append(frame.method))
        tag = ch.basic_consume(q, lambda *a: None)
        admin = self.connect().channel()
        admin.queue_delete(q)
        wait_for(self.conn, lambda: cancels, what="basic.cancel from the broker")
        self.assertEqual(cancels[0].consumer_tag, tag)
        self.assertTrue(ch.is_open)
        q2 = ch.queue_declare("", exclusive=True).method.queue  # channel still usable
        self.assertTrue(q2)

    def test_exclusive_consumer_blocks_other_consumers_with_403(self):
        q = self.shared_queue()
        self.ch.basic_consume(q, lambda *a: None, exclusive=True)
        other = self.connect()
        text = "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q
        with channel_error(self, 403, text):
            other.channel().basic_consume(q, lambda *a: None)
        with channel_error(self, 403, text):
            other.channel().basic_consume(q, lambda *a: None, exclusive=True)

    def test_exclusive_consume_on_queue_with_consumers_is_403(self):
        q = self.shared_queue()
        self.ch.basic_consume(q, lambda *a: None)
        other = self.connect()
        with channel_error(self, 403, "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use"
                           % q):
            other.channel().basic_consume(q, lambda *a: None, exclusive=True)

    def test_duplicate_consumer_tag_is_530(self):
        q = self.shared_queue()
        self.ch.basic_consume(q, lambda *a: None, consumer_tag="dup")
        with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
            # pika refuses a duplicate tag itself, so send it on a raw pika channel impl.
            self.ch._impl._send_method(pika.spec.Basic.Consume(queue=q, consumer_tag="dup"))
            self.conn.process_data_events(time_limit=5)
            self.ch.queue_declare(q, passive=True)
        self.assertEqual((cm.exception.reply_code, cm.exception.reply_text),
                         (530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'"))


class TxTests(DeliveryCase):
    def test_tx_commit_and_rollback_of_publishes(self):
        q = self.shared_queue()
        tx = self.conn.channel()
        tx.tx_select()
        for i in range(3):
            tx.basic_publish("", q, b"c%d" % i)
        self.assertEqual(message_count(self.ch, q), 0)
        tx.tx_commit()
        self.assertEqual(message_count(self.ch, q), 3)
        for i in range(2):
            tx.basic_publish("", q, b"r%d" % i)
        tx.tx_rollback()
        tx.tx_commit()  # nothing left to commit
        self.assertEqual(bodies(self.ch, q), ["c0", "c1", "c2"])

    def test_tx_commit_and_rollback_of_acks(self):
        q = self.shared_queue()
        self.publish_confirmed(q, ["a", "b", "c"])
        tx = self.conn.channel()
        tx.tx_select()
        tags = [tx.basic_get(q)[0].delivery_tag for _ in range(3)]
        self.assertEqual(tags, [1, 2, 3])
        tx.basic_ack(3, multiple=True)
        tx.tx_rollback()
        # The rolled-back ack released nothing: the tags are still unacked and can be acked.
        tx.basic_ack(2)
        tx.tx_commit()
        with channel_error(self, 406, "PRECONDITION_FAILED - unknown delivery tag 2"):
            tx.basic_ack(2)
            tx.tx_commit()
        # Closing the channel (here: by the error) requeues the two messages never acked.
        got = consume_n(self.conn, self.ch, q, 2)
        self.assertEqual([(b, m.redelivered) for m, _, b in got], [(b"a", True), (b"c", True)])

    def test_confirm_select_on_tx_channel_is_406(self):
        ch = self.conn.channel()
        ch.tx_select()
        with channel_error(self, 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode"):
            ch.confirm_delivery()

    def test_tx_commit_without_select_is_406(self):
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - channel is not transactional"):
            ch.tx_commit()


if __name__ == "__main__":
    unittest.main()
