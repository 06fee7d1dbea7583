"""A full disk, end to end: Warren's data directory on a small tmpfs (mounted for the test; it
needs root or CAP_SYS_ADMIN, and the tests are skipped without it: the unit tests inject write
errors in any case).

When a write fails for want of space, the publishes it carried are nacked and nothing confirmed
is lost; Warren keeps serving consumers, takes publishes again once acknowledgements have freed
space, and starts again on the full disk after a SIGKILL. Below disk_free_limit, publishers get
connection.blocked ("low on disk") while consumers drain, and connection.unblocked after.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.request

import pika

import brokers
import procs
from helpers import ConfirmedPublisher, consume_n, message_count, unique, wait_for

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def mount_tmpfs(test, megabytes):
    """A fresh tmpfs of this size, unmounted at cleanup; skips the test if it cannot mount."""
    path = tempfile.mkdtemp(prefix="warren-disk-full-")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % megabytes, "tmpfs", path],
                         capture_output=True, text=True)
    if res.returncode != 0:
        os.rmdir(path)
        test.skipTest("cannot mount a tmpfs here (%s)" % (res.stderr.strip() or "not root"))

    def unmount():
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)
    test.addCleanup(unmount)
    return path


def numbered(size):
    return lambda i: b"%d|" % (i + 1) + b"x" * size


def seq_of(body):
    return int(body[:body.index(b"|")])


def store_metric(prometheus_port, name):
    """A warren_storage_* metric of vhost "/" off a /metrics scrape."""
    url = "http://127.0.0.1:%d/metrics" % prometheus_port
    with urllib.request.urlopen(url, timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + '{vhost="/"} '):
                return int(line.split()[-1])
    raise AssertionError("no %s for vhost / at %s" % (name, url))


@brokers.warren_only("the data directory is Warren's (RabbitMQ keeps its node directory)")
class DiskFullTests(unittest.TestCase):
    def start(self, mount, **config):
        config.update({"data_dir": os.path.join(mount, "data"), "segment_size": 1 << 20})
        broker = brokers.start_broker(config)
        self.addCleanup(broker.stop)  # SIGTERM: must exit 0, with no sanitizer report
        return broker

    def test_a_full_disk_nacks_loses_nothing_confirmed_and_recovers(self):
        mount = mount_tmpfs(self, 24)
        prometheus = procs.free_port()
        broker = self.start(mount, disk_free_limit=0,  # no alarm: the writes themselves fail
                            prometheus={"bind": "127.0.0.1", "port": prometheus})
        self.assertEqual(store_metric(prometheus, "warren_storage_write_errors_total"), 0)
        conn = broker.connect()
        q = unique("full")
        conn.channel().queue_declare(q, durable=True)
        conn.close()

        # 600 x 64 KiB does not fit in 24 MiB: the last ones are nacked.
        pub = ConfirmedPublisher(broker.params(), "", q, 600, body=numbered(65536),
                                 properties=PERSISTENT, window=64).run()
        self.assertEqual(pub.anomalies, [])
        self.assertEqual(len(pub.acks) + len(pub.nacks), 600)
        self.assertGreater(len(pub.acks), 100)
        self.assertGreater(len(pub.nacks), 0)
        self.assertIn("No space left on device", broker.log_text())
        self.assertGreater(store_metric(prometheus, "warren_storage_write_errors_total"), 0)  # seen by an operator too
        # Consumers are still served, from the full disk.
        conn = broker.connect()
        ch = conn.channel()
        ch.basic_qos(prefetch_count=5)
        taken = consume_n(conn, ch, q, 5, auto_ack=False)
        self.assertEqual([seq_of(b) for _, _, b in taken], [1, 2, 3, 4, 5])

        # Killed with the disk full, it starts again on it: every confirmed message is back
        # (nacked ones were not stored; they were only kept in memory).
        broker.restart(kill=True)
        self.assertRegex(broker.log_text(), r"storage: vhost '/': \d+ messages back in their "
                                            r"queues from \d+ records in \d+ ms \(0 dropped with "
                                            r"their queue, 0 bad records skipped")
        conn = broker.connect()
        ch = conn.channel()
        count = message_count(ch, q)
        # What the start found, in numbers: the messages back (none was consumed yet) and no bad record.
        self.assertEqual(store_metric(prometheus, "warren_storage_recovered_messages"), count)
        self.assertEqual(store_metric(prometheus, "warren_storage_recovery_bad_records"), 0)
        self.assertEqual(store_metric(prometheus, "warren_storage_recovery_unreadable_files"), 0)
        got = consume_n(conn, ch, q, count, auto_ack=True)
        present = {seq_of(b) for _, _, b in got}
        self.assertEqual(set(pub.acks) - present, set(), "confirmed and lost")
        # Delivered before the kill: redelivered, unless the disk had no room left for the
        # record of the delivery (a sidecar write failed with ENOSPC; the log says so).
        delivery_recorded = not re.search(r"\.evt: No space left on device", broker.log_text(run=1))
        self.assertEqual([seq_of(b) for _, _, b in got[:6]], [1, 2, 3, 4, 5, 6])
        self.assertEqual(got[5][0].redelivered, False)
        if delivery_recorded:
            self.assertEqual([m.redelivered for m, _, _ in got[:5]], [True] * 5)

        # Consumed, the segments are deleted: publishes are confirmed again, and kept.
        wait_for(conn, lambda: message_count(ch, q) == 0, what="an empty queue")
        again = ConfirmedPublisher(broker.params(), "", q, 50, body=numbered(65536),
                                   properties=PERSISTENT, window=16).run()
        self.assertEqual((len(again.acks), len(again.nacks)), (50, 0))
        conn.close()
        broker.restart()
        conn = broker.connect()
        self.assertEqual(message_count(conn.channel(), q), 50)
        conn.close()

    def test_below_disk_free_limit_publishers_are_blocked_and_consumers_drain(self):
        mount = mount_tmpfs(self, 64)
        broker = self.start(mount, disk_free_limit=40 * 1000 * 1000)  # 24 MB to write first
        conn = broker.connect()
        ch = conn.channel()
        q = unique("alarm")
        ch.queue_declare(q, durable=True)

        events = []
        pub = BlockablePublisher(broker.params(), q, events)
        thread = threading.Thread(target=pub.run)
        thread.start()
        self.addCleanup(lambda: (pub.stop(), thread.join(30)))
        wait_for(conn, lambda: "blocked" in events, timeout=60, what="connection.blocked")
        self.assertEqual(pub.blocked_reason, "low on disk")
        self.assertIn("disk alarm", broker.log_text())

        # The consumer is served while publishers are blocked; its acks free the segments, the
        # alarm clears, and the publisher is unblocked and gets the rest of its confirms.
        drained = []
        ch.basic_qos(prefetch_count=100)
        ch.basic_consume(q, lambda c, m, p, b: (drained.append(seq_of(b)),
                                                c.basic_ack(m.delivery_tag)))
        wait_for(conn, lambda: "unblocked" in events, timeout=60, what="connection.unblocked")
        pub.stop()
        thread.join(30)
        self.assertIsNone(pub.error)
        wait_for(conn, lambda: len(drained) >= len(pub.acks) + len(pub.nacks) and
                 not pub.outstanding, timeout=60, what="every confirmed message")
        self.assertEqual(set(pub.acks) - set(drained), set(), "confirmed and lost")
        self.assertEqual(len(drained), len(set(drained)))
        conn.close()


class BlockablePublisher:
    """Publishes persistent 16 KiB messages with confirms (window 8) until stopped, noting
    connection.blocked and connection.unblocked in `events`."""

    def __init__(self, params, queue, events):
        self.params, self.queue, self.events = params, queue, events
        self.acks, self.nacks, self.outstanding = set(), set(), set()
        self.sent = 0
        self.blocked = False
        self.blocked_reason = None
        self.stopping = False
        self.error = None

    def run(self):
        self.conn = pika.SelectConnection(self.params, on_open_callback=self._opened,
                                          on_open_error_callback=self._failed,
                                          on_close_callback=self._closed)
        self.conn.add_on_connection_blocked_callback(self._blocked)
        self.conn.add_on_connection_unblocked_callback(self._unblocked)
        self.conn.ioloop.start()

    def stop(self):
        if hasattr(self, "conn"):
            self.conn.ioloop.add_callback_threadsafe(self._stop)

    def _stop(self):
        self.stopping = True
        self._maybe_close()

    def _maybe_close(self):
        if self.stopping and not self.outstanding and self.conn.is_open:
            self.conn.close()

    def _failed(self, _conn, err):
        self.error = err
        self.conn.ioloop.stop()

    def _closed(self, _conn, reason):
        if not self.stopping:
            self.error = reason
        self.conn.ioloop.stop()

    def _opened(self, conn):
        conn.channel(on_open_callback=self._channel)

    def _channel(self, ch):
        self.ch = ch
        ch.confirm_delivery(self._confirm, callback=lambda _f: self._pump())

    def _blocked(self, _conn, frame):
        self.blocked = True
        self.blocked_reason = frame.method.reason
        self.events.append("blocked")

    def _unblocked(self, _conn, _frame):
        self.blocked = False
        self.events.append("unblocked")
        self._pump()

    def _pump(self):
        while not self.stopping and not self.blocked and len(self.outstanding) < 8:
            self.sent += 1
            self.ch.basic_publish("", self.queue, numbered(16384)(self.sent - 1), PERSISTENT)
            self.outstanding.add(self.sent)

    def _confirm(self, frame):
        m = frame.method
        into = self.acks if isinstance(m, pika.spec.Basic.Ack) else self.nacks
        tags = [t for t in self.outstanding if t <= m.delivery_tag] if m.multiple \
            else [m.delivery_tag]
        for t in tags:
            self.outstanding.discard(t)
            into.add(t)
        self._pump()
        self._maybe_close()


if __name__ == "__main__":
    unittest.main()
