#!/usr/bin/python3
"""Record RabbitMQ 3.10's management API answers, for the reference-shape test.

    /usr/bin/python3 tools/mgmt_reference/record.py [--out tests/interop/python/mgmt_reference/rabbitmq-3.10.json]

Starts a private RabbitMQ node (tools/conformance/rabbitmq.py) with the management plugin,
builds a small topology (an exchange, queues, a binding with arguments, a consumer holding
unacknowledged messages, a monitoring and a management user), waits for the statistics to be
collected, then records the status and JSON body of every endpoint Warren implements. The test
(tests/interop/python/test_management_shapes.py) compares field names and JSON types, not values.
"""
import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import pika  # noqa: E402
from mgmt_node import management_node  # noqa: E402
from auth_sequence import STEPS as AUTH_STEPS, login  # noqa: E402


def request(port, method, path, body=None, user="guest", password="guest", raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method)
    if user is not None:
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return status, parsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "interop", "python", "mgmt_reference",
                                                  "rabbitmq-3.10.json"))
    a = ap.parse_args()

    node = management_node(start_timeout=300)
    http_port = node.http_port
    node.start()
    out = {}
    try:
        for _ in range(120):
            try:
                if request(http_port, "GET", "/api/overview")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        amqp_port = node.port

        def rec(key, method, path, body=None, **kw):
            status, parsed = request(http_port, method, path, body, **kw)
            out[key] = {"method": method, "path": path, "status": status, "body": parsed}
            print("%-60s %d" % (key, status), file=sys.stderr)
            return status, parsed

        # Topology through the API (also records PUT's answers).
        rec("PUT exchange (new)", "PUT", "/api/exchanges/%2F/ref.x",
            {"type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}})
        rec("PUT exchange (again)", "PUT", "/api/exchanges/%2F/ref.x",
            {"type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}})
        rec("PUT queue (new)", "PUT", "/api/queues/%2F/ref.q",
            {"durable": True, "auto_delete": False, "arguments": {"x-message-ttl": 600000}})
        rec("PUT queue (again)", "PUT", "/api/queues/%2F/ref.q",
            {"durable": True, "auto_delete": False, "arguments": {"x-message-ttl": 600000}})
        rec("PUT queue (different)", "PUT", "/api/queues/%2F/ref.q",
            {"durable": False, "auto_delete": False, "arguments": {}})
        request(http_port, "PUT", "/api/queues/%2F/ref.q2", {"durable": False})
        rec("POST binding", "POST", "/api/bindings/%2F/e/ref.x/q/ref.q", {"routing_key": "a.b", "arguments": {}})
        rec("POST binding with arguments", "POST", "/api/bindings/%2F/e/ref.x/q/ref.q2",
            {"routing_key": "a.*", "arguments": {"x-foo": "bar"}})
        request(http_port, "PUT", "/api/users/mon", {"password": "mon", "tags": "monitoring"})
        request(http_port, "PUT", "/api/users/mgr", {"password": "mgr", "tags": "management"})
        request(http_port, "PUT", "/api/users/none", {"password": "none", "tags": ""})
        for u in ("mon", "mgr", "none"):
            request(http_port, "PUT", "/api/permissions/%2F/" + u, {"configure": ".*", "write": ".*", "read": ".*"})

        # Traffic: a consumer holding 5 unacknowledged messages, 20 acked, 3 in ref.q2.
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port,
                                                                 client_properties={"connection_name": "ref-conn"}))
        ch = conn.channel()
        ch.confirm_delivery()
        for i in range(25):
            ch.basic_publish("ref.x", "a.b", b"hello %d" % i)
        ch2 = conn.channel()
        ch2.basic_qos(prefetch_count=5)
        got = []
        ch2.basic_consume("ref.q", lambda c, m, p, b: got.append(m.delivery_tag), consumer_tag="ref-ctag")
        deadline = time.time() + 10
        while len(got) < 5 and time.time() < deadline:
            conn.process_data_events(0.2)
        for tag in got:
            ch2.basic_ack(tag)
        got.clear()
        # 25 published, 5 acked so far; wait for five more, ack them, keep the next five unacked
        deadline = time.time() + 10
        while len(got) < 5 and time.time() < deadline:
            conn.process_data_events(0.2)
        for tag in got:
            ch2.basic_ack(tag)
        got.clear()
        deadline = time.time() + 10
        while len(got) < 5 and time.time() < deadline:
            conn.process_data_events(0.2)
        # Statistics come every second; rates need two samples.
        for _ in range(8):
            conn.process_data_events(1.0)

        amqp_name = None
        for c in request(http_port, "GET", "/api/connections")[1]:
            amqp_name = c["name"]
        ch_name = request(http_port, "GET", "/api/channels")[1][0]["name"]
        node_name = request(http_port, "GET", "/api/nodes")[1][0]["name"]
        q = "/api/queues/%2F/ref.q"
        gets = [
            ("overview", "/api/overview"),
            ("whoami", "/api/whoami"),
            ("nodes", "/api/nodes"),
            ("node", "/api/nodes/" + node_name),
            ("connections", "/api/connections"),
            ("connection", "/api/connections/" + urllib.request.quote(amqp_name, safe="")),
            ("vhost connections", "/api/vhosts/%2F/connections"),
            ("connection channels", "/api/connections/" + urllib.request.quote(amqp_name, safe="") + "/channels"),
            ("channels", "/api/channels"),
            ("channel", "/api/channels/" + urllib.request.quote(ch_name, safe="")),
            ("vhost channels", "/api/vhosts/%2F/channels"),
            ("consumers", "/api/consumers"),
            ("vhost consumers", "/api/consumers/%2F"),
            ("exchanges", "/api/exchanges"),
            ("vhost exchanges", "/api/exchanges/%2F"),
            ("exchange", "/api/exchanges/%2F/ref.x"),
            ("exchange source bindings", "/api/exchanges/%2F/ref.x/bindings/source"),
            ("exchange destination bindings", "/api/exchanges/%2F/ref.x/bindings/destination"),
            ("queues", "/api/queues"),
            ("vhost queues", "/api/queues/%2F"),
            ("queue", q),
            ("queue bindings", q + "/bindings"),
            ("bindings", "/api/bindings"),
            ("vhost bindings", "/api/bindings/%2F"),
            ("exchange-queue bindings", "/api/bindings/%2F/e/ref.x/q/ref.q"),
            ("binding", "/api/bindings/%2F/e/ref.x/q/ref.q/a.b"),
            ("binding with arguments (list)", "/api/bindings/%2F/e/ref.x/q/ref.q2"),
            ("vhosts", "/api/vhosts"),
            ("vhost", "/api/vhosts/%2F"),
            ("users", "/api/users"),
            ("user", "/api/users/guest"),
            ("user permissions", "/api/users/guest/permissions"),
            ("permissions", "/api/permissions"),
            ("permission", "/api/permissions/%2F/guest"),
            ("vhost permissions", "/api/vhosts/%2F/permissions"),
            ("topic-permissions", "/api/topic-permissions"),
            ("policies", "/api/policies"),
            ("vhost policies", "/api/policies/%2F"),
            ("operator-policies", "/api/operator-policies"),
            ("vhost-limits", "/api/vhost-limits"),
            ("user-limits", "/api/user-limits"),
            ("definitions", "/api/definitions"),
            ("vhost definitions", "/api/definitions/%2F"),
            ("health alarms", "/api/health/checks/alarms"),
            ("health local-alarms", "/api/health/checks/local-alarms"),
            ("health port-listener", "/api/health/checks/port-listener/%d" % amqp_port),
            ("health port-listener (not listening)", "/api/health/checks/port-listener/1"),
            ("health virtual-hosts", "/api/health/checks/virtual-hosts"),
            ("extensions", "/api/extensions"),
            ("cluster-name", "/api/cluster-name"),
            ("paged queues", "/api/queues?page=1&page_size=1"),
            ("paged queues, name filter", "/api/queues?page=1&page_size=10&name=q2"),
            ("paged queues, regex, sorted", "/api/queues?page=1&page_size=10&name=%5Eref&use_regex=true&sort=name&sort_reverse=true"),
            ("paged queues, page out of range", "/api/queues?page=5&page_size=1"),
            ("paged queues, bad page_size", "/api/queues?page=1&page_size=0"),
            ("queues, columns", "/api/queues?columns=name,messages,message_stats.publish"),
            ("missing vhost", "/api/queues/nope"),
            ("missing queue", "/api/queues/%2F/nope"),
            ("missing exchange", "/api/exchanges/%2F/nope"),
            ("missing connection", "/api/connections/nope"),
            ("missing user", "/api/users/nope"),
            ("unknown path", "/api/nope"),
        ]
        for key, path in gets:
            rec("GET " + key, "GET", path)
        for user in ("mon", "mgr", "none"):
            for key, path in (("overview", "/api/overview"), ("users", "/api/users"), ("nodes", "/api/nodes"),
                              ("queues", "/api/queues"), ("definitions", "/api/definitions"),
                              ("connections", "/api/connections"), ("vhosts", "/api/vhosts")):
                rec("GET %s as %s" % (key, user), "GET", path, user=user, password=user)
            rec("PUT queue as %s" % user, "PUT", "/api/queues/%2F/ref.tag." + user, {"durable": False},
                user=user, password=user)
        # Users, vhosts, permissions and limits: a sequence replayed in order by the test, so
        # each answer keeps its request and its place.
        for n, (key, method, path, body, user) in enumerate(AUTH_STEPS):
            raw = body if isinstance(body, bytes) else None
            name, password = login(user)
            rec(key, method, path, None if raw else body, user=name, password=password, raw=raw)
            out[key]["sequence"] = n
            out[key]["request"] = body.decode() if raw else body
            out[key]["user"] = user
        rec("GET overview without credentials", "GET", "/api/overview", user=None)
        rec("GET overview with a wrong password", "GET", "/api/overview", password="wrong")
        rec("PUT queue with bad JSON", "PUT", "/api/queues/%2F/ref.bad", raw=b"{not json")
        rec("PUT queue in a missing vhost", "PUT", "/api/queues/nope/ref.q", {"durable": False})
        rec("PUT exchange with a bad type", "PUT", "/api/exchanges/%2F/ref.bad", {"type": "nope"})
        rec("POST publish (routed)", "POST", "/api/exchanges/%2F/ref.x/publish",
            {"properties": {"delivery_mode": 2, "headers": {"h": 1}}, "routing_key": "a.x",
             "payload": "published by the API", "payload_encoding": "string"})
        rec("POST publish (unrouted)", "POST", "/api/exchanges/%2F/ref.x/publish",
            {"properties": {}, "routing_key": "zzz", "payload": "x", "payload_encoding": "string"})
        rec("POST publish to the default exchange", "POST", "/api/exchanges/%2F/amq.default/publish",
            {"properties": {}, "routing_key": "ref.q2", "payload": "eHl6", "payload_encoding": "base64"})
        rec("POST get", "POST", "/api/queues/%2F/ref.q2/get",
            {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000})
        rec("POST get (empty queue)", "POST", "/api/queues/%2F/ref.tag.mgr/get",
            {"count": 5, "ackmode": "ack_requeue_false", "encoding": "auto"})
        rec("DELETE queue contents", "DELETE", "/api/queues/%2F/ref.q2/contents")
        rec("DELETE binding", "DELETE", "/api/bindings/%2F/e/ref.x/q/ref.q2/" +
            out["GET binding with arguments (list)"]["body"][0]["properties_key"])
        rec("DELETE connection", "DELETE", "/api/connections/" + urllib.request.quote(amqp_name, safe=""))
        rec("DELETE queue", "DELETE", "/api/queues/%2F/ref.q2")
        rec("DELETE queue (missing)", "DELETE", "/api/queues/%2F/ref.q2")
        rec("DELETE exchange", "DELETE", "/api/exchanges/%2F/ref.x")
        rec("POST definitions", "POST", "/api/definitions",
            {"queues": [{"name": "ref.def", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}]})
        rec("POST definitions with bad JSON", "POST", "/api/definitions", raw=b"[1,")
        try:
            conn.close()
        except Exception:
            pass
    finally:
        node.stop()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"recorded_from": "RabbitMQ 3.10.8 (Debian 12 rabbitmq-server), rabbitmq_management",
                   "answers": out}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %s (%d answers)" % (a.out, len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
