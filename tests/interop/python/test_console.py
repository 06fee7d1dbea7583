"""The web console (mgmt/console/) in headless Chromium: tests/interop/node/console_browser.js,
driven by playwright-core, against a Warren with 10,000 queues (imported as definitions) and one
AMQP connection for the console to close. Screenshots and the exported definitions are kept in
console-test/ beside the broker's build (ignored by git). Needs Debian's `chromium`
(scripts/install-deps.sh test installs it); skipped, saying so, where it is absent.
"""
import http.client
import os
import shutil
import subprocess
import unittest

import pika

import brokers
import mgmt_http

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUEUES = 10000
NEEDLE = "console-needle"
DLQ, DLQ_WORK = "console-dead-letters", "console-work"


@unittest.skipIf(brokers.is_rabbitmq(), "Warren's own console: RabbitMQ serves another one")
class ConsoleFilesTests(unittest.TestCase):
    """The files over a real socket: a 304 carries no body, so the kept-alive connection goes on."""

    @classmethod
    def setUpClass(cls):
        cls.m = mgmt_http.start()

    @classmethod
    def tearDownClass(cls):
        cls.m.stop()

    def test_revalidation_gets_304_and_the_connection_stays_usable(self):
        c = http.client.HTTPConnection("127.0.0.1", self.m.http_port, timeout=10)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            page = r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Type"), "text/html; charset=utf-8")
            self.assertEqual(r.getheader("Cache-Control"), "no-cache")
            etag = r.getheader("ETag")
            self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
            c.request("GET", "/", headers={"If-None-Match": etag})
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (304, b""))
            self.assertIsNone(r.getheader("Content-Length"))
            self.assertEqual(r.getheader("ETag"), etag)
            c.request("GET", "/vendor/uPlot.iife.min.js")  # the same connection: no stray bytes
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Type"), "text/javascript; charset=utf-8")
            self.assertIn(b"uPlot", r.read())
            c.request("GET", "/../../etc/passwd")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (404, b"Not Found\n"))
            self.assertIn(b"js/main.js", page)
        finally:
            c.close()


@unittest.skipIf(brokers.is_rabbitmq(), "Warren's own console: RabbitMQ serves another one")
@unittest.skipIf(CHROMIUM is None, "chromium is not installed (scripts/install-deps.sh test installs it)")
class ConsoleTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core")):
            raise RuntimeError("playwright-core is not installed: run `npm ci` in tests/interop/node "
                               "(tests/interop/run.sh does)")
        cls.m = mgmt_http.start()
        # 10,000 queues in one import, the needle among them (not first, not last).
        names = ["load-%05d" % i for i in range(QUEUES - 3)]  # with the needle and the two below: QUEUES
        names.insert(QUEUES // 2, NEEDLE)
        cls.m.ok("POST", "/api/definitions", {"queues": [
            {"name": n, "vhost": "/", "durable": False, "auto_delete": False, "arguments": {}} for n in names]})
        # A dead-letter queue for the workbench: three messages rejected from its work queue (the
        # test holds one unacked).
        conn = cls.m.broker.connect()
        ch = conn.channel()
        ch.queue_declare(DLQ)
        ch.queue_declare(DLQ_WORK, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DLQ})
        for cause in ("Timeout", "Bad", "Held"):
            ch.basic_publish("", DLQ_WORK, b"job", pika.BasicProperties(headers={"error.cause": cause}))
            method, _, _ = ch.basic_get(DLQ_WORK)
            ch.basic_reject(method.delivery_tag, requeue=False)
        ch.queue_declare(DLQ, passive=True)
        conn.close()

    @classmethod
    def tearDownClass(cls):
        cls.m.stop()

    def test_console_in_chromium(self):
        conn = self.m.broker.connect()
        try:
            # The oldest dead letter, taken and not acknowledged: the workbench lists it as unacked.
            method, _, _ = conn.channel().basic_get(DLQ)
            self.assertIsNotNone(method)
            out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(brokers.WARREN))), "console-test")
            env = dict(os.environ, CONSOLE_URL="http://127.0.0.1:%d/" % self.m.http_port, CONSOLE_OUT=out,
                       CONSOLE_QUEUE=NEEDLE, CONSOLE_QUEUES=str(QUEUES), CHROMIUM=CHROMIUM,
                       CONSOLE_DLQ=DLQ)
            res = subprocess.run([shutil.which("node") or "node", "console_browser.js"], cwd=NODE_DIR, env=env,
                                 capture_output=True, timeout=300)
            text = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
            self.assertEqual(res.returncode, 0, "console_browser.js failed:\n" + text)
            self.assertIn("console test passed", text)
            for shot in ("overview.png", "queues.png", "queue.png", "workbench.png"):
                self.assertGreater(os.path.getsize(os.path.join(out, shot)), 10000, shot)
            # The workbench redrove one dead letter back to its work queue.
            self.assertEqual(self.m.ok("GET", "/api/queues/%2F/" + DLQ_WORK)["messages_ready"], 1)
            # The connection the console closed is closed for its client too, with the reason given.
            with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as closed:
                for _ in range(50):
                    conn.process_data_events(time_limit=0.2)
            self.assertEqual(closed.exception.reply_code, 320)
            self.assertIn("closed by the console test", closed.exception.reply_text)
        finally:
            if conn.is_open:
                conn.close()


if __name__ == "__main__":
    unittest.main()
