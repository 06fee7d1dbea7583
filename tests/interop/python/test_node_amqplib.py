"""amqplib (Node.js) against the broker: runs each tests/interop/node/*.test.js with node's test
runner against one broker, passing its URL in AMQP_URL. run.sh installs amqplib with `npm ci`.
"""
import glob
import os
import shutil
import subprocess
import unittest

import brokers

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
broker = None


def setUpModule():
    global broker
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "amqplib")):
        raise RuntimeError("amqplib is not installed: run `npm ci` in tests/interop/node "
                           "(tests/interop/run.sh does)")
    broker = brokers.start_broker()


def tearDownModule():
    if broker:
        broker.stop()


class AmqplibTests(unittest.TestCase):
    def run_node(self, name):
        path = os.path.join(NODE_DIR, name)
        env = dict(os.environ, AMQP_URL=broker.url())
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

    def test_every_node_test_file_is_run_here(self):
        files = {os.path.basename(p) for p in glob.glob(os.path.join(NODE_DIR, "*.test.js"))}
        self.assertEqual(files, {"work_queue.test.js", "confirm.test.js", "stream_groups.test.js"})


if __name__ == "__main__":
    unittest.main()
