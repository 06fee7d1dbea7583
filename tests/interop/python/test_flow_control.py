"""Flow control: a client that stops reading its socket cannot make the broker's memory grow, and
the memory alarm pauses publishers without disconnecting them.

Deliveries to a connection stop while its unsent output is above connection_output_high_water
(4 MiB), so messages for a no-ack consumer that does not read stay in the queue instead of piling
up in output buffers. This is the only bound on no-ack consumers. Answers to a connection's own
input (basic.return, get-ok) stop it being read at the same mark; direct reply-to deliveries,
which other connections cause, close it past connection_output_limit. Past the memory watermark,
publishers' sockets are not read (connection.blocked) while consumers drain; connection.unblocked
follows when memory falls.
"""
import os
import select
import socket
import struct
import threading
import time
import unittest

import pika

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


class BlockRecordingPublisher(ConfirmedPublisher):
    """A ConfirmedPublisher that records connection.blocked and connection.unblocked."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.blocked = threading.Event()
        self.unblocked = threading.Event()
        self.failure = None

    def _on_open(self, conn):
        conn.add_on_connection_blocked_callback(lambda *_: self.blocked.set())
        conn.add_on_connection_unblocked_callback(lambda *_: self.unblocked.set())
        super()._on_open(conn)

    def run_in_thread(self):
        def run():
            try:
                self.run()
            except BaseException as e:  # reported by the test after join()
                self.failure = e
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


@brokers.warren_only("the watermark counts the broker's message memory; RabbitMQ's whole process "
                     "is past 8 MiB from the start, so its alarm never clears")
class MemoryAlarmTests(unittest.TestCase):
    WATERMARK = 8 << 20
    PUBLISHERS = 4
    BODY = 64 << 10
    PER_PUBLISHER = 160  # 10 MiB each: no publisher can finish before the alarm goes off

    def setUp(self):
        self.broker = brokers.start_broker({"memory_high_watermark_bytes": self.WATERMARK})
        self.addCleanup(self.broker.stop)

    def test_publishers_are_paused_not_disconnected_and_resume_when_memory_falls(self):
        admin = self.broker.connect()
        self.addCleanup(lambda: admin.is_open and admin.close())
        q = unique("alarm")
        admin.channel().queue_declare(q)

        def body(p):
            return lambda i: (b"%d:%d:" % (p, i)).ljust(self.BODY, b"x")
        publishers = [BlockRecordingPublisher(self.broker.params(), "", q, self.PER_PUBLISHER,
                                              body=body(p), window=self.PER_PUBLISHER)
                      for p in range(self.PUBLISHERS)]
        threads = [p.run_in_thread() for p in publishers]
        for p in publishers:
            self.assertTrue(p.blocked.wait(30), "a publisher never got connection.blocked")

        # A blocked connection's socket is not read, yet it stays open and gets heartbeats. This
        # raw publisher is blocked by its first publish; its channel.open is answered only after
        # connection.unblocked; meanwhile the broker's heartbeats keep coming for longer than
        # the two silent intervals after which an unblocked connection would be dropped.
        raw = rawamqp.RawConnection(self.broker.host, self.broker.port)
        self.addCleanup(raw.close)
        raw.open(capabilities=("connection.blocked",), heartbeat=1)
        raw.send(rawamqp.method(1, 20, 10, rawamqp.shortstr("")))
        self.assertEqual(raw.read_method()[:2], (1, (20, 11)))
        raw.send(rawamqp.publish(1, "", q, b"raw:0:"))
        self.assertEqual(raw.read_method()[:2], (0, (10, 60)))  # connection.blocked
        raw.send(rawamqp.method(2, 20, 10, rawamqp.shortstr("")))  # not read while blocked
        heartbeats = 0
        while heartbeats < 5:
            ftype, channel, payload = raw.read_frame()
            self.assertEqual((ftype, channel), (rawamqp.FRAME_HEARTBEAT, 0),
                             "a blocked connection got %r" % ((ftype, channel, payload[:4]),))
            heartbeats += 1
            raw.send(rawamqp.frame(rawamqp.FRAME_HEARTBEAT, 0, b""))
        self.assertFalse(any(p.unblocked.is_set() for p in publishers))

        # Consumers are not blocked: one drains the queue while the alarm is on, memory falls,
        # and the publishers resume and finish.
        total = self.PUBLISHERS * self.PER_PUBLISHER + 1
        consumer = self.broker.connect()
        self.addCleanup(lambda: consumer.is_open and consumer.close())
        cch = consumer.channel()
        cch.basic_qos(prefetch_count=50)
        seen = {}

        def on_message(ch, method, _props, message):
            who, seq = message.split(b":")[:2]
            seen.setdefault(who, []).append(int(seq))
            ch.basic_ack(method.delivery_tag)
        cch.basic_consume(q, on_message)
        wait_for(consumer, lambda: sum(map(len, seen.values())) == total, 120,
                 "the consumer to receive all %d messages" % total)
        for t in threads:
            t.join(60)
        for p in publishers:
            self.assertIsNone(p.failure, "a publisher failed: %s" % p.failure)
            self.assertTrue(p.unblocked.is_set(), "a publisher never got connection.unblocked")
            self.assertEqual(len(p.acks), self.PER_PUBLISHER)
            self.assertEqual((p.nacks, p.anomalies), ({}, []))
        for who, seqs in seen.items():
            self.assertEqual(seqs, sorted(seqs), "publisher %s's messages out of order" % who)
        self.assertEqual(sorted(seen), sorted([b"raw"] + [b"%d" % p for p in range(4)]))

        # The raw publisher: connection.unblocked came before the answer to its channel.open.
        blocked = True
        while True:
            ftype, channel, payload = raw.read_frame()
            if ftype != rawamqp.FRAME_METHOD:
                continue
            mid = struct.unpack(">HH", payload[:4])
            if (channel, mid) == (0, (10, 60)):
                blocked = True
            elif (channel, mid) == (0, (10, 61)):
                blocked = False
            else:
                self.assertEqual((channel, mid), (2, (20, 11)))
                self.assertFalse(blocked, "channel.open was answered while blocked")
                break


def open_raw(b, rcvbuf=65536):
    """A raw connection to `b` with a small receive buffer and channel 1 open."""
    conn = rawamqp.RawConnection(b.host, b.port)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn.open()
    conn.send(rawamqp.method(1, 20, 10, rawamqp.shortstr("")))
    assert conn.read_method()[:2] == (1, (20, 11)), "expected channel.open-ok"
    return conn


def send_until_stalled(sock, data, max_copies, stall=3.0):
    """Sends copies of `data` without reading until the socket takes nothing for `stall` seconds.
    Returns (copies sent whole, bytes of the next copy sent)."""
    sock.setblocking(False)
    copies, partial, last = 0, 0, time.monotonic()
    while copies < max_copies:
        try:
            n = sock.send(data[partial:])
        except BlockingIOError:
            if time.monotonic() - last > stall:
                break
            select.select([], [sock], [], 0.1)
            continue
        last = time.monotonic()
        partial += n
        if partial == len(data):
            copies, partial = copies + 1, 0
    sock.settimeout(60)
    return copies, partial


class ReturnCounter(threading.Thread):
    """Reads a raw connection on its own thread, counting basic.return methods."""

    def __init__(self, conn):
        super().__init__(daemon=True)
        self.conn, self.returns, self.error = conn, 0, None
        self.start()

    def run(self):
        try:
            while True:
                ftype, _, payload = self.conn.read_frame()
                if ftype == rawamqp.FRAME_METHOD and payload[:4] == struct.pack(">HH", 60, 50):
                    self.returns += 1
        except Exception as e:  # noqa: BLE001 - the socket closing ends the count
            self.error = e


class OutputBoundTests(unittest.TestCase):
    broker = None

    @brokers.warren_only("RabbitMQ reads on and queues the returns until its memory alarm")
    def test_publisher_that_never_reads_its_returns_is_not_read_until_it_does(self):
        """Mandatory publishes to nowhere from a client that never reads: the broker stops reading
        it once the unsent returns pass the high-water mark (its sends stall), its memory stays
        put, and once a reader thread runs every return arrives while the publishing goes on."""
        conn = open_raw(broker)
        self.addCleanup(conn.close)
        body = b"r" * 4096
        publish = rawamqp.publish(1, "amq.direct", "nowhere", body, mandatory=True)
        before = rss_bytes(broker.pid)
        max_copies = (256 << 20) // len(publish)
        sent, partial = send_until_stalled(conn.sock, publish, max_copies)
        # Taken at most: 4 MiB of returns unsent, plus what the kernel's buffers hold both ways.
        self.assertLess(sent, max_copies, "the broker read 256 MiB from a client that reads nothing")
        self.assertLess(sent * len(publish), 4 * 1024 * 1024 + 48 * 1024 * 1024)
        if not brokers.warren_is_sanitized():
            self.assertLess(rss_bytes(broker.pid) - before, 64 * 1024 * 1024)

        # A client that reads on one thread and publishes on another is never stuck.
        reader = ReturnCounter(conn)
        conn.sock.sendall(publish[partial:])
        more = 2000
        for _ in range(more):
            conn.sock.sendall(publish)
        total = sent + 1 + more
        deadline = time.monotonic() + 60
        while reader.returns < total and reader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(reader.returns, total, "returns lost (reader: %r)" % reader.error)

    @brokers.warren_only("connection_output_limit is Warren's (RabbitMQ queues replies without bound)")
    def test_reply_to_requester_that_never_reads_is_disconnected(self):
        """Direct reply-to replies are sent by other connections: past connection_output_limit of
        them unsent, the requester is disconnected with a log line saying why, and the message it
        held unacked goes back to its queue."""
        OutputBoundTests.broker = brokers.start_broker({"connection_output_limit": 1 << 20})
        b = OutputBoundTests.broker
        self.addCleanup(self._stop_own_broker)
        server_conn = b.connect()
        server = server_conn.channel()
        rpc, jobs = unique("rpc"), unique("jobs")
        server.queue_declare(rpc)
        server.queue_declare(jobs)
        server.basic_publish("", jobs, b"job")

        requester = open_raw(b)
        self.addCleanup(requester.close)
        requester.send(rawamqp.consume(1, jobs, "jobs", no_ack=False))
        requester.send(rawamqp.consume(1, "amq.rabbitmq.reply-to", "replies", no_ack=True))
        requester.send(rawamqp.publish(1, "", rpc, b"request", reply_to="amq.rabbitmq.reply-to"))
        deliveries = 0
        while deliveries < 1:  # the job, kept unacked
            if requester.read_method()[1] == (60, 60):
                deliveries += 1
        wait_for(server_conn, lambda: message_count(server, rpc) == 1, what="the request")
        _, props, _ = server.basic_get(rpc, auto_ack=True)
        self.assertTrue(props.reply_to.startswith("amq.rabbitmq.reply-to."))

        # The requester reads nothing from here on.
        server.confirm_delivery()
        reply = b"R" * 65536
        sent = 0
        while sent < 4000:
            try:
                server.basic_publish("", props.reply_to, reply, mandatory=True)
            except pika.exceptions.UnroutableError:
                break
            sent += 1
        self.assertLess(sent, 4000, "the requester was never disconnected")
        self.assertLess(sent * len(reply), (1 << 20) + 48 * 1024 * 1024)
        self.assertIn("connection_output_limit", b.log_text())
        wait_for(server_conn, lambda: message_count(server, jobs) == 1, what="the job back in its queue")
        server_conn.close()

    def _stop_own_broker(self):
        if OutputBoundTests.broker:
            OutputBoundTests.broker.stop()
            OutputBoundTests.broker = None


if __name__ == "__main__":
    unittest.main()
