"""Shutdown: SIGTERM while clients are busy stops Warren cleanly.

Each test starts its own broker, leaves it in a busy state (a consumer that reads nothing with
output pending in the broker, unacked deliveries, an exclusive queue, a transaction), then stops
it. Stopping fails if Warren exits with a status other than 0, needs SIGKILL, or a sanitizer
reports anything (scripts/test.sh runs this against the ASan build): handlers still queued in the
event loop at exit hold connections, and those must not outlive the broker they talk to.
"""
import struct
import unittest

import brokers
import rawamqp
from helpers import ConfirmedPublisher, unique, wait_for

MESSAGES = 20_000
BODY = 1024


@brokers.warren_only("stops the broker it started and checks its exit status")
class ShutdownTests(unittest.TestCase):
    def test_sigterm_with_busy_connections_exits_cleanly(self):
        broker = brokers.start_broker()
        stopped = False

        def stop_once():
            if not stopped:
                broker.stop()
        self.addCleanup(stop_once)

        conn = broker.connect()
        ch = conn.channel()
        q = unique("shutdown")
        ch.queue_declare(q)
        ch.queue_declare(unique("shutdown-exclusive"), exclusive=True)

        # A no-ack consumer that never reads: the broker has a write outstanding to it.
        stalled = rawamqp.stalled_consumer(broker.host, broker.port, q, 16384)
        self.addCleanup(stalled.close)

        # A consumer holding unacked deliveries of a second queue, and a channel in a transaction.
        work = unique("shutdown-work")
        ch.queue_declare(work)
        for i in range(50):
            ch.basic_publish("", work, b"job %d" % i)
        worker = conn.channel()
        worker.basic_qos(prefetch_count=10)
        held = []
        worker.basic_consume(work, lambda c, m, p, b: held.append(m.delivery_tag))
        wait_for(conn, lambda: len(held) == 10, 30, "10 unacked deliveries")
        tx = conn.channel()
        tx.tx_select()
        tx.basic_publish("", work, b"uncommitted")

        publisher = ConfirmedPublisher(broker.params(), "", q, MESSAGES, body=lambda i: b"x" * BODY)
        publisher.run()
        self.assertEqual(len(publisher.acks), MESSAGES)

        # Raises if Warren did not exit with status 0 or a sanitizer reported an error.
        stopped = True
        broker.stop()

    def test_sigterm_with_blocked_and_closing_connections_exits_cleanly(self):
        # Connections with no I/O pending, owned by the server alone: a publisher blocked by the
        # memory alarm (not read, nothing to write), and a client that got close-ok and keeps its
        # socket open (the broker waits for it to close first).
        broker = brokers.start_broker({"memory_high_watermark_bytes": 1 << 20})
        stopped = False

        def stop_once():
            if not stopped:
                broker.stop()
        self.addCleanup(stop_once)

        blocked = rawamqp.RawConnection(broker.host, broker.port)
        self.addCleanup(blocked.close)
        blocked.open(capabilities=("connection.blocked",))
        blocked.send(rawamqp.method(1, 20, 10, rawamqp.shortstr("")))
        self.assertEqual(blocked.read_method()[:2], (1, (20, 11)))
        q = unique("shutdown-held")
        blocked.send(rawamqp.method(1, 50, 10, struct.pack(">H", 0) + rawamqp.shortstr(q) +
                                    b"\x00" + rawamqp.table({})))  # queue.declare
        self.assertEqual(blocked.read_method()[:2], (1, (50, 11)))
        # The message stays in the queue, so the alarm stays on until the end.
        blocked.send(rawamqp.publish(1, "", q, b"x" * (2 << 20)))
        self.assertEqual(blocked.read_method()[:2], (0, (10, 60)))  # connection.blocked

        lingering = rawamqp.RawConnection(broker.host, broker.port)
        self.addCleanup(lingering.close)
        lingering.open()
        lingering.send(rawamqp.method(0, 10, 50, struct.pack(">H", 200) + rawamqp.shortstr("bye") +
                                      struct.pack(">HH", 0, 0)))
        self.assertEqual(lingering.read_method()[:2], (0, (10, 51)))

        stopped = True
        broker.stop()


if __name__ == "__main__":
    unittest.main()
