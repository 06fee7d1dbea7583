"""The management API over HTTPS (config `management_tls`, RabbitMQ's management.ssl): the same
answers as over HTTP with the certificate helpers of the AMQPS listeners, a client that does not
trust the CA refused in the handshake, plain HTTP on the HTTPS port dropped while the API keeps
serving, keep-alive over TLS, and a start-up error naming the key for a bad certificate file.
"""
import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import unittest

import brokers
import procs
import tls_certs

certs = None
broker = None
https_port = None


def setUpModule():
    global certs, broker, https_port
    if brokers.is_rabbitmq():
        return
    certs = tls_certs.Certs()
    https_port = procs.free_port()
    cert, key = certs.server
    broker = brokers.start_broker({
        "management": {"bind": "127.0.0.1", "port": 0},
        "management_tls": {"bind": "127.0.0.1", "port": https_port, "certfile": cert, "keyfile": key}})
    procs.wait_until(_answers, 30, what="the HTTPS listener")


def tearDownModule():
    if broker:
        broker.stop()
    if certs:
        certs.cleanup()


def _client_context(cafile=None):
    ctx = ssl.create_default_context(cafile=cafile or certs.ca)
    return ctx


def _get(conn, path, user="guest", password="guest"):
    headers = {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    text = r.read().decode()
    return r.status, (json.loads(text) if text else None)


def _answers():
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", https_port, context=_client_context(), timeout=5)
        try:
            return _get(conn, "/api/overview")[0] == 200
        finally:
            conn.close()
    except OSError:
        return False


@brokers.warren_only("the interop harness configures Warren's management_tls; RabbitMQ's management.ssl is "
                     "configured otherwise")
class HttpsTests(unittest.TestCase):
    def test_the_api_answers_over_https_with_keep_alive(self):
        conn = http.client.HTTPSConnection("127.0.0.1", https_port, context=_client_context(), timeout=10)
        try:
            status, who = _get(conn, "/api/whoami")
            self.assertEqual((status, who["name"]), (200, "guest"))
            # The same TLS connection serves the next requests.
            status, queues = _get(conn, "/api/queues")
            self.assertEqual((status, queues), (200, []))
            self.assertEqual(_get(conn, "/api/overview", user=None)[0], 401)
            self.assertEqual(_get(conn, "/api/overview", password="wrong")[0], 401)
        finally:
            conn.close()

    def test_a_client_that_does_not_trust_the_certificate_is_refused(self):
        other_ca = certs.path("other-ca.pem")
        conn = http.client.HTTPSConnection("127.0.0.1", https_port, context=_client_context(other_ca), timeout=10)
        with self.assertRaises(ssl.SSLError):
            _get(conn, "/api/overview")
        conn.close()
        self.assertTrue(_answers())

    def test_plain_http_on_the_https_port_is_dropped_and_the_api_keeps_serving(self):
        with socket.create_connection(("127.0.0.1", https_port), timeout=10) as s:
            s.sendall(b"GET /api/overview HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertNotIn(b"HTTP/1.1 200", data)
        self.assertTrue(_answers())

    def test_a_bad_certificate_file_stops_the_start_naming_the_key(self):
        path = os.path.join(certs.dir, "management.json")
        missing = os.path.join(certs.dir, "no-such.pem")
        with open(path, "w") as f:
            json.dump({"management_tls": {"port": procs.free_port(), "certfile": missing,
                                          "keyfile": certs.server[1]}}, f)
        res = subprocess.run([brokers.WARREN, "--port", "0", "--management-port", "0", "--data-dir", "",
                              "--config", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("management_tls.certfile: cannot read '%s'" % missing, res.stderr)


if __name__ == "__main__":
    unittest.main()
