"""amqplib (Node.js) against the broker: runs each tests/interop/node/*.test.js with node's test
runner against one broker, passing its URL in AMQP_URL. run.sh installs amqplib with `npm ci`.
A test restarts the broker (SIGTERM, same data and port) by POSTing to INTEROP_RESTART_URL, a
loopback HTTP endpoint served here, which answers once the broker accepts connections again.
"""
import glob
import http.server
import os
import shutil
import subprocess
import threading
import unittest

import brokers

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
broker = None
control = None


class _RestartHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/restart":
            self.send_error(404)
            return
        try:
            broker.restart()
            status, text = 200, "restarted"
        except Exception as e:  # the node test fails with the reason; stop() reports it too
            status, text = 500, "restart failed: %s" % e
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def setUpModule():
    global broker, control
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "amqplib")):
        raise RuntimeError("amqplib is not installed: run `npm ci` in tests/interop/node "
                           "(tests/interop/run.sh does)")
    broker = brokers.start_broker()
    # One request at a time, on the server's thread while the test's subprocess.run waits. A
    # restarted broker is that thread's child, and children die with the thread that started
    # them (PR_SET_PDEATHSIG): the thread runs until the broker is stopped.
    control = http.server.HTTPServer(("127.0.0.1", 0), _RestartHandler)
    threading.Thread(target=control.serve_forever, daemon=True).start()


def tearDownModule():
    try:
        if broker:
            broker.stop()
    finally:
        if control:
            control.shutdown()
            control.server_close()


class AmqplibTests(unittest.TestCase):
    def run_node(self, name):
        path = os.path.join(NODE_DIR, name)
        env = dict(os.environ, AMQP_URL=broker.url(),
                   INTEROP_RESTART_URL="http://127.0.0.1:%d/restart" % control.server_address[1])
        res = subprocess.run([shutil.which("node") or "node", "--test", "--test-reporter=spec",
                              path], cwd=NODE_DIR, env=env, capture_output=True, timeout=180)
        out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, "node --test %s failed:\n%s" % (name, out))
        self.assertRegex(out, r"pass [1-9]")  # the runner ran tests, not zero of them

    def test_work_queue(self):
        self.run_node("work_queue.test.js")

    def test_confirms(self):
        self.run_node("confirm.test.js")

    @brokers.warren_only("consumer groups (x-stream-group) are Warren's")
    def test_stream_groups(self):
        self.run_node("stream_groups.test.js")

    def test_streams(self):
        self.run_node("streams.test.js")

    def test_every_node_test_file_is_run_here(self):
        files = {os.path.basename(p) for p in glob.glob(os.path.join(NODE_DIR, "*.test.js"))}
        self.assertEqual(files, {"work_queue.test.js", "confirm.test.js", "stream_groups.test.js",
                                 "streams.test.js"})


if __name__ == "__main__":
    unittest.main()
