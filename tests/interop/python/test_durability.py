"""Durability with real clients: what survives when the broker is stopped (SIGTERM) or killed
(SIGKILL) and started again on the same data directory and port.

Durable exchanges, queues (with their arguments) and bindings come back, transient and exclusive
ones do not; persistent messages in durable queues come back in order with their properties and
headers; deliveries not acknowledged at the crash come back redelivered; TTL deadlines are
absolute; every queue feature works on a recovered queue. Tests marked Warren-only say where
RabbitMQ 3.10 differs (run with --broker rabbitmq: the RabbitMQ fixture restarts too, but a
restart takes it 5-10 s). The crash test with many clients is test_crash.py.
"""
import os
import re
import threading
import time
import unittest

import pika
import pika.exceptions

import brokers
from brokers import warren_only
from helpers import ConfirmedPublisher, bodies, get_all, message_count, unique, wait_for

broker = None
PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)
# RabbitMQ 3.10 writes durable declarations and classic-queue acks lazily: killed at once, it
# lost queues it had answered declare-ok for (a quorum queue's Raft member did not restart), and
# brought back acknowledged messages. So that
# the comparison is about recovery, RabbitMQ gets a moment before its SIGKILL; Warren does not
# (it answers declare-ok once the declaration is synced, and writes an ack before anything that
# follows it goes out).
RABBIT_SETTLE_SECONDS = 2.0
# After a SIGKILL, RabbitMQ 3.10 marks every recovered classic-queue message redelivered;
# Warren only those that were delivered (or on their way to a consumer) when it died.
RABBIT_ALL_REDELIVERED = "RabbitMQ 3.10 marks every message redelivered after a SIGKILL"


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


def halt_broker(kill):
    if kill and brokers.is_rabbitmq():
        time.sleep(RABBIT_SETTLE_SECONDS)  # see RABBIT_SETTLE_SECONDS
    broker.halt(kill=kill)


def close_quietly(conn):
    try:
        if conn.is_open:
            conn.close()
    except Exception:
        pass  # the broker is gone: nothing to close


def props_dict(p):
    """The basic properties a client set, as a comparable dict."""
    return {k: getattr(p, k) for k in (
        "content_type", "content_encoding", "headers", "delivery_mode", "priority",
        "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type", "user_id",
        "app_id", "cluster_id")}


class RestartCase(unittest.TestCase):
    """A connection and channel that follow the broker across restarts. Each test class runs
    with SIGTERM restarts, and its ...AfterCrash subclass with SIGKILL ones."""

    kill = False

    def setUp(self):
        if not broker.is_running():
            broker.start_again()  # a test that failed while the broker was down
        self.conns = []
        self.addCleanup(lambda: [close_quietly(c) for c in self.conns])
        self.connect()

    def connect(self):
        self.conn = broker.connect()
        self.conns.append(self.conn)
        self.ch = self.conn.channel()
        self.pub = self.conn.channel()
        self.pub.confirm_delivery()
        return self.conn

    def restart(self, kill):
        """SIGTERM (Warren must exit 0) or SIGKILL the broker, start it again on the same data
        and port, and reconnect."""
        halt_broker(kill)
        broker.start_again()
        if broker.kind == "warren":  # start-up says what it recovered and how long it took
            self.assertRegex(broker.log_text(), r"storage: \S+ ready in \d+ ms: 1 vhosts, \d+ "
                                                r"users, (\d+ policies, )?\d+ exchanges, \d+ queues, \d+ "
                                                r"bindings, \d+ messages restored")
        for c in self.conns:
            close_quietly(c)
        self.connect()

    def queue(self, prefix, durable=True, **kw):
        q = unique(prefix)
        self.ch.queue_declare(q, durable=durable, **kw)
        return q

    def publish(self, exchange, routing_key, body, props=PERSISTENT, mandatory=False):
        # Confirmed one by one: BlockingChannel raises on basic.nack or basic.return.
        self.pub.basic_publish(exchange, routing_key, body.encode(), props, mandatory=mandatory)

    def exists(self, kind, name):
        """Passive declare: True, or False on 404 (which closes the channel, so reopen it)."""
        try:
            if kind == "queue":
                self.ch.queue_declare(name, passive=True)
            else:
                self.ch.exchange_declare(name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 404)
            self.ch = self.conn.channel()
            return False


class DefinitionTests(RestartCase):
    def test_durable_definitions_survive_and_transient_ones_do_not(self):
        ch = self.ch
        x = {k: unique("x-" + k) for k in ("direct", "topic", "fanout", "headers", "alt",
                                           "transient")}
        ch.exchange_declare(x["alt"], "fanout", durable=True)
        ch.exchange_declare(x["direct"], "direct", durable=True,
                            arguments={"alternate-exchange": x["alt"]})
        ch.exchange_declare(x["topic"], "topic", durable=True)
        ch.exchange_declare(x["fanout"], "fanout", durable=True)
        ch.exchange_declare(x["headers"], "headers", durable=True)
        ch.exchange_declare(x["transient"], "direct", durable=False)
        args = {"x-max-length": 100, "x-message-ttl": 600000, "x-max-priority": 5,
                "x-dead-letter-exchange": x["alt"]}
        qa = self.queue("qa", arguments=args)
        qb = self.queue("qb")
        qt = self.queue("qt", durable=False)
        qx = self.queue("qx", durable=False, exclusive=True)
        qxd = self.queue("qxd", durable=True, exclusive=True)
        qad = self.queue("qad", auto_delete=True)  # never consumed: it stays
        qtad = self.queue("qtad", durable=False, auto_delete=True)
        ch.queue_bind(qa, x["direct"], "k1")
        ch.queue_bind(qa, "amq.direct", "k2-" + qa)
        ch.queue_bind(qb, x["topic"], "a.#")
        ch.queue_bind(qb, x["headers"], "", arguments={"x-match": "all", "h": "v"})
        ch.queue_bind(qb, "amq.topic", qb + ".*")
        ch.queue_bind(qb, x["alt"])
        ch.exchange_bind(x["direct"], x["fanout"])  # exchange to exchange
        ch.queue_bind(qt, x["direct"], "k1")  # to a transient queue: gone with it
        ch.queue_bind(qa, x["transient"], "k1")  # from a transient exchange: gone with it

        self.restart(self.kill)

        for name in ("direct", "topic", "fanout", "headers", "alt"):
            self.assertTrue(self.exists("exchange", x[name]), name)
        self.assertFalse(self.exists("exchange", x["transient"]))
        for q in (qa, qb, qad):
            self.assertTrue(self.exists("queue", q), q)
        for q in (qt, qx, qxd, qtad):
            self.assertFalse(self.exists("queue", q), q)

        # Arguments, flags and types came back: an equal declare is fine, another is not.
        self.ch.queue_declare(qa, durable=True, arguments=args)
        self.ch.exchange_declare(x["direct"], "direct", durable=True,
                                 arguments={"alternate-exchange": x["alt"]})
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
            self.ch.queue_declare(qa, durable=True, arguments=dict(args, **{"x-max-length": 7}))
        self.assertEqual(cm.exception.reply_code, 406)
        self.assertIn("x-max-length", cm.exception.reply_text)
        self.ch = self.conn.channel()
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
            self.ch.queue_declare(qad, durable=True, auto_delete=False)
        self.assertEqual(cm.exception.reply_code, 406)
        self.ch = self.conn.channel()
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
            self.ch.exchange_declare(x["direct"], "fanout", durable=True)
        self.assertEqual(cm.exception.reply_code, 406)
        self.ch = self.conn.channel()

        # Bindings came back: every route below reaches its queue once.
        self.publish(x["direct"], "k1", "direct k1")
        self.publish("amq.direct", "k2-" + qa, "amq.direct k2")
        self.publish(x["fanout"], "k1", "fanout to direct k1")  # exchange to exchange
        self.publish(x["direct"], "nowhere", "alternate")  # alternate-exchange argument
        self.publish(x["topic"], "a.b.c", "topic a.#")
        self.pub.basic_publish(x["headers"], "", b"headers h=v",
                               pika.BasicProperties(delivery_mode=2, headers={"h": "v"}))
        self.publish("amq.topic", qb + ".x", "amq.topic")
        self.assertEqual(bodies(self.ch, qa), ["direct k1", "amq.direct k2",
                                               "fanout to direct k1"])
        self.assertEqual(bodies(self.ch, qb), ["alternate", "topic a.#", "headers h=v",
                                               "amq.topic"])

    def test_recovered_auto_delete_queue_is_deleted_when_its_consumer_cancels(self):
        q = self.queue("auto-delete", auto_delete=True)
        self.restart(self.kill)
        tag = self.ch.basic_consume(q, lambda *a: None)
        self.ch.basic_cancel(tag)
        self.assertFalse(self.exists("queue", q))


class DefinitionAfterCrashTests(DefinitionTests):
    kill = True


class MessageTests(RestartCase):
    def test_persistent_messages_come_back_in_order_with_properties_and_headers(self):
        q = self.queue("messages")
        q_transient = self.queue("transient-queue", durable=False)
        x = unique("fanout")
        self.ch.exchange_declare(x, "fanout", durable=True)
        copies = [self.queue("copy"), self.queue("copy")]
        for c in copies:
            self.ch.queue_bind(c, x)
        sent = []
        for i in range(20):
            persistent = i % 3 != 1
            props = pika.BasicProperties(
                content_type="application/json", content_encoding="utf-8",
                headers={"n": i, "s": "text %d" % i, "neg": -i, "big": 2 ** 40 + i,
                         "flag": i % 2 == 0, "nested": {"k": "v", "list": [1, "two"]},
                         "list": [i, "x", {"in": "list"}],
                         "x-death": [{"count": 1, "reason": "rejected", "queue": "q0",
                                      "exchange": "", "routing-keys": ["q0"]}]},
                delivery_mode=2 if persistent else 1, priority=i % 10,
                correlation_id="corr-%d" % i, reply_to="reply-%d" % i,
                expiration="600000", message_id="id-%d" % i, timestamp=1700000000 + i,
                type="type-%d" % i, user_id="guest", app_id="app")
            self.pub.basic_publish("", q, b"m%d" % i, props)
            if persistent:
                sent.append((b"m%d" % i, props_dict(props)))
        big = bytes(range(256)) * 4096  # 1 MiB: several frames, one record
        self.pub.basic_publish("", q, big, PERSISTENT)
        sent.append((big, props_dict(PERSISTENT)))
        self.publish("", q_transient, "persistent, in a transient queue")
        self.publish(x, "", "fanned out")

        self.restart(self.kill)

        got = get_all(self.ch, q)
        self.assertEqual([b for _, _, b in got], [b for b, _ in sent])
        for (method, props, body), (_, expected) in zip(got, sent):
            if not (self.kill and brokers.is_rabbitmq()):  # RABBIT_ALL_REDELIVERED
                self.assertFalse(method.redelivered)
            self.assertEqual(props_dict(props), expected, body[:8])
        self.assertFalse(self.exists("queue", q_transient))
        for c in copies:
            self.assertEqual(bodies(self.ch, c), ["fanned out"])

    def test_deliveries_not_acked_at_the_crash_come_back_redelivered(self):
        q = self.queue("unacked")
        for i in range(10):
            self.publish("", q, "m%d" % i)
        consumer = self.conn.channel()
        consumer.basic_qos(prefetch_count=4)
        tags = []
        consumer.basic_consume(q, lambda c, m, p, b: tags.append(m.delivery_tag))
        wait_for(self.conn, lambda: len(tags) == 4, what="4 deliveries")
        consumer.basic_ack(tags[1], multiple=True)  # m0 and m1
        wait_for(self.conn, lambda: len(tags) == 6, what="2 more deliveries after the ack")
        consumer.basic_qos(prefetch_count=4)  # a round trip after the ack

        self.restart(self.kill)

        got = [(b.decode(), m.redelivered) for m, _, b in get_all(self.ch, q)]
        # m2-m5 were delivered: redelivered; m6-m9 were not (RABBIT_ALL_REDELIVERED).
        all_redelivered = self.kill and brokers.is_rabbitmq()
        self.assertEqual(got, [("m%d" % i, i < 6 or all_redelivered) for i in range(2, 10)])

    def test_quorum_queue_keeps_transient_messages(self):
        q = self.queue("quorum", arguments={"x-queue-type": "quorum"})
        self.publish("", q, "transient", TRANSIENT)
        self.publish("", q, "persistent")
        self.restart(self.kill)
        self.assertEqual(bodies(self.ch, q), ["transient", "persistent"])


class MessageAfterCrashTests(MessageTests):
    kill = True


class RepeatedCrashTests(RestartCase):
    @warren_only("x-delivery-count on classic queues (RabbitMQ: quorum queues only)")
    def test_redeliveries_after_crashes_count_in_x_delivery_count(self):
        q = self.queue("counted")
        for i in range(3):
            self.publish("", q, "m%d" % i)
        for crash in range(1, 3):
            # Each time, m0 is delivered and left unacked; the rest is never delivered.
            consumer = self.conn.channel()
            consumer.basic_qos(prefetch_count=1)
            got = []
            consumer.basic_consume(q, lambda c, m, p, b: got.append((m, p)))
            wait_for(self.conn, lambda: got, what="a delivery")
            method, props = got[0]
            self.assertEqual(method.redelivered, crash > 1)
            self.assertEqual((props.headers or {}).get("x-delivery-count"),
                             crash - 1 if crash > 1 else None)
            self.restart(kill=True)
        got = get_all(self.ch, q)
        self.assertEqual([(b, m.redelivered, (p.headers or {}).get("x-delivery-count"))
                          for m, p, b in got],
                         [(b"m0", True, 2), (b"m1", False, None), (b"m2", False, None)])


class TtlTests(RestartCase):
    def test_deadlines_are_absolute_and_what_expired_while_down_is_dead_lettered(self):
        # E's and Q's deadlines pass while the broker is down; A's is nearer than that of B,
        # which is published after the restart with a TTL shorter than A's: A reaches the
        # dead-letter queue before B only if its deadline is counted from its publication, not
        # from the restart (A's may pass while the broker is down too: RabbitMQ takes seconds
        # to restart). L stays.
        dlq = self.queue("ttl-dlq")
        dl = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
        q = self.queue("ttl", arguments=dl)
        q_after = self.queue("ttl-after", arguments=dl)
        q_queue_ttl = self.queue("queue-ttl", arguments=dict(dl, **{"x-message-ttl": 300}))
        for body, ttl in (("E", "300"), ("A", "2500"), ("L", "600000")):
            self.publish("", q, body, pika.BasicProperties(delivery_mode=2, expiration=ttl))
        self.publish("", q_queue_ttl, "Q")
        published = time.monotonic()

        halt_broker(self.kill)
        # Down for at least 1.5 s: E and Q are past their deadlines, A is not yet.
        time.sleep(max(0.0, published + 1.5 - time.monotonic()))
        broker.start_again()
        for c in self.conns:
            close_quietly(c)
        self.connect()
        self.publish("", q_after, "B", pika.BasicProperties(delivery_mode=2,
                                                            expiration="2000"))
        dead = []
        self.ch.basic_consume(dlq, lambda c, m, p, b: dead.append((b.decode(), p)),
                              auto_ack=True)
        wait_for(self.conn, lambda: len(dead) == 4, what="4 dead letters")
        self.assertEqual(sorted(b for b, _ in dead[:3]), ["A", "E", "Q"])
        self.assertEqual(dead[3][0], "B")
        for body, props in dead:
            death = props.headers["x-death"][0]
            self.assertEqual((death["reason"], death["count"]), ("expired", 1), body)
        [(_, props, body)] = get_all(self.ch, q)
        self.assertEqual((body, props.expiration), (b"L", "600000"))


class TtlAfterCrashTests(TtlTests):
    kill = True


class RecoveredQueueTests(RestartCase):
    """Queue features on queues recovered from disk, holding recovered messages."""

    def test_priorities(self):
        q = self.queue("priority", arguments={"x-max-priority": 10})
        for body, priority in (("p1a", 1), ("p5a", 5), ("p1b", 1), ("p9", 9), ("p5b", 5),
                               ("p0", 0)):
            self.publish("", q, body, pika.BasicProperties(delivery_mode=2, priority=priority))
        self.restart(self.kill)
        self.publish("", q, "p7", pika.BasicProperties(delivery_mode=2, priority=7))
        self.assertEqual(bodies(self.ch, q), ["p9", "p7", "p5a", "p5b", "p1a", "p1b", "p0"])

    def test_dead_lettering_keeps_and_extends_x_death(self):
        dlq = self.queue("dlq")
        q = self.queue("dl", arguments={"x-dead-letter-exchange": "",
                                        "x-dead-letter-routing-key": dlq})
        self.publish("", q, "before")
        self.publish("", q, "after")
        method, _, _ = self.ch.basic_get(q)
        self.ch.basic_reject(method.delivery_tag, requeue=False)  # dead-lettered before
        wait_for(self.conn, lambda: message_count(self.ch, dlq) == 1, what="a dead letter")
        self.restart(self.kill)
        method, _, body = self.ch.basic_get(q)
        self.assertEqual(body, b"after")
        self.ch.basic_reject(method.delivery_tag, requeue=False)  # dead-lettered after
        got = []
        self.ch.basic_consume(dlq, lambda c, m, p, b: got.append((b, p.headers)), auto_ack=True)
        wait_for(self.conn, lambda: len(got) == 2, what="2 dead letters")
        for body, headers in got:
            death = headers["x-death"][0]
            self.assertEqual((death["queue"], death["reason"], death["count"]),
                             (q, "rejected", 1), body)
        self.assertEqual([b for b, _ in got], [b"before", b"after"])

    def test_max_length_drops_from_the_head(self):
        dlq = self.queue("maxlen-dlq")
        q = self.queue("maxlen", arguments={"x-max-length": 3, "x-dead-letter-exchange": "",
                                            "x-dead-letter-routing-key": dlq})
        for i in range(3):
            self.publish("", q, "m%d" % i)
        self.restart(self.kill)
        self.publish("", q, "m3")
        self.assertEqual(bodies(self.ch, q), ["m1", "m2", "m3"])
        [(_, props, body)] = get_all(self.ch, dlq)
        self.assertEqual((body, props.headers["x-death"][0]["reason"]), (b"m0", "maxlen"))

    def test_max_length_reject_publish_nacks(self):
        q = self.queue("reject", arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        self.publish("", q, "m0")
        self.publish("", q, "m1")
        self.restart(self.kill)
        with self.assertRaises(pika.exceptions.NackError):
            self.publish("", q, "m2")
        self.assertEqual(bodies(self.ch, q), ["m0", "m1"])

    def _delivery_limit(self, arguments):
        dlq = self.queue("limit-dlq")
        q = self.queue("limit", arguments=dict(arguments, **{
            "x-delivery-limit": 2, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq}))
        self.publish("", q, "poison")
        consumer = self.conn.channel()
        seen = []
        consumer.basic_consume(q, lambda c, m, p, b: seen.append(m))
        wait_for(self.conn, lambda: seen, what="the first delivery")  # not acked: the crash
        self.restart(self.kill)
        seen = []

        def requeue(c, method, props, body):
            seen.append((method.redelivered, (props.headers or {}).get("x-delivery-count")))
            c.basic_reject(method.delivery_tag, requeue=True)
        self.conn.channel().basic_consume(q, requeue)
        got = []
        self.ch.basic_consume(dlq, lambda c, m, p, b: got.append((b, p.headers)), auto_ack=True)
        wait_for(self.conn, lambda: got, what="the message dead-lettered at its limit")
        # Delivered once before the restart, twice after: the third delivery is over the limit.
        self.assertEqual(seen, [(True, 1), (True, 2)])
        self.assertEqual(got[0][1]["x-death"][0]["reason"], "delivery_limit")

    def test_delivery_limit_on_a_quorum_queue(self):
        self._delivery_limit({"x-queue-type": "quorum"})

    @warren_only("x-delivery-limit and x-delivery-count on classic queues (RabbitMQ: quorum only)")
    def test_delivery_limit_on_a_classic_queue(self):
        self._delivery_limit({})

    def test_single_active_consumer(self):
        q = self.queue("sac", arguments={"x-single-active-consumer": True})
        for i in range(4):
            self.publish("", q, "m%d" % i)
        self.restart(self.kill)
        first, second = self.conn.channel(), self.conn.channel()
        got = {"first": [], "second": []}
        tag = first.basic_consume(q, lambda c, m, p, b: got["first"].append(b), auto_ack=True)
        second.basic_consume(q, lambda c, m, p, b: got["second"].append(b), auto_ack=True)
        wait_for(self.conn, lambda: len(got["first"]) == 4, what="4 deliveries to the first")
        first.basic_cancel(tag)
        self.publish("", q, "m4")
        wait_for(self.conn, lambda: got["second"], what="a delivery to the second")
        self.assertEqual(got, {"first": [b"m0", b"m1", b"m2", b"m3"], "second": [b"m4"]})


class RecoveredQueueAfterCrashTests(RecoveredQueueTests):
    kill = True


class ShutdownTests(RestartCase):
    def test_sigterm_while_publishers_are_busy_keeps_every_confirmed_message(self):
        # Three publishers with confirms (window 256) run until the broker stops under them.
        q = self.queue("sigterm")
        publishers = [ConfirmedPublisher(broker.params(), "", q, 10 ** 6, window=256,
                                         properties=PERSISTENT, timeout=120,
                                         body=lambda i, p=p: b"%d.%d" % (p, i + 1))
                      for p in range(3)]
        errors = []

        def run(pub):
            try:
                pub.run()
            except Exception as e:  # the connection closed under it: the broker stopped
                errors.append(repr(e))
        threads = [threading.Thread(target=run, args=(p,)) for p in publishers]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(len(p.acks) for p in publishers) < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the publishers' own threads
        try:
            broker.halt()  # SIGTERM mid-stream; Warren must exit 0
        finally:
            for t in threads:
                t.join(60)
        self.assertEqual(len(errors), 3, errors)
        for p in publishers:
            self.assertEqual(p.anomalies, [])
            self.assertEqual(p.nacks, {})
        broker.start_again()
        for c in self.conns:
            close_quietly(c)
        self.connect()

        got = [b.decode() for _, _, b in get_all(self.ch, q)]
        self.assertEqual(len(got), len(set(got)), "a message came back twice")
        present = set(got)
        for n, p in enumerate(publishers):
            confirmed = {"%d.%d" % (n, seq) for seq in p.acks}
            self.assertGreater(len(confirmed), 0)
            self.assertEqual(confirmed - present, set(), "confirmed and lost")
            # In publication order: a publisher's messages keep their order in the queue.
            mine = [int(b.split(".")[1]) for b in got if b.startswith("%d." % n)]
            self.assertEqual(mine, sorted(mine))
        if broker.kind == "warren":
            log = broker.log_text()
            self.assertRegex(log, r"storage: vhost '/': %d messages back in their queues from the "
                                  r"clean shutdown's checkpoint" % len(got))
            self.assertRegex(log, r"storage: \S+ ready in \d+ ms: .* \d+ messages restored")


@warren_only("Warren's segment indexes")
class SegmentIndexTests(unittest.TestCase):
    """After a SIGKILL, the sealed segments are read from their indexes (the log says how many),
    and every message comes back with what happened to it."""

    def test_a_start_after_sigkill_reads_sealed_segments_from_their_indexes(self):
        own = brokers.start_broker({"segment_size": 1 << 20})  # 1 MiB: a few sealed segments
        try:
            conn = own.connect()
            ch = conn.channel()
            ch.confirm_delivery()
            q = unique("indexed")
            ch.queue_declare(q, durable=True)
            for n in range(80):  # 80 x 60 KiB: four sealed segments and a head
                ch.basic_publish("", q, ("%03d" % n).encode() + b"." * 60000, PERSISTENT)
            for _ in range(5):  # the first five settled
                method, _, _ = ch.basic_get(q)
                ch.basic_ack(method.delivery_tag)
            method, _, body = ch.basic_get(q)  # the sixth delivered, not acknowledged
            self.assertEqual(body[:3], b"005")
            ch.basic_qos(prefetch_count=1)  # a round trip: the ack and the delivery are written
            # The sealed segments' indexes are written by a store thread after the roll: the kill
            # comes once each sealed segment has its .idx (every .seg but the head's).
            def indexed():
                names = [n for _, _, files in os.walk(own.data_dir) for n in files]
                segs = sum(n.endswith(".seg") for n in names)
                idxs = sum(n.endswith(".idx") for n in names)
                return segs >= 5 and idxs == segs - 1
            wait_for(conn, indexed, what="an index for every sealed segment")
            own.halt(kill=True)
            own.start_again()
            log = own.log_text()
            m = re.search(r"storage: vhost '/': 75 messages back in their queues from \d+ records in \d+ ms "
                          r"\(.*; (\d+) of (\d+) segments read from their index\)", log)
            self.assertIsNotNone(m, log[-2000:])
            self.assertGreaterEqual(int(m.group(1)), 4)
            self.assertEqual(int(m.group(2)), int(m.group(1)) + 1)  # the head was read whole
            conn = own.connect()
            ch = conn.channel()
            got = get_all(ch, q)
            self.assertEqual([b[:3].decode() for _, _, b in got], ["%03d" % n for n in range(5, 80)])
            self.assertEqual([len(b) for _, _, b in got], [60003] * 75)
            self.assertEqual([m.redelivered for m, _, _ in got], [True] + [False] * 74)
            conn.close()
        finally:
            own.stop()


@warren_only("Warren's segment reuse")
class SegmentReuseTests(unittest.TestCase):
    """A settled segment's file is kept (*.spare) and the next segment is written over it; after a
    SIGKILL nothing of the file's earlier messages comes back, and the later ones all do."""

    def test_a_segment_written_over_a_settled_one_survives_sigkill_without_its_predecessor(self):
        own = brokers.start_broker({"segment_size": 1 << 20})  # 1 MiB; segment_reuse 1 is the default
        try:
            conn = own.connect()
            ch = conn.channel()
            ch.confirm_delivery()
            q = unique("reused")
            ch.queue_declare(q, durable=True)

            def files(suffix):
                return [n for _, _, names in os.walk(own.data_dir) for n in names if n.endswith(suffix)]

            def contents(name):
                path = next(os.path.join(d, name) for d, _, names in os.walk(own.data_dir) if name in names)
                with open(path, "rb") as f:
                    return f.read()

            for n in range(60):  # 60 x 60 KiB: three sealed segments and a head
                ch.basic_publish("", q, ("a%03d" % n).encode() + b"a" * 60000, PERSISTENT)
            for _ in range(60):
                method, _, _ = ch.basic_get(q)
                ch.basic_ack(method.delivery_tag)
            ch.basic_qos(prefetch_count=1)  # a round trip: the acks are written
            wait_for(conn, lambda: files(".spare"), what="a settled segment kept for reuse")
            spare = files(".spare")[0]
            n = 0
            while spare in files(".spare") and n < 40:  # until a new segment was written into it
                ch.basic_publish("", q, ("b%03d" % n).encode() + b"b" * 60000, PERSISTENT)
                n += 1
            self.assertNotIn(spare, files(".spare"))
            for _ in range(5):
                ch.basic_publish("", q, ("b%03d" % n).encode() + b"b" * 60000, PERSISTENT)
                n += 1
            # The head is that segment: after its own b messages, the a messages it held before.
            head = contents(max(files(".seg")))
            self.assertTrue(b"b" * 60000 in head)
            self.assertTrue(b"a" * 60000 in head, "the head is not a reused segment")
            for _ in range(3):
                method, _, _ = ch.basic_get(q)
                ch.basic_ack(method.delivery_tag)
            method, _, body = ch.basic_get(q)  # delivered, not acknowledged
            self.assertEqual(body[:4], b"b003")
            ch.basic_qos(prefetch_count=1)
            own.halt(kill=True)
            own.start_again()
            log = own.log_text()
            self.assertRegex(log, r"storage: vhost '/': %d messages back in their queues from \d+ records in \d+ ms "
                                  r"\(0 dropped with their queue, 0 bad records skipped, 0 torn tails cut;" % (n - 3))
            self.assertNotIn("[warning] storage", log)
            conn = own.connect()
            ch = conn.channel()
            got = get_all(ch, q)
            self.assertEqual([b[:4].decode() for _, _, b in got], ["b%03d" % i for i in range(3, n)])
            self.assertTrue(all(b[4:] == b"b" * 60000 for _, _, b in got))
            self.assertEqual([m.redelivered for m, _, _ in got], [True] + [False] * (n - 4))
            self.assertEqual(files(".spare"), [])  # deleted at the start
            conn.close()
        finally:
            own.stop()


if __name__ == "__main__":
    unittest.main()
