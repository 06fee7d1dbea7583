"""Foundation: connections, channels, heartbeats, amqp-tools, hostile bytes on raw sockets,
protocol errors, channel errors and failed logins. One broker with default config serves the
module; the configured-limits and memory-alarm tests each start their own.
"""
import os
import struct
import subprocess
import unittest

import pika
import pika.exceptions

import brokers
import rawamqp
from helpers import channel_error, message_count, unique

broker = None


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


class HealthyBystander:
    """A pika connection that must survive whatever another client does to the broker."""

    def __init__(self, test):
        self.test = test
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue

    def assert_healthy(self):
        self.test.assertTrue(self.conn.is_open)
        body = unique("still-here").encode()
        self.ch.basic_publish("", self.queue, body)
        method, _, got = self.ch.basic_get(self.queue, auto_ack=True)
        self.test.assertIsNotNone(method, "round trip on the bystander connection lost the message")
        self.test.assertEqual(got, body)
        self.conn.close()


class ConnectionTests(unittest.TestCase):
    def test_opens_and_closes_100_channels_on_one_connection(self):
        conn = broker.connect()
        channels = [conn.channel() for _ in range(100)]
        self.assertEqual(len({ch.channel_number for ch in channels}), 100)
        for ch in channels:
            self.assertTrue(ch.is_open)
        # Each channel is usable, not just open: a confirmed publish on every one of them.
        q = channels[0].queue_declare("", exclusive=True).method.queue
        for i, ch in enumerate(channels):
            ch.confirm_delivery()
            ch.basic_publish("", q, str(i).encode())
        self.assertEqual(message_count(channels[-1], q), 100)
        for ch in channels:
            ch.close()
            self.assertTrue(ch.is_closed)
        self.assertTrue(conn.is_open)
        conn.close()
        self.assertTrue(conn.is_closed)

    def test_heartbeat_1s_connection_idle_for_5s_stays_open(self):
        conn = broker.connect(heartbeat=1)
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        # The idle period is the test: keep servicing I/O (pika sends heartbeats) for 5 s.
        conn.process_data_events(time_limit=5)
        self.assertTrue(conn.is_open)
        # pika's own checker only notices a silent broker after timeout + 5 s, so look at what
        # arrived: a broker honouring heartbeat=1 must have sent heartbeats while we idled.
        checker = conn._impl._heartbeat_checker
        self.assertIsNotNone(checker, "heartbeat was not negotiated")
        self.assertEqual(conn._impl.params.heartbeat, 1)
        self.assertGreaterEqual(checker._heartbeat_frames_received, 2)
        ch.basic_publish("", q, b"after idle")
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"after idle")
        conn.close()

    def test_channel_error_leaves_connection_and_other_channels_usable(self):
        conn = broker.connect()
        other = conn.channel()
        q = other.queue_declare("", exclusive=True).method.queue
        failing = conn.channel()
        missing = unique("missing")
        with channel_error(self, 404, "NOT_FOUND - no queue '%s' in vhost '/'" % missing):
            failing.queue_declare(missing, passive=True)
        self.assertTrue(failing.is_closed)
        self.assertTrue(conn.is_open)
        self.assertTrue(other.is_open)
        other.basic_publish("", q, b"x")
        self.assertEqual(other.basic_get(q, auto_ack=True)[2], b"x")
        fresh = conn.channel()
        fresh.basic_publish("", q, b"y")
        self.assertEqual(fresh.basic_get(q, auto_ack=True)[2], b"y")
        conn.close()

    def test_failed_login_gets_403_access_refused(self):
        bystander = HealthyBystander(self)
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError) as cm:
            broker.connect(password="wrong-password")
        self.assertEqual(str(cm.exception), "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - "
                         "Login was refused using authentication mechanism PLAIN. For details see "
                         "the broker logfile.'")
        # The exact close a client announcing authentication_failure_close receives.
        raw = rawamqp.RawConnection(broker.host, broker.port)
        _, mid, args = raw.start("guest", "wrong-password")
        self.assertEqual(mid, (10, 50))
        self.assertEqual(rawamqp.parse_close(args)[:2], (
            403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile."))
        self.assertEqual(raw.read_until_closed()[0], b"")
        raw.close()
        bystander.assert_healthy()

    def test_open_of_missing_vhost_gets_530(self):
        bystander = HealthyBystander(self)
        # pika reports a close during the handshake as ProbableAccessDeniedError(close).
        with self.assertRaises(pika.exceptions.ProbableAccessDeniedError) as cm:
            broker.connect(virtual_host="no-such-vhost")
        self.assertEqual(str(cm.exception), "ConnectionClosedByBroker: (530) "
                                            "'NOT_ALLOWED - vhost no-such-vhost not found'")
        bystander.assert_healthy()


class LargeBodyTests(unittest.TestCase):
    def test_large_and_small_bodies_interleaved_arrive_byte_exact(self):
        # Large bodies are read from the socket straight into their message and small ones
        # through the read buffer; these alternate, in one and in several body frames.
        conn = broker.connect()
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        q = unique("large")
        ch.queue_declare(q, auto_delete=True)
        sizes = [16 * 1024, 5, 64 * 1024, 0, 200 * 1024 + 3, 64 * 1024, 17, 1024 * 1024 + 1, 3 * 1024 * 1024]
        bodies = [os.urandom(n) for n in sizes]
        for body in bodies:
            ch.basic_publish("", q, body)
        got = []
        for method, _, body in ch.consume(q, auto_ack=True, inactivity_timeout=30):
            self.assertIsNotNone(method, "%d of %d messages arrived" % (len(got), len(bodies)))
            got.append(body)
            if len(got) == len(bodies):
                break
        ch.cancel()
        self.assertEqual([len(b) for b in got], sizes)
        self.assertTrue(got == bodies, "a body differs")


class RawSocketTests(unittest.TestCase):
    def assert_refused_with_header(self, data):
        raw = rawamqp.RawConnection(broker.host, broker.port)
        try:
            raw.send(data)
        except OSError:
            pass  # the broker may already have answered and closed
        got, how = raw.read_until_closed()
        raw.close()
        self.assertEqual(got, b"AMQP\x00\x00\x09\x01", "sent %r, closed by %s" % (data[:16], how))

    def test_garbage_bytes_get_protocol_header_and_close(self):
        bystander = HealthyBystander(self)
        self.assert_refused_with_header(b"GET / HT")  # exactly one header's worth
        self.assert_refused_with_header(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_refused_with_header(bytes(range(256)) * 64)
        self.assert_refused_with_header(b"\x01\x00\x00\x00\x00\x00\x04\xce")  # a frame, no header
        bystander.assert_healthy()

    def test_wrong_protocol_header_gets_0_9_1_header_and_close(self):
        bystander = HealthyBystander(self)
        for header in (b"AMQP\x01\x01\x00\x0a",  # 0-10
                       b"AMQP\x00\x00\x08\x00",  # 0-8
                       b"AMQP\x00\x00\x09\x02",  # 0-9-2
                       b"AMQP\x03\x01\x00\x00"):  # AMQP 1.0 over SASL
            self.assert_refused_with_header(header)
        bystander.assert_healthy()

    def test_after_close_ok_the_client_closes_first_and_further_closes_are_answered(self):
        # close-ok tells its recipient that it may close the socket. The broker leaves that to the
        # client and keeps answering connection.close (the Go client sends one per Close() call);
        # a broker that closed its end at once would give this second close an end of stream.
        raw = rawamqp.RawConnection(broker.host, broker.port)
        self.addCleanup(raw.close)
        raw.open()
        close = rawamqp.method(0, 10, 50, struct.pack(">H", 200) + rawamqp.shortstr("bye") +
                               struct.pack(">HH", 0, 0))
        raw.send(close)
        self.assertEqual(raw.read_method()[:2], (0, (10, 51)))
        raw.send(close)
        self.assertEqual(raw.read_method()[:2], (0, (10, 51)))

    def test_frame_larger_than_frame_max_gets_connection_close_501(self):
        bystander = HealthyBystander(self)
        raw = rawamqp.RawConnection(broker.host, broker.port)
        _, frame_max = raw.open()
        self.assertEqual(frame_max, 131072)
        size = frame_max + 1000
        # A method frame on channel 0 whose declared size exceeds frame_max.
        raw.send(struct.pack(">BHI", rawamqp.FRAME_METHOD, 0, size))
        try:
            raw.send(b"\x00" * size + rawamqp.FRAME_END)
        except OSError:
            pass  # the broker may close before reading the payload
        channel, mid, args = raw.read_method()
        self.assertEqual((channel, mid), (0, (10, 50)))
        # RabbitMQ reports the frame type, the payload it read (none: it checks the header) and
        # the size against the largest payload (frame_max less 8 octets of header and end).
        self.assertEqual(rawamqp.parse_close(args)[:2], (
            501, "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,%d,%d}"
                 % (size, frame_max - 8)))
        raw.close()
        bystander.assert_healthy()


def _queue_declare_args(name):
    return struct.pack(">H", 0) + rawamqp.shortstr(name) + b"\x00" + rawamqp.table({})


_PUBLISH_ARGS = struct.pack(">H", 0) + rawamqp.shortstr("") + rawamqp.shortstr("q") + b"\x00"


class ProtocolErrorTests(unittest.TestCase):
    """Frames no client library sends, each answered with the connection.close RabbitMQ sends.

    Payloads are kept empty where RabbitMQ's text quotes the octets it read.
    """

    def assert_connection_close(self, data, code, text, class_id=0, method_id=0, channel=False):
        bystander = HealthyBystander(self)
        raw = rawamqp.RawConnection(broker.host, broker.port)
        raw.open()
        if channel:
            raw.send(rawamqp.method(1, 20, 10, rawamqp.shortstr("")))
            self.assertEqual(raw.read_method()[:2], (1, (20, 11)))
        raw.send(data)
        ch, mid, args = raw.read_method()
        self.assertEqual((ch, mid), (0, (10, 50)))
        self.assertEqual(rawamqp.parse_close(args), (code, text, class_id, method_id))
        raw.send(rawamqp.method(0, 10, 51))  # close-ok: the broker then closes the socket
        self.assertEqual(raw.read_until_closed()[0], b"")
        raw.close()
        bystander.assert_healthy()

    def test_bad_frame_end_octet_is_501(self):
        self.assert_connection_close(b"\x08\x00\x00\x00\x00\x00\x00\x00", 501,
                                     "FRAME_ERROR - type 8, all octets = <<>>: "
                                     "{invalid_frame_end_marker,0}")

    def test_unknown_frame_type_is_501(self):
        self.assert_connection_close(b"\x09\x00\x00\x00\x00\x00\x00\xce", 501,
                                     "FRAME_ERROR - type 9, all octets = <<>>: unknown_frame")

    def test_method_on_unopened_channel_is_504(self):
        self.assert_connection_close(rawamqp.method(5, 50, 10, _queue_declare_args("q")), 504,
                                     "CHANNEL_ERROR - expected 'channel.open'", 50, 10)

    def test_second_channel_open_is_504(self):
        self.assert_connection_close(rawamqp.method(1, 20, 10, rawamqp.shortstr("")), 504,
                                     "CHANNEL_ERROR - second 'channel.open' seen", 20, 10,
                                     channel=True)

    def test_channel_open_on_channel_zero_is_504(self):
        self.assert_connection_close(rawamqp.method(0, 20, 10, rawamqp.shortstr("")), 504,
                                     "CHANNEL_ERROR - unexpected method in connection state "
                                     "running", 20, 10)

    def test_content_body_without_header_is_505(self):
        self.assert_connection_close(rawamqp.frame(rawamqp.FRAME_BODY, 1, b""), 505,
                                     "UNEXPECTED_FRAME - expected method frame, got non method "
                                     "frame instead", channel=True)

    def test_method_where_content_header_belongs_is_505(self):
        self.assert_connection_close(rawamqp.method(1, 60, 40, _PUBLISH_ARGS) +
                                     rawamqp.method(1, 50, 10, _queue_declare_args("q")), 505,
                                     "UNEXPECTED_FRAME - expected content header for class 60, "
                                     "got non content header frame instead", 60, 40,
                                     channel=True)

    def test_heartbeat_on_a_channel_is_505(self):
        self.assert_connection_close(b"\x08\x00\x01\x00\x00\x00\x00\xce", 505,
                                     "UNEXPECTED_FRAME - type 8, all octets = <<>>")


class AmqpToolsTests(unittest.TestCase):
    def run_tool(self, *argv, input=None):
        res = subprocess.run(argv, input=input, capture_output=True, timeout=30)
        self.assertEqual(res.returncode, 0, "%s failed: %s" % (argv[0], res.stderr.decode()))
        return res.stdout

    def test_declare_publish_get_and_consume(self):
        url = broker.url()
        q = unique("tools")
        out = self.run_tool("amqp-declare-queue", "--url", url, "-q", q)
        self.assertEqual(out.decode().strip(), q)
        self.run_tool("amqp-publish", "--url", url, "-r", q, "-b", "hello from amqp-tools")
        self.run_tool("amqp-publish", "--url", url, "-r", q, "-b", "second")
        self.assertEqual(self.run_tool("amqp-get", "--url", url, "-q", q),
                         b"hello from amqp-tools")
        self.assertEqual(self.run_tool("amqp-consume", "--url", url, "-q", q, "-c", "1", "cat"),
                         b"second")
        # The queue is now empty: amqp-get exits non-zero on get-empty.
        res = subprocess.run(["amqp-get", "--url", url, "-q", q], capture_output=True, timeout=30)
        self.assertNotEqual(res.returncode, 0)
        conn = broker.connect()
        self.assertEqual(message_count(conn.channel(), q), 0)
        conn.close()


class ConfiguredBrokerTests(unittest.TestCase):
    """A broker started with its own user, a small frame_max and channel_max, a heartbeat and a
    maximum message size."""

    config = {"default_user": "warren", "default_pass": "rabbit-hole", "frame_max": 8192,
              "channel_max": 8, "heartbeat": 7, "max_message_size": 65536}

    @classmethod
    def setUpClass(cls):
        cls.broker = brokers.start_broker(cls.config)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def test_configured_user_logs_in_and_guest_is_refused(self):
        conn = self.broker.connect()
        self.assertTrue(conn.is_open)
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            self.broker.connect(user="guest", password="guest")
        raw = rawamqp.RawConnection(self.broker.host, self.broker.port)
        _, mid, args = raw.start("guest", "guest")
        self.assertEqual(mid, (10, 50))
        self.assertEqual(rawamqp.parse_close(args)[:2], (
            403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile."))
        raw.close()
        self.assertTrue(conn.is_open)
        conn.close()

    def test_configured_limits_are_offered_in_tune(self):
        raw = rawamqp.RawConnection(self.broker.host, self.broker.port)
        _, mid, args = raw.start("warren", "rabbit-hole")
        self.assertEqual(mid, (10, 30))
        self.assertEqual(struct.unpack(">HIH", args), (8, 8192, 7))
        raw.close()
        conn = self.broker.connect(heartbeat=None)  # None: accept the broker's proposal
        self.assertEqual((conn._impl.params.frame_max, conn._impl.params.channel_max,
                          conn._impl.params.heartbeat), (8192, 8, 7))
        conn.close()

    def test_configured_frame_max_is_enforced(self):
        conn = self.broker.connect()
        # A body bigger than one frame is split by the client and reassembled by the broker.
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        body = bytes(range(256)) * 100
        ch.basic_publish("", q, body)
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], body)
        raw = rawamqp.RawConnection(self.broker.host, self.broker.port)
        _, frame_max = raw.open("warren", "rabbit-hole")
        self.assertEqual(frame_max, 8192)
        raw.send(struct.pack(">BHI", rawamqp.FRAME_BODY, 1, 9000))
        channel, mid, args = raw.read_method()
        self.assertEqual((channel, mid), (0, (10, 50)))
        self.assertEqual(rawamqp.parse_close(args)[:2], (
            501, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,9000,8184}"))
        raw.close()
        ch.basic_publish("", q, b"ok")
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"ok")
        conn.close()

    def test_opening_more_channels_than_channel_max_is_530(self):
        raw = rawamqp.RawConnection(self.broker.host, self.broker.port)
        channel_max, _ = raw.open("warren", "rabbit-hole")
        self.assertEqual(channel_max, 8)
        for n in range(1, 9):
            raw.send(rawamqp.method(n, 20, 10, rawamqp.shortstr("")))
            self.assertEqual(raw.read_method()[:2], (n, (20, 11)))
        raw.send(rawamqp.method(9, 20, 10, rawamqp.shortstr("")))
        channel, mid, args = raw.read_method()
        self.assertEqual((channel, mid), (0, (10, 50)))
        self.assertEqual(rawamqp.parse_close(args)[:2], (
            530, "NOT_ALLOWED - number of channels opened (8) has reached the negotiated "
                 "channel_max (8)"))
        raw.close()

    def test_message_over_max_message_size_is_406(self):
        conn = self.broker.connect()
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"x" * 65536)  # exactly the limit is fine
        with channel_error(self, 406, "PRECONDITION_FAILED - message size 65537 is larger than "
                                      "configured max size 65536"):
            ch.basic_publish("", q, b"x" * 65537)
            ch.queue_declare(q, passive=True)
        self.assertTrue(conn.is_open)
        self.assertEqual(message_count(conn.channel(), q), 1)
        conn.close()


class MemoryAlarmTests(unittest.TestCase):
    """A broker with a 1 MiB memory limit: a 2 MiB message takes it past it (RabbitMQ is past it
    from the start), and the publisher is blocked."""

    @classmethod
    def setUpClass(cls):
        cls.broker = brokers.start_broker({"memory_high_watermark_bytes": 1048576})

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def test_publisher_is_blocked_and_other_clients_carry_on(self):
        other = self.broker.connect()
        och = other.channel()
        q = och.queue_declare("", exclusive=True).method.queue
        # A raw publisher announcing the connection.blocked capability: a blocked connection is
        # not read any more, so it could not even complete a close handshake.
        publisher = rawamqp.RawConnection(self.broker.host, self.broker.port)
        publisher.open(capabilities=("authentication_failure_close", "connection.blocked"))
        publisher.send(rawamqp.method(1, 20, 10, rawamqp.shortstr("")))
        self.assertEqual(publisher.read_method()[:2], (1, (20, 11)))
        publisher.send(rawamqp.publish(1, "", q, b"x" * (2 << 20)))
        channel, mid, args = publisher.read_method()
        self.assertEqual((channel, mid), (0, (10, 60)))  # connection.blocked
        self.assertEqual(args, rawamqp.shortstr("low on memory"))
        publisher.close()
        # A connection that does not publish is not blocked: declares, gets and consumes work.
        # (Whether the publish that triggered the block was enqueued is not asserted.)
        och.queue_declare(unique("still-declaring"), exclusive=True)
        och.basic_get(q, auto_ack=True)
        tag = och.basic_consume(q, lambda *a: None)
        och.basic_cancel(tag)
        self.assertTrue(other.is_open and och.is_open)
        other.close()


if __name__ == "__main__":
    unittest.main()
