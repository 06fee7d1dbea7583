"""Flow control: a consumer that stops reading its socket cannot make the broker's memory grow.

Deliveries to a connection stop while its unsent output is above connection_output_high_water
(4 MiB), so messages for a no-ack consumer that does not read stay in the queue instead of piling
up in output buffers. This is the only bound on no-ack consumers.
"""
import os
import time
import unittest

import brokers
import procs
import rawamqp
from helpers import ConfirmedPublisher, message_count, unique, wait_for

broker = None
MESSAGES = 200_000
BODY = 512


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def settled_count(conn, ch, q, timeout=60):
    """The queue's ready count once it has stopped changing for a second."""
    last, same_since = None, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = message_count(ch, q)
        now = time.monotonic()
        if count != last:
            last, same_since = count, now
        elif now - same_since >= 1.0:
            return count
        conn.process_data_events(time_limit=0.1)
    raise AssertionError("the queue count of %s never settled" % q)


def server_socket_inode(server_port, client_port):
    """The inode of the broker's end of the loopback TCP connection from client_port."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == server_port and
                    int(remote.split(":")[1], 16) == client_port):
                return fields[9]
    raise AssertionError("no server socket for client port %d" % client_port)


def open_socket_inodes(pid):
    """The inodes of the sockets process pid has open."""
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[len("socket:["):-1])
    return out


class SlowConsumerTests(unittest.TestCase):
    @brokers.warren_only("reads the broker's RSS from /proc (Warren's process id)")
    def test_stalled_no_ack_consumer_does_not_grow_broker_memory(self):
        conn = broker.connect()
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        q = unique("stalled")
        ch.queue_declare(q)
        self.addCleanup(lambda: broker.connect().channel().queue_delete(q))

        # A raw no-ack consumer with a small receive buffer that never reads again.
        stalled = rawamqp.stalled_consumer(broker.host, broker.port, q, 65536)

        before = rss_bytes(broker.pid)
        publisher = ConfirmedPublisher(broker.params(), "", q, MESSAGES, body=lambda i: b"x" * BODY)
        publisher.run()
        self.assertEqual(len(publisher.acks), MESSAGES)

        # Let deliveries run until they stop: the queue count holds still once the broker has
        # given the stalled consumer all it will (dispatch goes in rounds after publishing).
        ready = settled_count(conn, ch, q)
        delivered = MESSAGES - ready
        high_water = 4 * 1024 * 1024
        # Sent at most: the output high-water mark plus what the kernel's socket buffers took.
        self.assertLess(delivered * BODY, high_water + 16 * 1024 * 1024,
                        "%d of %d messages left the queue for a consumer that reads nothing"
                        % (delivered, MESSAGES))
        # The stated bound: the messages themselves (body + 200 bytes of bookkeeping each), plus
        # 32 MiB for output buffers, kernel buffers and allocator slack.
        # (Only for an uninstrumented build: scripts/test.sh runs this module against the
        # Release binary too.)
        if not brokers.warren_is_sanitized():
            grown = rss_bytes(broker.pid) - before
            bound = MESSAGES * (BODY + 200) + 32 * 1024 * 1024
            self.assertLess(grown, bound, "RSS grew by %d bytes, bound %d" % (grown, bound))

        # Nothing is lost: once the consumer reads again it gets every message, in order.
        stalled.sock.settimeout(30)
        seen = 0
        while seen < MESSAGES:
            ftype, _, payload = stalled.read_frame()
            if ftype == 3:
                seen += 1
        self.assertEqual(seen, MESSAGES)
        wait_for(conn, lambda: message_count(ch, q) == 0, 30, "the queue to drain")
        stalled.close()

    @brokers.warren_only("reads the broker's open sockets from /proc (Warren's process id)")
    def test_silent_consumer_that_stopped_reading_is_dropped_and_its_socket_closed(self):
        conn = broker.connect()
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        q = unique("silent")
        ch.queue_declare(q)
        self.addCleanup(lambda: broker.connect().channel().queue_delete(q))
        ConfirmedPublisher(broker.params(), "", q, 10_000, body=lambda i: b"x" * 1024).run()

        # A no-ack consumer that reads nothing and sends no heartbeats: the broker's write to it
        # stalls at once. After two silent heartbeat intervals the broker drops it, and its socket
        # must close although that write never completes.
        stalled = rawamqp.stalled_consumer(broker.host, broker.port, q, 16384, heartbeat=1)
        self.addCleanup(stalled.close)
        inode = server_socket_inode(broker.port, stalled.sock.getsockname()[1])
        self.assertIn(inode, open_socket_inodes(broker.pid))
        procs.wait_until(lambda: inode not in open_socket_inodes(broker.pid), 30,
                         what="the broker to close the silent consumer's socket")


if __name__ == "__main__":
    unittest.main()
