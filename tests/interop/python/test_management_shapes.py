"""Reference shapes: the management API answers the requests recorded from RabbitMQ 3.10
(mgmt_reference/rabbitmq-3.10.json, made by tools/mgmt_reference/record.py) with the same
status codes, and every field RabbitMQ gives is there with the same JSON type (values differ).
The topology is the recorder's: exchange ref.x, queues ref.q and ref.q2, two bindings, and a
consumer holding five of 25 messages unacknowledged.
"""
import json
import os
import sys
import unittest
import urllib.parse

import brokers
import mgmt_http
import procs
from helpers import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "mgmt_reference", "rabbitmq-3.10.json")
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "mgmt_reference"))
from auth_sequence import login  # noqa: E402

# Recorded steps of the users sequence where Warren answers otherwise, on purpose (README):
# RabbitMQ 3.10 stores a password_hash with an unknown hashing_algorithm, or one whose length
# is not its algorithm's, and no login can ever match it; Warren refuses both with 400.
DIFFERENT_ON_PURPOSE = {"PUT user with an unknown hashing_algorithm", "PUT user with a sha512 hash"}

# Fields of RabbitMQ's answers that describe the Erlang runtime or RabbitMQ's own machinery,
# with no meaning for Warren, or tied to features Warren does not have. Anything else RabbitMQ
# gives, Warren gives with the same JSON type.
NOT_APPLICABLE = {
    "garbage_collection", "reductions", "reductions_details", "backing_queue_status",
    "recoverable_slaves", "metrics_gc_queue_length", "ra_open_file_metrics",
    "mnesia_disk_tx_count", "mnesia_disk_tx_count_details", "mnesia_ram_tx_count",
    "mnesia_ram_tx_count_details", "gc_num", "gc_num_details", "gc_bytes_reclaimed",
    "gc_bytes_reclaimed_details", "context_switches", "context_switches_details",
    "io_read_avg_time", "io_read_avg_time_details", "io_read_bytes", "io_read_bytes_details",
    "io_read_count", "io_read_count_details", "io_reopen_count", "io_reopen_count_details",
    "io_seek_avg_time", "io_seek_avg_time_details", "io_seek_count", "io_seek_count_details",
    "io_sync_avg_time", "io_sync_avg_time_details", "io_sync_count", "io_sync_count_details",
    "io_write_avg_time", "io_write_avg_time_details", "io_write_bytes", "io_write_bytes_details",
    "io_write_count", "io_write_count_details", "msg_store_read_count",
    "msg_store_read_count_details", "msg_store_write_count", "msg_store_write_count_details",
    "queue_index_read_count", "queue_index_read_count_details", "queue_index_write_count",
    "queue_index_write_count_details", "fd_used_details", "sockets_used_details",
    "proc_used_details", "channel_closed", "channel_closed_details", "channel_created",
    "channel_created_details", "connection_closed", "connection_closed_details",
    "connection_created", "connection_created_details", "queue_created", "queue_created_details",
    "queue_declared", "queue_declared_details", "queue_deleted", "queue_deleted_details",
}

m = None
conn = None
reference = None


def shape_problems(ref, ours, where="$"):
    """Where `ours` lacks a field of `ref` or has another JSON type. Where RabbitMQ said null,
    any value may stand (a tag that is set now); where it gave a value, null does not (clients
    that read a number fail on null)."""
    problems = []
    if ref is None:
        return problems
    if ours is None:
        return ["%s: null, RabbitMQ gives %s" % (where, type(ref).__name__)]
    if isinstance(ref, dict):
        if not isinstance(ours, dict):
            return ["%s: object expected, got %s" % (where, type(ours).__name__)]
        for key, value in ref.items():
            if key in NOT_APPLICABLE:
                continue
            # Keys that are names (a node in cluster_state, a header) are values, not fields.
            if where.endswith(("cluster_state", "arguments", "headers", "client_properties",
                               "capabilities")):
                continue
            if key not in ours:
                problems.append("%s.%s: missing" % (where, key))
                continue
            problems += shape_problems(value, ours[key], "%s.%s" % (where, key))
        return problems
    if isinstance(ref, list):
        if not isinstance(ours, list):
            return ["%s: array expected, got %s" % (where, type(ours).__name__)]
        if ref and ours:
            # Compare like with like: the item of the same name when there is one.
            mine = ours[0]
            if isinstance(ref[0], dict) and "name" in ref[0]:
                mine = next((o for o in ours if isinstance(o, dict) and o.get("name") == ref[0]["name"]), ours[0])
            problems += shape_problems(ref[0], mine, where + "[0]")
        return problems
    kinds = {bool: "boolean", int: "integer", float: "float", str: "string"}
    if kinds.get(type(ref)) != kinds.get(type(ours)):
        problems.append("%s: %s expected, got %s (%r)" % (where, kinds.get(type(ref)), kinds.get(type(ours)), ours))
    return problems


def setUpModule():
    global m, conn, reference
    with open(REFERENCE) as f:
        reference = json.load(f)["answers"]
    m = mgmt_http.start()
    for user, tags in (("mon", "monitoring"), ("mgr", "management"), ("none", "")):
        m.ok("PUT", "/api/users/" + user, {"password": user, "tags": tags})
        m.ok("PUT", "/api/permissions/%2F/" + user, {"configure": ".*", "write": ".*", "read": ".*"})
    m.ok("PUT", "/api/exchanges/%2F/ref.x", {"type": "topic", "durable": True, "auto_delete": False,
                                             "internal": False, "arguments": {}})
    m.ok("PUT", "/api/queues/%2F/ref.q", {"durable": True, "auto_delete": False,
                                          "arguments": {"x-message-ttl": 600000}})
    m.ok("PUT", "/api/queues/%2F/ref.q2", {"durable": False})
    m.ok("POST", "/api/bindings/%2F/e/ref.x/q/ref.q", {"routing_key": "a.b", "arguments": {}})
    m.ok("POST", "/api/bindings/%2F/e/ref.x/q/ref.q2", {"routing_key": "a.*", "arguments": {"x-foo": "bar"}})
    conn = m.broker.connect(client_properties={"connection_name": "ref-conn"})
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(25):
        ch.basic_publish("ref.x", "a.b", b"hello %d" % i)
    ch2 = conn.channel()
    ch2.basic_qos(prefetch_count=5)
    got = []
    ch2.basic_consume("ref.q", lambda c, meth, p, b: got.append(meth.delivery_tag), consumer_tag="ref-ctag")
    for _ in range(2):
        wait_for(conn, lambda: len(got) >= 5, what="five deliveries")
        for tag in got:
            ch2.basic_ack(tag)
        got.clear()
    wait_for(conn, lambda: len(got) >= 5, what="five more deliveries")

    def settled():
        conn.process_data_events(0)
        q = m.get("/api/queues/%2F/ref.q")[1]
        return q.get("message_stats", {}).get("ack") == 10 and q.get("messages_unacknowledged") == 5
    procs.wait_until(settled, 20, interval=0.2, what="statistics of ref.q")


def tearDownModule():
    try:
        if conn and conn.is_open:
            conn.close()
    finally:
        m.stop()


def our_path(key, recorded_path):
    """The recorded path, with RabbitMQ's node, connection and channel names and port replaced."""
    quote = mgmt_http.quote
    if key == "GET node":
        return "/api/nodes/" + quote(m.get("/api/nodes")[1][0]["name"])
    if key in ("GET connection", "GET connection channels"):
        name = next(c["name"] for c in m.get("/api/connections")[1] if c.get("user_provided_name") == "ref-conn")
        return "/api/connections/" + quote(name) + ("/channels" if key.endswith("channels") else "")
    if key == "GET channel":
        return "/api/channels/" + quote(m.get("/api/channels")[1][0]["name"])
    if key == "GET health port-listener":
        return "/api/health/checks/port-listener/%d" % m.broker.port
    return recorded_path


class ReferenceShapeTests(unittest.TestCase):
    def test_every_recorded_read_has_rabbitmqs_status_fields_and_types(self):
        checked = 0
        problems = []
        for key, answer in sorted(reference.items()):
            if answer["method"] != "GET" or "sequence" in answer:
                continue
            user, password = "guest", "guest"
            for name in ("mon", "mgr", "none"):
                if key.endswith(" as " + name):
                    user, password = name, name
            if key == "GET overview without credentials":
                user = None
            if key == "GET overview with a wrong password":
                password = "wrong"
            status, body, _ = m.request("GET", our_path(key, answer["path"]), user=user, password=password)
            checked += 1
            if status != answer["status"]:
                problems.append("%s: status %d, RabbitMQ %d" % (key, status, answer["status"]))
                continue
            problems += ["%s: %s" % (key, p) for p in shape_problems(answer["body"], body)]
        self.assertGreater(checked, 60)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_recorded_changes_get_rabbitmqs_status_codes(self):
        # In the recorded order, each on the topology the one before left; those needing other
        # users or the recorder's connection are left out.
        order = ["PUT exchange (again)", "PUT queue (again)", "PUT queue (different)",
                 "PUT queue with bad JSON", "PUT queue in a missing vhost", "PUT exchange with a bad type",
                 "POST publish (routed)", "POST publish (unrouted)", "POST publish to the default exchange",
                 "POST get", "DELETE queue contents", "DELETE queue", "DELETE queue (missing)",
                 "DELETE exchange", "POST definitions", "POST definitions with bad JSON"]
        problems = []
        for key in order:
            answer = reference[key]
            raw = b"{not json" if key == "PUT queue with bad JSON" else (
                b"[1," if key == "POST definitions with bad JSON" else None)
            body = None if raw else _recorded_body(key)
            status, got, _ = m.request(answer["method"], answer["path"], body, raw=raw)
            if status != answer["status"]:
                problems.append("%s: status %d, RabbitMQ %d (%r)" % (key, status, answer["status"], got))
            elif answer["body"] is not None:
                problems += ["%s: %s" % (key, p) for p in shape_problems(answer["body"], got)]
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_the_recorded_users_vhosts_and_permissions_sequence(self):
        # Replayed in the recorded order (tools/mgmt_reference/auth_sequence.py), each step on
        # what the ones before left: statuses, shapes, and RabbitMQ's reason for every 4xx.
        steps = sorted((a["sequence"], k, a) for k, a in reference.items() if "sequence" in a)
        self.assertGreater(len(steps), 80)
        problems = []
        for _, key, answer in steps:
            if key in DIFFERENT_ON_PURPOSE:
                continue
            body = answer["request"]
            raw = body.encode() if isinstance(body, str) else None
            user, password = login(answer["user"])
            status, got, _ = m.request(answer["method"], answer["path"], None if raw else body, raw=raw,
                                       user=user, password=password)
            if status != answer["status"]:
                problems.append("%s: status %d, RabbitMQ %d (%r)" % (key, status, answer["status"], got))
                continue
            ref = answer["body"]
            if status >= 400 and isinstance(ref, dict) and isinstance(ref.get("reason"), str):
                if got != ref:
                    problems.append("%s: %r, RabbitMQ %r" % (key, got, ref))
                continue
            problems += ["%s: %s" % (key, p) for p in shape_problems(ref, got)]
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


def _recorded_body(key):
    """The bodies record.py sent (the recording keeps answers, not requests)."""
    return {
        "PUT exchange (again)": {"type": "topic", "durable": True, "auto_delete": False, "internal": False,
                                 "arguments": {}},
        "PUT queue (again)": {"durable": True, "auto_delete": False, "arguments": {"x-message-ttl": 600000}},
        "PUT queue (different)": {"durable": False, "auto_delete": False, "arguments": {}},
        "PUT queue in a missing vhost": {"durable": False},
        "PUT exchange with a bad type": {"type": "nope"},
        "POST publish (routed)": {"properties": {"delivery_mode": 2, "headers": {"h": 1}}, "routing_key": "a.x",
                                  "payload": "published by the API", "payload_encoding": "string"},
        "POST publish (unrouted)": {"properties": {}, "routing_key": "zzz", "payload": "x",
                                    "payload_encoding": "string"},
        "POST publish to the default exchange": {"properties": {}, "routing_key": "ref.q2", "payload": "eHl6",
                                                 "payload_encoding": "base64"},
        "POST get": {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000},
        "POST definitions": {"queues": [{"name": "ref.def", "vhost": "/", "durable": True, "auto_delete": False,
                                         "arguments": {}}]},
    }.get(key)


if __name__ == "__main__":
    unittest.main()
