"""The management HTTP API: status codes, JSON field types, authentication, pagination and
columns, errors for bad JSON and unknown vhosts or objects, every endpoint Warren implements,
HTTP/1.1 keep-alive and pipelining, request limits, and RabbitMQ's own rabbitmqadmin against it.
Runs against RabbitMQ 3.10 with its management plugin under --broker rabbitmq.
"""
import os
import shutil
import socket
import subprocess
import time
import unittest

import pika

import brokers
import mgmt_http
import procs
from helpers import unique, wait_for
from mgmt_http import quote

m = None


def setUpModule():
    global m
    m = mgmt_http.start()


def tearDownModule():
    m.stop()


def wait_stats(predicate, what):
    """RabbitMQ collects statistics every second (Warren's counters are live): poll until seen."""
    return procs.wait_until(predicate, 20, interval=0.2, what=what)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class AuthTests(unittest.TestCase):
    def test_no_credentials_is_401_with_a_basic_challenge(self):
        status, _, headers = m.get("/api/overview", user=None)
        self.assertEqual(status, 401)
        self.assertIn("Basic", {k.lower(): v for k, v in headers.items()}.get("www-authenticate", ""))

    def test_wrong_password_is_401(self):
        status, body, _ = m.get("/api/overview", password="wrong")
        self.assertEqual((status, body), (401, {"error": "not_authorized", "reason": "Login failed"}))

    def test_unknown_user_is_401(self):
        self.assertEqual(m.get("/api/queues", user="nobody", password="x")[0], 401)

    def test_whoami_names_the_default_user_as_administrator(self):
        status, body, _ = m.get("/api/whoami")
        self.assertEqual(status, 200)
        self.assertEqual(body["name"], "guest")
        self.assertIn("administrator", body["tags"])


class OverviewTests(unittest.TestCase):
    def test_overview_fields_have_rabbitmqs_types(self):
        status, o, _ = m.get("/api/overview")
        self.assertEqual(status, 200)
        for key in ("rabbitmq_version", "product_name", "node", "cluster_name", "management_version"):
            self.assertIsInstance(o[key], str, key)
        for key in ("connections", "channels", "consumers", "exchanges", "queues"):
            self.assertIsInstance(o["object_totals"][key], int, key)
        for key in ("messages", "messages_ready", "messages_unacknowledged"):
            self.assertIsInstance(o["queue_totals"][key], int, key)
        # RabbitMQ gives message_stats only once there has been traffic; then with rates.
        if "publish" in o["message_stats"]:
            self.assertIsInstance(o["message_stats"]["publish_details"]["rate"], float)
        self.assertTrue(any(l["protocol"] == "amqp" and l["port"] == m.broker.port for l in o["listeners"]))

    def test_nodes_lists_one_running_node(self):
        status, nodes, _ = m.get("/api/nodes")
        self.assertEqual(status, 200)
        self.assertEqual(len(nodes), 1)
        node = nodes[0]
        self.assertTrue(node["running"])
        self.assertIsInstance(node["mem_used"], int)
        self.assertIsInstance(node["mem_alarm"], bool)
        self.assertEqual(m.get("/api/nodes/" + quote(node["name"]))[1]["name"], node["name"])

    @brokers.warren_only("RabbitMQ 3.10 answers an unknown node with 500 (a crash in its handler)")
    def test_an_unknown_node_is_404(self):
        self.assertEqual(m.get("/api/nodes/nope@nowhere")[0], 404)

    def test_vhosts(self):
        status, vhosts, _ = m.get("/api/vhosts")
        self.assertEqual(status, 200)
        self.assertIn("/", [v["name"] for v in vhosts])
        status, v, _ = m.get("/api/vhosts/%2F")
        self.assertEqual(status, 200)
        self.assertIsInstance(v["messages"], int)
        self.assertEqual(m.get("/api/vhosts/nope")[0], 404)

    def test_health_checks(self):
        self.assertEqual(m.get("/api/health/checks/alarms")[1], {"status": "ok"})
        self.assertEqual(m.get("/api/health/checks/local-alarms")[1], {"status": "ok"})
        self.assertEqual(m.get("/api/health/checks/virtual-hosts")[1], {"status": "ok"})
        status, body, _ = m.get("/api/health/checks/port-listener/%d" % m.broker.port)
        self.assertEqual((status, body["status"], body["port"]), (200, "ok", m.broker.port))
        status, body, _ = m.get("/api/health/checks/port-listener/1")
        self.assertEqual((status, body["status"]), (503, "failed"))

    def test_users_permissions_and_empty_lists(self):
        status, users, _ = m.get("/api/users")
        self.assertEqual(status, 200)
        self.assertIn("guest", [u["name"] for u in users])
        self.assertEqual(m.get("/api/users/guest")[1]["tags"], ["administrator"])
        self.assertEqual(m.get("/api/users/nope")[0], 404)
        status, perms, _ = m.get("/api/permissions/%2F/guest")
        self.assertEqual((status, perms["configure"]), (200, ".*"))
        for path in ("/api/topic-permissions", "/api/policies", "/api/operator-policies",
                     "/api/vhost-limits", "/api/user-limits", "/api/policies/%2F"):
            status, body, _ = m.get(path)
            self.assertEqual((status, body), (200, []), path)
        self.assertEqual(m.get("/api/policies/nope")[0], 404)

    def test_unknown_path_is_404(self):
        self.assertEqual(m.get("/api/nope")[0], 404)


class QueueTests(unittest.TestCase):
    def test_put_get_delete_queue(self):
        name = unique("mq")
        path = "/api/queues/%2F/" + quote(name)
        args = {"x-message-ttl": 60000, "x-dead-letter-exchange": "dlx"}
        self.assertEqual(m.request("PUT", path, {"durable": True, "auto_delete": False, "arguments": args})[0], 201)
        self.assertEqual(m.request("PUT", path, {"durable": True, "auto_delete": False, "arguments": args})[0], 204)
        # RabbitMQ fills in the counts with its first statistics event.
        q = wait_stats(lambda: (lambda r: r[1] if r[0] == 200 and "messages" in r[1] else None)(m.get(path)),
                       "the queue's counts")
        # GET after PUT returns what was set, with the JSON types it was set with.
        self.assertEqual((q["name"], q["vhost"], q["durable"], q["auto_delete"]), (name, "/", True, False))
        self.assertEqual(q["arguments"], args)
        for key in ("messages", "messages_ready", "messages_unacknowledged", "consumers", "memory"):
            self.assertIsInstance(q[key], int, key)
        status, body, _ = m.request("PUT", path, {"durable": False})
        self.assertEqual(status, 400)
        self.assertIn("inequivalent arg 'durable'", body["reason"])
        self.assertEqual(m.request("DELETE", path)[0], 204)
        self.assertEqual(m.get(path)[0], 404)
        self.assertEqual(m.request("DELETE", path)[0], 404)

    def test_errors_bad_json_unknown_vhost_unknown_queue(self):
        status, body, _ = m.request("PUT", "/api/queues/%2F/" + unique("bad"), raw=b"{not json")
        self.assertEqual((status, body["error"]), (400, "bad_request"))
        status, body, _ = m.request("PUT", "/api/queues/nope/q", {"durable": False})
        self.assertEqual((status, body["reason"]), (404, "vhost_not_found"))
        self.assertEqual(m.get("/api/queues/nope")[0], 404)
        self.assertEqual(m.get("/api/queues/%2F/" + unique("missing"))[0], 404)
        self.assertEqual(m.request("POST", "/api/queues/%2F/" + unique("missing") + "/get",
                                   {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})[0], 404)

    def test_statistics_after_traffic(self):
        name = unique("statq")
        conn = m.broker.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(name)
            ch.confirm_delivery()
            for i in range(10):
                ch.basic_publish("", name, b"m%d" % i)
            ch.basic_qos(prefetch_count=4)
            got = []
            ch.basic_consume(name, lambda c, meth, p, b: got.append(meth.delivery_tag))
            wait_for(conn, lambda: len(got) == 4, what="4 deliveries")
            ch.basic_ack(got[0])
            ch.basic_ack(got[1])
            wait_for(conn, lambda: len(got) == 6, what="2 more deliveries")
            path = "/api/queues/%2F/" + quote(name)

            def counted():
                conn.process_data_events(0)
                q = m.get(path)[1]
                s = q.get("message_stats", {})
                return q if (s.get("publish") == 10 and s.get("ack") == 2 and s.get("deliver_get") == 6
                             and q["messages_unacknowledged"] == 4) else None
            q = wait_stats(counted, "the queue's statistics")
            self.assertEqual(q["messages_ready"], 4)
            self.assertEqual(q["messages"], 8)
            self.assertEqual(q["consumers"], 1)
            self.assertIsInstance(q["message_stats"]["publish_details"]["rate"], float)
            self.assertIsInstance(q["messages_details"]["rate"], float)
            self.assertEqual(len(q["consumer_details"]), 1)
            ch.close()
        finally:
            conn.close()

    def test_purge_get_and_publish(self):
        name = unique("pq")
        path = "/api/queues/%2F/" + quote(name)
        m.ok("PUT", path, {"durable": False})
        status, body, _ = m.request("POST", "/api/exchanges/%2F/amq.default/publish",
                                    {"properties": {"headers": {"h": 1}, "delivery_mode": 1},
                                     "routing_key": name, "payload": "hello", "payload_encoding": "string"})
        self.assertEqual((status, body), (200, {"routed": True}))
        m.ok("POST", "/api/exchanges/%2F/amq.default/publish",
             {"properties": {}, "routing_key": name, "payload": "/wAB", "payload_encoding": "base64"})
        status, msgs, _ = m.request("POST", path + "/get",
                                    {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"})
        self.assertEqual(status, 200)
        self.assertEqual([x["payload"] for x in msgs], ["hello", "/wAB"])  # not UTF-8: base64
        self.assertEqual([x["payload_encoding"] for x in msgs], ["string", "base64"])
        self.assertEqual(msgs[0]["properties"]["headers"], {"h": 1})
        self.assertEqual(msgs[0]["message_count"], 1)
        self.assertIsInstance(msgs[0]["payload_bytes"], int)
        # Requeued: there again, redelivered.
        status, again, _ = m.request("POST", path + "/get",
                                     {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
        self.assertEqual((again[0]["payload"], again[0]["redelivered"]), ("hello", True))
        self.assertEqual(m.request("DELETE", path + "/contents")[0], 204)
        status, empty, _ = m.request("POST", path + "/get",
                                     {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
        self.assertEqual((status, empty), (200, []))
        status, body, _ = m.request("POST", "/api/exchanges/%2F/amq.default/publish",
                                    {"properties": {}, "routing_key": unique("nowhere"), "payload": "x",
                                     "payload_encoding": "string"})
        self.assertEqual((status, body), (200, {"routed": False}))


class PaginationTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = unique("page")
        for i in range(5):
            m.ok("PUT", "/api/queues/%2F/" + quote("%s-%d" % (cls.prefix, i)), {"durable": False})

    def test_pages_have_rabbitmqs_counts(self):
        status, page, _ = m.get("/api/queues/%2F?page=2&page_size=2&name=" + quote(self.prefix))
        self.assertEqual(status, 200)
        self.assertEqual({k: page[k] for k in ("filtered_count", "item_count", "page", "page_count", "page_size")},
                         {"filtered_count": 5, "item_count": 2, "page": 2, "page_count": 3, "page_size": 2})
        self.assertIsInstance(page["total_count"], int)
        self.assertEqual([q["name"] for q in page["items"]], ["%s-2" % self.prefix, "%s-3" % self.prefix])

    def test_bad_page_parameters_are_400(self):
        status, body, _ = m.get("/api/queues?page=1&page_size=0")
        self.assertEqual((status, body["error"]), (400, "invalid_pagination_parameters"))
        status, body, _ = m.get("/api/queues?page=1000&page_size=1&name=" + quote(self.prefix))
        self.assertEqual((status, body["error"]), (400, "page_out_of_range"))

    def test_regex_filter_and_reverse_sort(self):
        status, page, _ = m.get("/api/queues?page=1&page_size=10&use_regex=true&sort=name&sort_reverse=true"
                                "&name=" + quote("^%s-[13]$" % self.prefix))
        self.assertEqual(status, 200)
        self.assertEqual([q["name"] for q in page["items"]], ["%s-3" % self.prefix, "%s-1" % self.prefix])

    def test_columns_keep_only_the_named_fields(self):
        def listed():
            status, items, _ = m.get("/api/queues/%2F?columns=name,messages,message_stats.publish")
            self.assertEqual(status, 200)
            mine = [q for q in items if q["name"].startswith(self.prefix)]
            return mine if all("messages" in q for q in mine) else None
        mine = wait_stats(listed, "the queues' counts")
        self.assertEqual(len(mine), 5)
        for q in mine:
            self.assertLessEqual(set(q), {"name", "messages", "message_stats"})
            self.assertIsInstance(q["messages"], int)


class ExchangeAndBindingTests(unittest.TestCase):
    def test_put_get_delete_exchange(self):
        name = unique("mx")
        path = "/api/exchanges/%2F/" + quote(name)
        self.assertEqual(m.request("PUT", path, {"type": "topic", "durable": False})[0], 201)
        self.assertEqual(m.request("PUT", path, {"type": "topic", "durable": False})[0], 204)
        status, x, _ = m.get(path)
        self.assertEqual((status, x["type"], x["durable"], x["auto_delete"], x["internal"]),
                         (200, "topic", False, False, False))
        self.assertEqual(m.request("PUT", path, {"type": "fanout", "durable": False})[0], 400)
        status, body, _ = m.request("PUT", "/api/exchanges/%2F/" + unique("bad"), {"type": "nope"})
        self.assertEqual((status, body["reason"]), (400, "unknown exchange type 'nope'"))
        self.assertIn(name, [e["name"] for e in m.get("/api/exchanges/%2F")[1]])
        self.assertEqual(m.request("DELETE", path)[0], 204)
        self.assertEqual(m.get(path)[0], 404)

    def test_bindings_and_properties_key(self):
        x, q = unique("bx"), unique("bq")
        m.ok("PUT", "/api/exchanges/%2F/" + quote(x), {"type": "topic", "durable": False})
        m.ok("PUT", "/api/queues/%2F/" + quote(q), {"durable": False})
        base = "/api/bindings/%%2F/e/%s/q/%s" % (quote(x), quote(q))
        self.assertEqual(m.request("POST", base, {"routing_key": "a.*", "arguments": {"x-foo": "bar"}})[0], 201)
        self.assertEqual(m.request("POST", base, {"routing_key": "a.b", "arguments": {}})[0], 201)
        status, found, _ = m.get(base)
        self.assertEqual(status, 200)
        keys = sorted(b["properties_key"] for b in found)
        # RabbitMQ's key: the quoted routing key, and ~ with the hash of the arguments.
        self.assertEqual(keys, ["a.%2A~EDqv5Q", "a.b"])
        self.assertEqual(m.get(base + "/" + quote("a.%2A~EDqv5Q"))[1]["arguments"], {"x-foo": "bar"})
        source = m.get("/api/exchanges/%%2F/%s/bindings/source" % quote(x))[1]
        self.assertEqual(len(source), 2)
        queue_bindings = m.get("/api/queues/%%2F/%s/bindings" % quote(q))[1]
        self.assertEqual(sorted(b["source"] for b in queue_bindings), ["", x, x])  # with the default exchange's
        self.assertEqual(m.request("DELETE", base + "/" + quote("a.%2A~EDqv5Q"))[0], 204)
        self.assertEqual(m.get(base + "/" + quote("a.%2A~EDqv5Q"))[0], 404)
        self.assertIn(x, [b["source"] for b in m.get("/api/bindings/%2F")[1]])


class ConnectionTests(unittest.TestCase):
    def test_connections_channels_consumers_and_closing_one(self):
        name = unique("conn")
        conn = m.broker.connect(client_properties={"connection_name": name})
        try:
            ch = conn.channel()
            q = ch.queue_declare("", exclusive=True).method.queue
            ch.basic_qos(prefetch_count=7)
            ch.basic_consume(q, lambda *a: None, consumer_tag=name + "-ctag")

            def mine():
                conn.process_data_events(0)
                found = [c for c in m.get("/api/connections")[1] if c.get("user_provided_name") == name]
                return found[0] if found else None
            c = wait_stats(mine, "the connection in /api/connections")
            self.assertEqual((c["user"], c["vhost"], c["state"]), ("guest", "/", "running"))
            for key in ("channels", "peer_port", "port", "frame_max", "channel_max", "timeout", "connected_at",
                        "recv_oct", "send_oct"):
                self.assertTrue(is_number(c[key]), key)
            self.assertEqual(c["client_properties"]["connection_name"], name)
            self.assertEqual(m.get("/api/connections/" + quote(c["name"]))[1]["name"], c["name"])
            self.assertIn(c["name"], [x["name"] for x in m.get("/api/vhosts/%2F/connections")[1]])
            channels = m.get("/api/connections/%s/channels" % quote(c["name"]))[1]
            self.assertEqual(len(channels), 1)
            self.assertEqual(channels[0]["consumer_count"], 1)
            status, one, _ = m.get("/api/channels/" + quote(channels[0]["name"]))
            self.assertEqual((status, one["number"]), (200, channels[0]["number"]))
            consumers = [x for x in m.get("/api/consumers/%2F")[1] if x["consumer_tag"] == name + "-ctag"]
            self.assertEqual(len(consumers), 1)
            self.assertEqual((consumers[0]["queue"]["name"], consumers[0]["ack_required"]), (q, True))
            self.assertEqual(m.request("DELETE", "/api/connections/" + quote(c["name"]))[0], 204)
            with self.assertRaises(pika.exceptions.AMQPConnectionError):
                wait_for(conn, lambda: False, timeout=10, what="the connection to close")
            self.assertEqual(m.request("DELETE", "/api/connections/nope")[0], 404)
        finally:
            if conn.is_open:
                conn.close()


class DefinitionsTests(unittest.TestCase):
    def test_export_and_import(self):
        q, x = unique("defq"), unique("defx")
        status, body, _ = m.request("POST", "/api/definitions", {
            "queues": [{"name": q, "vhost": "/", "durable": True, "auto_delete": False,
                        "arguments": {"x-max-length": 10}}],
            "exchanges": [{"name": x, "vhost": "/", "type": "fanout", "durable": True, "auto_delete": False,
                           "internal": False, "arguments": {}}],
            "bindings": [{"source": x, "vhost": "/", "destination": q, "destination_type": "queue",
                          "routing_key": "", "arguments": {}}]})
        self.assertIn(status, (201, 204), body)
        status, d, _ = m.get("/api/definitions")
        self.assertEqual(status, 200)
        self.assertIn({"name": q, "vhost": "/", "durable": True, "auto_delete": False,
                       "arguments": {"x-max-length": 10}}, d["queues"])
        self.assertIn(x, [e["name"] for e in d["exchanges"]])
        self.assertIn((x, q), [(b["source"], b["destination"]) for b in d["bindings"]])
        for key in ("users", "vhosts", "permissions", "policies", "parameters"):
            self.assertIsInstance(d[key], list, key)
        self.assertEqual(m.request("POST", "/api/definitions", raw=b"[1,")[0], 400)
        self.assertEqual(m.get("/api/definitions/%2F")[0], 200)
        self.assertEqual(m.get("/api/definitions/nope")[0], 400)  # RabbitMQ 3.10: 400, not 404


class HttpTests(unittest.TestCase):
    def _exchange(self, payload, sock=None):
        s = sock or socket.create_connection(("127.0.0.1", m.http_port), timeout=10)
        s.sendall(payload)
        return s

    def _read_responses(self, s, count):
        data = b""
        responses = []
        while len(responses) < count:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            while b"\r\n\r\n" in data:
                head, rest = data.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(rest) < length:
                    break
                responses.append((head.split(b"\r\n")[0], rest[:length]))
                data = rest[length:]
        return responses

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        import http.client
        import base64
        c = http.client.HTTPConnection("127.0.0.1", m.http_port, timeout=10)
        auth = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
        for _ in range(3):
            c.request("GET", "/api/whoami", headers=auth)
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        c.close()

    def test_pipelined_requests_are_answered_in_order(self):
        auth = b"Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"
        req = b"GET /api/whoami HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
        req404 = b"GET /api/queues/nope HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
        s = self._exchange(req + req404 + req)
        got = self._read_responses(s, 3)
        s.close()
        self.assertEqual([line.split(b" ")[1] for line, _ in got], [b"200", b"404", b"200"])

    @brokers.warren_only("Warren's limit on the request head (16 KiB)")
    def test_an_oversized_header_is_refused_and_the_connection_closed(self):
        s = self._exchange(b"GET /api/overview HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
        got = self._read_responses(s, 1)
        self.assertEqual(got[0][0].split(b" ")[1], b"431")
        self.assertEqual(s.recv(100), b"")  # closed
        s.close()

    def test_garbage_is_400_and_the_connection_closed(self):
        s = self._exchange(b"NOT HTTP AT ALL\r\n\r\n")
        got = self._read_responses(s, 1)
        self.assertEqual(got[0][0].split(b" ")[1], b"400")
        s.close()

    def test_a_chunked_body_is_read(self):
        name = unique("chunked").encode()
        body = b'{"durable": false}'
        req = (b"PUT /api/queues/%2F/" + name + b" HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        s = self._exchange(req)
        got = self._read_responses(s, 1)
        s.close()
        self.assertEqual(got[0][0].split(b" ")[1], b"201")


class ListenerTests(unittest.TestCase):
    @brokers.warren_only("RabbitMQ does not boot when its management port is taken")
    def test_a_taken_management_port_leaves_amqp_running_without_the_api(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            b = brokers.start_broker({"management": {"bind": "127.0.0.1", "port": port}})
            try:
                conn = b.connect()
                conn.channel().queue_declare("", exclusive=True)
                conn.close()
                self.assertIn("the management API is off", b.log_text())
            finally:
                b.stop()


@unittest.skipIf(shutil.which("rabbitmqadmin") is None, "rabbitmqadmin is not installed (rabbitmq-server)")
class RabbitmqadminTests(unittest.TestCase):
    def admin(self, *args):
        r = subprocess.run(["rabbitmqadmin", "-H", "127.0.0.1", "-P", str(m.http_port), "-u", "guest",
                            "-p", "guest"] + list(args), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        return r.stdout

    def test_rabbitmqadmin_declares_lists_publishes_and_gets(self):
        q, x = unique("admq"), unique("admx")
        self.admin("declare", "queue", "name=" + q, "durable=false")
        self.admin("declare", "exchange", "name=" + x, "type=fanout", "durable=false")
        self.admin("declare", "binding", "source=" + x, "destination=" + q)
        self.assertIn(q, self.admin("list", "queues"))
        self.assertIn(x, self.admin("list", "exchanges"))
        self.admin("publish", "exchange=" + x, "routing_key=k", "payload=from-admin")
        self.assertIn("from-admin", self.admin("get", "queue=" + q, "ackmode=ack_requeue_false"))
        self.assertIn("guest", self.admin("list", "users"))
        self.admin("list", "connections")
        self.admin("list", "bindings")
        self.admin("show", "overview")
        self.admin("delete", "queue", "name=" + q)
        self.assertNotIn(q, self.admin("list", "queues"))


if __name__ == "__main__":
    unittest.main()
