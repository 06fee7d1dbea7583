"""TLS (AMQPS) with pika's ssl_options, certificates made by the test with openssl (tls_certs.py):
PLAIN and EXTERNAL logins, TLS 1.2 and 1.3, bad client certificates, a forged record after the
handshake (answered with a bad_record_mac alert), a plain-text client and
stalled handshakes dropped while other clients carry on, a listener that requires a client
certificate, the certificate reload on SIGHUP, and the start-up errors for bad certificate files.
The Go and Java clients' TLS tests are in test_go_client.py and test_java_client.py.
"""
import json
import math
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import pika
import pika.exceptions

import brokers
import procs
import rawamqp
import tls_certs
from helpers import unique

# For the stalled-handshake test: short, so that it is quick, and far above the few milliseconds
# a real client's handshake takes on loopback.
HANDSHAKE_TIMEOUT_MS = 2000

certs = None
broker = None
tls_port = None


def setUpModule():
    global certs, broker, tls_port
    certs = tls_certs.Certs()
    tls_port = procs.free_port()
    broker = brokers.start_broker({"tls_listeners": [tls_certs.listener(certs, tls_port)]})


def tearDownModule():
    if broker:
        broker.stop()
    if certs:
        certs.cleanup()


def connect(context, credentials=None, port=None):
    return pika.BlockingConnection(tls_certs.pika_params(port or tls_port, context, credentials))


def external():
    return pika.credentials.ExternalCredentials()


def assert_round_trip(test, conn, bodies=(b"hello over TLS",)):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for body in bodies:
        ch.basic_publish("", q, body)
    for body in bodies:
        method, _, got = ch.basic_get(q, auto_ack=True)
        test.assertIsNotNone(method, "a message published over TLS did not come back")
        test.assertEqual(len(got), len(body))
        test.assertEqual(got, body)


class TlsTestCase(unittest.TestCase):
    """Tests against the module's broker, or, when `config(port)` is set, a broker of the class's
    own. Log lines about one client host are rate-limited, so a class that floods the log, or
    that must see its lines, does not share a broker with others."""

    config = None

    @classmethod
    def setUpClass(cls):
        if cls.config is None:
            cls.port, cls.broker = tls_port, broker
        else:
            cls.port = procs.free_port()
            cls.broker = brokers.start_broker(cls.config(cls.port))

    @classmethod
    def tearDownClass(cls):
        if cls.config is not None:
            cls.broker.stop()

    def connect(self, context, credentials=None):
        return connect(context, credentials, self.port)

    def tls_socket(self, context):
        return tls_socket(context, self.port)

    def log(self):
        return "" if brokers.is_rabbitmq() else self.broker.log_text()

    def await_log(self, text):
        if not brokers.is_rabbitmq():
            procs.wait_until(lambda: text in self.log(), 20, what="%r in the log" % text)


def own_listener(extra=None, **keys):
    """A `config` for a TlsTestCase: one TLS listener with these keys, and `extra` keys."""
    return staticmethod(lambda port: dict({"tls_listeners": [tls_certs.listener(certs, port, **keys)]},
                                          **(extra or {})))


def start_mechanisms(sock):
    """The mechanisms connection.start offers on `sock` (plain or TLS)."""
    raw = rawamqp.RawConnection.__new__(rawamqp.RawConnection)
    raw.sock, raw.buf = sock, b""
    raw.send(rawamqp.PROTOCOL_HEADER)
    _, mid, args = raw.read_method()
    assert mid == (10, 10), mid
    (table_len,) = struct.unpack(">I", args[2:6])
    at = 6 + table_len
    (mech_len,) = struct.unpack(">I", args[at:at + 4])
    return args[at + 4:at + 4 + mech_len].decode().split()


def tls_socket(context, port=None):
    sock = socket.create_connection(("127.0.0.1", port or tls_port), timeout=10)
    return context.wrap_socket(sock, server_hostname="localhost")


def read_until_closed(sock, timeout=30):
    """What the broker sends before it closes `sock`; fails if it stays open `timeout` seconds."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        except socket.timeout:
            raise AssertionError("the broker kept the connection open for %d s" % timeout)
        if not chunk:
            return out
        out += chunk


class LoginTests(TlsTestCase):
    def test_plain_login_over_tls_round_trips_small_and_large_messages(self):
        conn = self.connect(tls_certs.client_context(certs))
        # 300 KiB and 3 MiB cross the broker's 64 KiB write chunks and many TLS records.
        bodies = [b"", b"x" * 16, os.urandom(1024), os.urandom(300 * 1024), os.urandom(3 * 1024 * 1024)]
        assert_round_trip(self, conn, bodies)
        conn.close()

    def test_tls_1_2_and_tls_1_3_clients_are_both_served(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                sock = self.tls_socket(tls_certs.client_context(certs, version=version))
                self.assertEqual(sock.version(), {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name])
                self.assertIn("PLAIN", start_mechanisms(sock))
                sock.close()
                conn = self.connect(tls_certs.client_context(certs, version=version))
                assert_round_trip(self, conn)
                conn.close()

    def test_external_is_offered_on_tls_connections_only(self):
        sock = self.tls_socket(tls_certs.client_context(certs))
        self.assertIn("EXTERNAL", start_mechanisms(sock))
        sock.close()
        plain = socket.create_connection((broker.host, broker.port), timeout=10)
        self.assertNotIn("EXTERNAL", start_mechanisms(plain))
        plain.close()

    def test_external_logs_in_the_user_the_client_certificate_names(self):
        conn = self.connect(tls_certs.client_context(certs, certs.guest), external())
        assert_round_trip(self, conn)
        conn.close()

    def test_external_with_an_unknown_common_name_is_refused(self):
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError) as cm:
            self.connect(tls_certs.client_context(certs, certs.unknown), external())
        self.assertIn("ACCESS_REFUSED", str(cm.exception))
        self.assertIn("EXTERNAL", str(cm.exception))
        if not brokers.is_rabbitmq():
            self.assertIn("EXTERNAL login refused: user 'nobody-we-know' - invalid credentials", self.log())

    def test_external_without_a_client_certificate_is_refused(self):
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError) as cm:
            self.connect(tls_certs.client_context(certs), external())
        self.assertIn("ACCESS_REFUSED", str(cm.exception))
        if not brokers.is_rabbitmq():
            self.assertIn("EXTERNAL login refused: connection peer presented no TLS (x.509) certificate",
                          self.log())


class BadClientTests(TlsTestCase):
    config = own_listener({"tls_handshake_timeout_ms": HANDSHAKE_TIMEOUT_MS})

    def assert_refused_in_handshake(self, client, reason):
        with self.assertRaises(pika.exceptions.AMQPConnectionError):
            self.connect(tls_certs.client_context(certs, client))
        if not brokers.is_rabbitmq():
            self.await_log(reason)
            self.assertIn("client certificate 'CN=guest,O=Warren tests' (chain depth 0) refused: " + reason,
                          self.log())

    def test_an_expired_client_certificate_is_refused_in_the_handshake(self):
        self.assert_refused_in_handshake(certs.expired, "certificate has expired")
        assert_round_trip(self, self.connect(tls_certs.client_context(certs, certs.guest)))

    def test_a_client_certificate_from_an_untrusted_ca_is_refused_in_the_handshake(self):
        self.assert_refused_in_handshake(certs.untrusted, "unable to get local issuer certificate")
        assert_round_trip(self, self.connect(tls_certs.client_context(certs, certs.guest)))

    def test_stalled_handshakes_are_dropped_while_other_clients_work(self):
        silent = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(3)]
        # Half a ClientHello: a TLS record header promising 512 bytes, then 10 of them.
        half = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        half.sendall(b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc\x03\x03" + b"\x00" * 4)
        for _ in range(3):
            conn = self.connect(tls_certs.client_context(certs))
            assert_round_trip(self, conn)
            conn.close()
        for sock in silent + [half]:
            read_until_closed(sock)  # the handshake timeout closes it
            sock.close()
        if not brokers.is_rabbitmq():
            self.assertIn("timed out after %d ms" % HANDSHAKE_TIMEOUT_MS, self.log())

    def test_a_forged_record_after_the_handshake_gets_a_bad_record_mac_alert(self):
        # The client's TLS over memory, so that the test can put a record of its own on the wire.
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        context = tls_certs.client_context(certs, version=ssl.TLSVersion.TLSv1_3)
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                self.assertTrue(data, "the broker closed the connection during the handshake")
                incoming.write(data)
        sock.sendall(outgoing.read())  # the client's Finished
        self.assertEqual(tls.cipher()[0], "TLS_AES_256_GCM_SHA384")
        # Application data of 40 bytes that no key sealed.
        sock.sendall(b"\x17\x03\x03\x00\x28" + bytes(range(40)))
        incoming.write(read_until_closed(sock))
        sock.close()
        with self.assertRaises(ssl.SSLError) as cm:
            tls.read(100)
        self.assertIn("BAD_RECORD_MAC", str(cm.exception).upper())
        if not brokers.is_rabbitmq():
            self.await_log("TLS error: decryption failed or bad record mac")
        assert_round_trip(self, self.connect(tls_certs.client_context(certs)))


class PlainTextClientTests(TlsTestCase):
    config = own_listener()

    def test_plain_amqp_on_the_tls_port_is_dropped_and_logged_within_the_rate_limit(self):
        bystander = self.connect(tls_certs.client_context(certs))
        started = time.monotonic()
        n = 30
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.sendall(rawamqp.PROTOCOL_HEADER)
            reply = read_until_closed(sock)
            self.assertFalse(reply.startswith(b"AMQP"), "the TLS port answered in plain AMQP")
            sock.close()
        elapsed = time.monotonic() - started
        assert_round_trip(self, bystander)
        bystander.close()
        if not brokers.is_rabbitmq():
            hint = "the client does not speak TLS"
            self.await_log(hint)
            lines = [l for l in self.log().splitlines() if hint in l]
            # One line per client, limited per host: a burst of 20, then one a second.
            self.assertGreaterEqual(len(lines), 1)
            self.assertLessEqual(len(lines), 20 + math.ceil(elapsed) + 1)


class StrictListenerTests(TlsTestCase):
    """A listener with fail_if_no_peer_cert and TLS 1.3 only."""

    config = own_listener(fail_if_no_peer_cert=True, versions=["tlsv1.3"])

    def connect(self, client, credentials=None, version=None):
        return connect(tls_certs.client_context(certs, client, version), credentials, self.port)

    def test_a_client_with_a_good_certificate_logs_in_with_external_or_plain(self):
        for credentials in (external(), None):
            conn = self.connect(certs.guest, credentials)
            assert_round_trip(self, conn)
            conn.close()

    def test_a_client_without_a_certificate_is_refused(self):
        with self.assertRaises(pika.exceptions.AMQPConnectionError):
            self.connect(None)

    def test_a_client_with_an_expired_certificate_is_refused(self):
        with self.assertRaises(pika.exceptions.AMQPConnectionError):
            self.connect(certs.expired)

    def test_tls_1_2_is_refused_when_only_1_3_is_allowed(self):
        with self.assertRaises((pika.exceptions.AMQPConnectionError, ssl.SSLError)):
            self.connect(certs.guest, version=ssl.TLSVersion.TLSv1_2)
        conn = self.connect(certs.guest, version=ssl.TLSVersion.TLSv1_3)
        assert_round_trip(self, conn)
        conn.close()


@brokers.warren_only("SIGHUP reloads the certificates (RabbitMQ needs ssl:clear_pem_cache via rabbitmqctl)")
class ReloadTests(unittest.TestCase):
    """The listener's files live in a directory of the test's, so that they can be replaced."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="warren-tls-reload-")
        self.cert = os.path.join(self.dir, "server.pem")
        self.key = os.path.join(self.dir, "server.key")
        shutil.copy(certs.server[0], self.cert)
        shutil.copy(certs.server[1], self.key)
        self.port = procs.free_port()
        self.broker = brokers.start_broker({"tls_listeners": [tls_certs.listener(
            certs, self.port, certfile=self.cert, keyfile=self.key)]})

    def tearDown(self):
        self.broker.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def server_common_name(self):
        sock = tls_socket(tls_certs.client_context(certs), self.port)
        subject = dict(item[0] for item in sock.getpeercert()["subject"])
        sock.close()
        return subject["commonName"]

    def reload(self):
        before = self.broker.log_text().count("TLS reload:")
        os.kill(self.broker.pid, signal.SIGHUP)
        procs.wait_until(lambda: self.broker.log_text().count("TLS reload:") > before, 20,
                         what="the reload in the log")

    def test_sighup_gives_new_connections_the_new_certificate_and_keeps_open_ones(self):
        old = pika.BlockingConnection(tls_certs.pika_params(self.port, tls_certs.client_context(certs)))
        self.assertEqual(self.server_common_name(), "localhost")
        shutil.copy(certs.server2[0], self.cert)
        shutil.copy(certs.server2[1], self.key)
        self.reload()
        self.assertEqual(self.server_common_name(), "localhost reloaded")
        self.assertIn("TLS reload: 1 of 1 TLS listeners have new certificates", self.broker.log_text())
        assert_round_trip(self, old)  # the connection accepted before the reload carries on
        old.close()

    def test_a_bad_file_on_reload_is_logged_and_the_old_certificate_stays(self):
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        self.reload()
        self.assertIn("TLS reload: tls_listeners[0].certfile: '%s' holds no PEM certificate" % self.cert,
                      self.broker.log_text())
        self.assertIn("tls_listeners[0] keeps its current certificates", self.broker.log_text())
        self.assertEqual(self.server_common_name(), "localhost")
        conn = pika.BlockingConnection(tls_certs.pika_params(self.port, tls_certs.client_context(certs)))
        assert_round_trip(self, conn)
        conn.close()


@brokers.warren_only("Warren's start-up errors name the configuration key and the file")
class StartupErrorTests(unittest.TestCase):
    def start_fails(self, **keys):
        """Warren's exit status and output with a TLS listener using `keys`."""
        tmp = tempfile.mkdtemp(prefix="warren-tls-config-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "warren.json")
        with open(path, "w") as f:
            json.dump({"tls_listeners": [tls_certs.listener(certs, 0, **keys)]}, f)
        res = subprocess.run([brokers.WARREN, "--port", "0", "--data-dir", "", "--config", path],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 1, res.stderr)
        return res.stderr

    def file(self, name, text):
        path = os.path.join(certs.dir, unique(name))
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_missing_certificate_file_is_named(self):
        path = os.path.join(certs.dir, "no-such.pem")
        self.assertIn("tls_listeners[0].certfile: cannot read '%s': No such file or directory" % path,
                      self.start_fails(certfile=path))

    def test_a_file_without_pem_is_named(self):
        path = self.file("not-pem", "hello\n")
        self.assertIn("tls_listeners[0].certfile: '%s' holds no PEM certificate" % path,
                      self.start_fails(certfile=path))
        self.assertIn("tls_listeners[0].keyfile: '%s' holds no PEM private key" % path,
                      self.start_fails(keyfile=path))
        self.assertIn("tls_listeners[0].cacertfile: '%s' holds no PEM certificate" % path,
                      self.start_fails(cacertfile=path))

    def test_a_malformed_certificate_is_named(self):
        path = self.file("malformed",
                         "-----BEGIN CERTIFICATE-----\nTUlJQm9uZSBnYXJiYWdl\n-----END CERTIFICATE-----\n")
        self.assertIn("tls_listeners[0].certfile: '%s' holds a malformed certificate" % path,
                      self.start_fails(certfile=path))

    def test_a_key_that_does_not_match_the_certificate_is_named(self):
        err = self.start_fails(keyfile=certs.guest[1])
        self.assertIn("tls_listeners[0].keyfile: the private key in '%s' does not belong to the certificate "
                      "in tls_listeners[0].certfile '%s'" % (certs.guest[1], certs.server[0]), err)

    def test_an_encrypted_key_is_named(self):
        path = os.path.join(certs.dir, unique("encrypted") + ".key")
        subprocess.run(["openssl", "pkey", "-in", certs.server[1], "-aes256", "-passout", "pass:secret",
                        "-out", path], check=True, capture_output=True)
        self.assertIn("tls_listeners[0].keyfile: '%s' holds a private key encrypted with a passphrase" % path,
                      self.start_fails(keyfile=path))

    @unittest.skipIf(os.geteuid() == 0, "root reads any file")
    def test_an_unreadable_file_is_named(self):
        path = self.file("unreadable", open(certs.server[0]).read())
        os.chmod(path, 0)
        self.assertIn("tls_listeners[0].certfile: cannot read '%s': Permission denied" % path,
                      self.start_fails(certfile=path))


if __name__ == "__main__":
    unittest.main()
