"""Shutdown: SIGTERM while clients are busy stops Warren cleanly.

Each test starts its own broker, leaves it in a busy state (a consumer that reads nothing with
output pending in the broker, unacked deliveries, an exclusive queue, a transaction), then stops
it. Stopping fails if Warren exits with a status other than 0, needs SIGKILL, or a sanitizer
reports anything (scripts/test.sh runs this against the ASan build): handlers still queued in the
event loop at exit hold connections, and those must not outlive the broker they talk to.
"""
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


if __name__ == "__main__":
    unittest.main()
