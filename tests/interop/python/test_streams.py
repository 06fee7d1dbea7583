"""Stream queues with pika: offsets of every kind, x-stream-offset on deliveries, prefetch credit,
filters, what streams refuse, and offsets tracked by the broker for a named consumer across a
reconnect and a restart. The consistent-hash exchange: same key, same queue; weights; errors.
"""
import datetime
import os
import tempfile
import unittest

import pika
import pika.exceptions

import brokers
from helpers import channel_error, connection_error, unique, wait_for

broker = None


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


def stream_args(**extra):
    return dict({"x-queue-type": "stream"}, **extra)


class StreamCase(unittest.TestCase):
    def setUp(self):
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.addCleanup(self._close)

    def _close(self):
        if self.conn.is_open:
            self.conn.close()

    def stream(self, **extra):
        name = unique("s")
        self.ch.queue_declare(name, durable=True, arguments=stream_args(**extra))
        self.addCleanup(self._delete, name)
        return name

    def _delete(self, name):
        with broker.connect() as c:
            c.channel().queue_delete(name)

    def publish(self, queue, bodies, headers=None):
        for b in bodies:
            props = pika.BasicProperties(headers=headers) if headers else None
            self.ch.basic_publish("", queue, b.encode(), props)

    def read(self, queue, n, arguments=None, prefetch=100, ack=True, conn=None, ch=None):
        """Consume n messages from `queue` with these consumer arguments: [(offset, body)]."""
        conn = conn or self.conn
        ch = ch or conn.channel()
        ch.basic_qos(prefetch_count=prefetch)
        got = []

        def on_message(c, method, props, body):
            got.append((props.headers["x-stream-offset"], body.decode()))
            if ack and len(got) <= n:  # the first n only: a named reader's offset stops there
                c.basic_ack(method.delivery_tag)
        ch.basic_consume(queue, on_message, arguments=arguments or {})
        wait_for(conn, lambda: len(got) >= n, what="%d deliveries" % n)
        # Closing the channel drops what it holds unacked (the stream keeps it). pika's
        # BlockingChannel.close() cancels its consumers first and nacks the deliveries it holds
        # undispatched (one may arrive after the n-th ack), which a stream refuses with 540; the
        # channel underneath closes without those nacks.
        ch._impl.close()
        wait_for(conn, lambda: ch.is_closed, what="channel closed")
        return got[:n]


class StreamTests(StreamCase):
    def test_offsets_first_next_numeric_timestamp_interval(self):
        q = self.stream()
        self.publish(q, ["a", "b", "c"])
        self.assertEqual(self.read(q, 3, {"x-stream-offset": "first"}), [(0, "a"), (1, "b"), (2, "c")])
        self.assertEqual(self.read(q, 2, {"x-stream-offset": 1}), [(1, "b"), (2, "c")])
        self.assertEqual(self.read(q, 3, {"x-stream-offset": -5}), [(0, "a"), (1, "b"), (2, "c")])
        self.assertEqual(self.read(q, 3, {"x-stream-offset": datetime.datetime(2000, 1, 1)}),
                         [(0, "a"), (1, "b"), (2, "c")])
        self.assertEqual(self.read(q, 3, {"x-stream-offset": "1h"}), [(0, "a"), (1, "b"), (2, "c")])
        # "last" starts at the last chunk, which holds at least the last message.
        last = self.read(q, 1, {"x-stream-offset": "last"})
        self.assertEqual(last[-1], (2, "c"))
        # "next" (and the default) see only what comes after them.
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=10)
        seen = []
        ch.basic_consume(q, lambda c, m, p, b: seen.append((p.headers["x-stream-offset"], b.decode())),
                         arguments={"x-stream-offset": "next"})
        self.conn.process_data_events(time_limit=0.3)
        self.assertEqual(seen, [])
        self.publish(q, ["d"])
        wait_for(self.conn, lambda: seen, what="the next message")
        self.assertEqual(seen, [(3, "d")])

    def test_prefetch_bounds_deliveries_and_acks_delete_nothing(self):
        q = self.stream()
        self.publish(q, ["m%d" % i for i in range(10)])
        self.assertEqual(len(self.read(q, 10, {"x-stream-offset": "first"}, prefetch=3)), 10)
        # (declare-ok's message_count is a lagging statistic at RabbitMQ: not asserted here.)
        self.assertEqual(len(self.read(q, 10, {"x-stream-offset": "first"}, prefetch=1)), 10)

    @brokers.warren_only("stream filtering is RabbitMQ 3.13's; the reference node runs 3.10")
    def test_filters(self):
        q = self.stream()
        self.publish(q, ["r1"], {"x-stream-filter-value": "red"})
        self.publish(q, ["b1"], {"x-stream-filter-value": "blue"})
        self.publish(q, ["plain"])
        self.publish(q, ["r2"], {"x-stream-filter-value": "red"})
        red = self.read(q, 2, {"x-stream-offset": "first", "x-stream-filter": "red"})
        self.assertEqual([b for _, b in red], ["r1", "r2"])
        red_plain = self.read(q, 3, {"x-stream-offset": "first", "x-stream-filter": ["red"],
                                     "x-stream-match-unfiltered": True})
        self.assertEqual([b for _, b in red_plain], ["r1", "plain", "r2"])

    def test_refusals(self):
        q = self.stream()
        with channel_error(self, 406, "PRECONDITION_FAILED - invalid property 'non-durable' for queue "
                                      "'%s-x' in vhost '/'" % q):
            self.ch.queue_declare(q + "-x", durable=False, arguments=stream_args())
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - consumer prefetch count is not set for "
                                      "'queue '%s' in vhost '/''" % q):
            ch.basic_consume(q, lambda *a: None)
            self.conn.process_data_events(time_limit=0.5)
        ch = self.conn.channel()
        with connection_error(self, 540, "NOT_IMPLEMENTED - basic.get not supported by stream queues "
                                         "queue '%s' in vhost '/'" % q):
            ch.basic_get(q)


@brokers.warren_only("x-stream-consumer-name: offsets tracked by the broker (RabbitMQ has none over AMQP 0-9-1)")
class TrackedOffsetTests(StreamCase):
    def test_named_consumer_resumes_after_reconnect(self):
        q = self.stream()
        self.publish(q, ["m%d" % i for i in range(6)])
        named = {"x-stream-consumer-name": "billing", "x-stream-offset": "first"}
        self.assertEqual([o for o, _ in self.read(q, 4, named, prefetch=1)], [0, 1, 2, 3])
        self.conn.close()
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        rest = self.read(q, 2, named)
        self.assertEqual(rest[0][0], 4)


@brokers.warren_only("x-stream-consumer-name across a broker restart")
class RestartTests(unittest.TestCase):
    def test_stream_and_tracked_offset_survive_a_restart(self):
        data = tempfile.mkdtemp(prefix="warren-streams-")
        config = {"data_dir": os.path.join(data, "d")}
        b = brokers.start_broker(config)
        try:
            with b.connect() as conn:
                ch = conn.channel()
                ch.confirm_delivery()
                ch.queue_declare("clicks", durable=True, arguments=stream_args())
                for i in range(5):
                    ch.basic_publish("", "clicks", ("c%d" % i).encode())
                ch.basic_qos(prefetch_count=10)
                acked = []

                def on_message(c, method, props, body):
                    if len(acked) < 3:
                        c.basic_ack(method.delivery_tag)
                        acked.append(props.headers["x-stream-offset"])
                ch.basic_consume("clicks", on_message, arguments={"x-stream-consumer-name": "dash",
                                                                   "x-stream-offset": "first"})
                wait_for(conn, lambda: len(acked) == 3, what="three acks")
        finally:
            b.stop()
        b = brokers.start_broker(config)
        try:
            with b.connect() as conn:
                ch = conn.channel()
                ch.basic_qos(prefetch_count=10)
                got = []
                ch.basic_consume("clicks", lambda c, m, p, body: got.append((p.headers["x-stream-offset"], body)),
                                 arguments={"x-stream-consumer-name": "dash", "x-stream-offset": "first"})
                wait_for(conn, lambda: len(got) == 2, what="the two unacked messages")
                self.assertEqual(got, [(3, b"c3"), (4, b"c4")])
        finally:
            b.stop()


@brokers.warren_only("x-consistent-hash is a plugin the test RabbitMQ node does not enable")
class ConsistentHashTests(StreamCase):
    def test_same_key_same_queue_and_weights(self):
        x = unique("chx")
        self.ch.exchange_declare(x, "x-consistent-hash")
        self.addCleanup(lambda: broker.connect().channel().exchange_delete(x))
        queues = []
        for w in ("1", "1", "2"):
            q = self.ch.queue_declare(unique("h"), exclusive=True).method.queue
            self.ch.queue_bind(q, x, w)
            queues.append(q)
        for r in range(2):
            for i in range(300):
                self.ch.basic_publish(x, "key-%d" % i, ("%d" % i).encode())
        seen = {}
        for q in queues:
            while True:
                m, _, body = self.ch.basic_get(q, auto_ack=True)
                if m is None:
                    break
                seen.setdefault(body, set()).add(q)
        self.assertEqual(len(seen), 300)
        self.assertTrue(all(len(qs) == 1 for qs in seen.values()))  # both copies of a key together
        with channel_error(self, 406, 'PRECONDITION_FAILED - The binding key must be an integer: <<"abc">>'):
            self.ch.queue_bind(queues[0], x, "abc")


if __name__ == "__main__":
    unittest.main()
