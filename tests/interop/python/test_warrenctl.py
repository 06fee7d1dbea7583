"""tools/warrenctl, the operator's CLI, against a running broker's management API: users,
vhosts, permissions, policies, definitions export and import, queues and connections. Each
command's effect is checked through the API or over AMQP, and errors exit non-zero with the
API's reason. Runs against RabbitMQ 3.10 with its management plugin too (--broker rabbitmq).
"""
import json
import os
import subprocess
import tempfile
import unittest

import pika

import brokers
import mgmt_http
from helpers import unique, wait_for
from mgmt_http import quote

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CTL = os.path.join(REPO, "tools", "warrenctl")
m = None


def setUpModule():
    global m
    m = mgmt_http.start()


def tearDownModule():
    m.stop()


def ctl(*args, check=True):
    argv = ["/usr/bin/python3", CTL, "--url", "http://127.0.0.1:%d" % m.http_port] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("warrenctl %s: %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def rows(out):
    lines = out.strip().splitlines()
    return [line.split("\t") for line in lines[1:]]


class WarrenctlTests(unittest.TestCase):
    def test_users_vhosts_and_permissions(self):
        user, vhost = unique("ctl-user"), unique("ctl-vhost")
        ctl("add_vhost", vhost, "--description", "the billing team")
        ctl("add_user", user, "s3cret")
        ctl("set_user_tags", user, "management", "policymaker")
        ctl("set_permissions", "-p", vhost, user, "^%s-.*" % user, ".*", ".*")
        listed = {r[0]: r[1] for r in rows(ctl("list_users").stdout)}
        self.assertEqual(sorted(listed[user].split(",")), ["management", "policymaker"])
        perms = {r[0]: r[1:] for r in rows(ctl("list_permissions", "-p", vhost).stdout)}
        self.assertEqual(perms[user], ["^%s-.*" % user, ".*", ".*"])
        # The password works over AMQP, and a change of password keeps the tags.
        creds = pika.PlainCredentials(user, "s3cret")
        pika.BlockingConnection(pika.ConnectionParameters(m.broker.host, m.broker.port, vhost, creds)).close()
        ctl("change_password", user, "n3w")
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.ConnectionParameters(m.broker.host, m.broker.port, vhost, creds,
                                                              connection_attempts=1))
        creds = pika.PlainCredentials(user, "n3w")
        pika.BlockingConnection(pika.ConnectionParameters(m.broker.host, m.broker.port, vhost, creds)).close()
        self.assertEqual(sorted(m.get("/api/users/" + user)[1]["tags"]), ["management", "policymaker"])
        ctl("clear_permissions", "-p", vhost, user)
        self.assertEqual(m.get("/api/permissions/%s/%s" % (quote(vhost), user))[0], 404)
        ctl("delete_user", user)
        ctl("delete_vhost", vhost)
        self.assertEqual(m.get("/api/vhosts/" + quote(vhost))[0], 404)

    def test_policies_apply_to_queues_at_once(self):
        q = unique("ctl-capped")
        conn = m.broker.connect()
        ch = conn.channel()
        ch.queue_declare(q)
        for i in range(5):
            ch.basic_publish("", q, b"m%d" % i)
        ctl("set_policy", "cap-" + q, "^%s$" % q, '{"max-length": 2}', "--apply-to", "queues", "--priority", "1")
        listed = {r[1]: r for r in rows(ctl("list_policies").stdout)}
        self.assertEqual(json.loads(listed["cap-" + q][4]), {"max-length": 2})
        self.assertEqual(listed["cap-" + q][5], "1")
        exported = m.get("/api/definitions")[1]
        self.assertIn("cap-" + q, [p["name"] for p in exported["policies"]])
        # Applied to the existing queue at once: it drops from the head down to 2.
        mgmt_http_wait_for_depth(q, 2)
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"m3")
        r = ctl("set_policy", "bad-" + q, ".*", '{"no-such-key": 1}', check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not recognised", r.stderr)
        ctl("clear_policy", "cap-" + q)
        self.assertFalse(rows(ctl("list_policies").stdout) and
                         any(r[1] == "cap-" + q for r in rows(ctl("list_policies").stdout)))
        ch.queue_delete(q)
        conn.close()

    def test_errors_exit_non_zero_with_the_reason(self):
        r = ctl("delete_user", unique("nobody"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 404", r.stderr)
        r = ctl("--password", "wrong", "list_users", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 401", r.stderr)
        r = ctl("set_policy", "p", ".*", "{not json", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not valid JSON", r.stderr)

    def test_queues_purge_and_connections(self):
        q = unique("ctl-q")
        conn = m.broker.connect(client_properties={"connection_name": "ctl-test"})
        ch = conn.channel()
        ch.queue_declare(q)
        for i in range(3):
            ch.basic_publish("", q, b"m%d" % i)
        mgmt_http_wait_for_depth(q, 3)
        listed = {r[0]: r for r in rows(ctl("list_queues", "name", "messages").stdout)}
        self.assertEqual(listed[q][1], "3")
        ctl("purge_queue", q)
        self.assertEqual(ch.queue_declare(q, passive=True).method.message_count, 0)
        names = [r[0] for r in rows(ctl("list_connections").stdout)]
        self.assertTrue(names)
        for name in names:
            ctl("close_connection", name, "closed by the warrenctl test")
        with self.assertRaises(pika.exceptions.AMQPError):
            for _ in range(100):
                conn.process_data_events(time_limit=0.1)
                ch.queue_declare(q, passive=True)

    def test_definitions_export_and_import(self):
        q = unique("ctl-durable")
        conn = m.broker.connect()
        conn.channel().queue_declare(q, durable=True)
        conn.close()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "defs.json")
            ctl("export_definitions", path)
            with open(path) as f:
                exported = json.load(f)
            self.assertIn(q, [x["name"] for x in exported["queues"]])
            m.ok("DELETE", "/api/queues/%s/%s" % (quote("/"), q))
            ctl("import_definitions", path)
        self.assertEqual(m.get("/api/queues/%s/%s" % (quote("/"), q))[0], 200)
        m.ok("DELETE", "/api/queues/%s/%s" % (quote("/"), q))

    @brokers.warren_only("super streams through the management API are Warren's shape")
    def test_super_streams(self):
        name = unique("ctl-clicks")
        ctl("add_super_stream", name, "--partitions", "3", "--max-age", "7D")
        path = "/api/stream/super-streams/%s/%s" % (quote("/"), name)
        self.assertEqual(m.get(path)[1]["partitions"], ["%s-%d" % (name, i) for i in range(3)])
        q = m.get("/api/queues/%s/%s-2" % (quote("/"), name))[1]
        self.assertEqual((q["type"], q["arguments"]["x-max-age"]), ("stream", "7D"))
        x = m.get("/api/exchanges/%s/%s" % (quote("/"), name))[1]
        self.assertEqual((x["type"], x["arguments"]), ("x-consistent-hash", {"x-super-stream": True}))
        # Each key reaches one partition, the same one every time.
        conn = m.broker.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        for _ in range(2):
            for k in range(30):
                ch.basic_publish(name, "key-%d" % k, b"k%d" % k)
        counts = [ch.queue_declare("%s-%d" % (name, i), durable=True, passive=True).method.message_count
                  for i in range(3)]
        self.assertEqual(sum(counts), 60)
        self.assertTrue(all(c % 2 == 0 and c > 0 for c in counts), counts)
        # Growing keeps the partitions and adds one; shrinking and bad counts are refused.
        ctl("add_super_stream", name, "--partitions", "4")
        self.assertEqual(len(m.get(path)[1]["partitions"]), 4)
        r = ctl("add_super_stream", name, "--partitions", "2", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("has 4 partitions: partitions cannot be removed", r.stderr)
        for bad in (0, "x", 1001):
            status, body, _ = m.request("PUT", path, {"partitions": bad})
            self.assertEqual(status, 400, bad)
            self.assertIn("partitions must be an integer from 1 to 1000", body["reason"])
        # A group reads every partition, the new one included.
        ch.basic_qos(prefetch_count=100)
        got = []
        for i in range(4):
            ch.basic_consume("%s-%d" % (name, i), lambda c, meth, p, body: got.append(body),
                             arguments={"x-stream-group": "ctl", "x-stream-offset": "first"})
        wait_for(conn, lambda: len(got) >= 60, what="60 deliveries")
        self.assertEqual(sorted(set(got)), sorted(b"k%d" % k for k in range(30)))
        conn.close()
        ctl("delete_super_stream", name)
        self.assertEqual(m.get(path)[0], 404)
        self.assertEqual(m.get("/api/queues/%s/%s-0" % (quote("/"), name))[0], 404)


def mgmt_http_wait_for_depth(queue, depth):
    import procs
    path = "/api/queues/%s/%s" % (quote("/"), queue)
    procs.wait_until(lambda: (m.get(path)[1] or {}).get("messages") == depth, 30,
                     what="queue %s at %d messages in the API" % (queue, depth))


if __name__ == "__main__":
    unittest.main()
