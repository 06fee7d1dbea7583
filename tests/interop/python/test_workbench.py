"""The dead-letter workbench's HTTP endpoints (Warren's own; RabbitMQ 3.10 has none): browsing a
queue's ready and unacked messages changes nothing a real consumer sees afterwards (order,
redelivered flag, counts), redrive to the x-death origin or to a chosen exchange (with a dry run)
and delete move or remove exactly the selected messages, a failing redrive leaves them where they
are, a durable redrive survives a restart, and the dead-letter health counts; with status codes,
field types, permissions and errors for bad input.
"""
import unittest

import pika

import brokers
import mgmt_http
import procs
from helpers import consume_n, get_all, message_count, unique, wait_for
from mgmt_http import quote

m = None
ALL = {"configure": ".*", "write": ".*", "read": ".*"}
PERSISTENT = pika.BasicProperties(delivery_mode=2)


def setUpModule():
    global m
    if not brokers.is_rabbitmq():
        m = mgmt_http.start()


def tearDownModule():
    if m:
        m.stop()


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def qpath(queue, rest="", vhost="/"):
    return "/api/queues/%s/%s%s" % (quote(vhost), quote(queue), rest)


@brokers.warren_only("the dead-letter workbench is Warren's own API")
class WorkbenchCase(unittest.TestCase):
    durable = False

    def setUp(self):
        self.conn = m.broker.connect()
        self.addCleanup(self.close)
        self.ch = self.conn.channel()
        self.dlq = unique("dlq")
        self.work = unique("work")
        self.ch.queue_declare(self.dlq, durable=self.durable)
        self.ch.queue_declare(self.work, durable=self.durable, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.dlq})

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass

    def dead_letter(self, items):
        """Publishes each (body, error.cause) to the work queue, gets it and rejects it: it lands in
        the dead-letter queue with x-death naming the work queue."""
        for body, cause in items:
            headers = {"error.cause": cause} if cause is not None else {}
            props = pika.BasicProperties(headers=headers, delivery_mode=2 if self.durable else 1,
                                         message_id="id-%s" % body if isinstance(body, str) else None)
            self.ch.basic_publish("", self.work, body.encode() if isinstance(body, str) else body, props)
            method, _, _ = self.ch.basic_get(self.work)
            self.assertIsNotNone(method)
            self.ch.basic_reject(method.delivery_tag, requeue=False)
        self.assertEqual(message_count(self.ch, self.dlq), len(items))

    def browse(self, query="", queue=None, status=200):
        st, body, _ = m.get(qpath(queue or self.dlq, "/messages" + query))
        self.assertEqual(st, status, body)
        return body

    def browse_all(self, query=""):
        out, cursor = [], ""
        while cursor is not None:
            page = self.browse("?count=2&cursor=%s%s" % (quote(cursor), query))
            out += page["messages"]
            cursor = page["next_cursor"]
        return out

    def action(self, what, body, queue=None, status=200, raw=None, user="guest", password="guest"):
        st, answer, _ = m.request("POST", qpath(queue or self.dlq, "/messages/" + what), body, raw=raw,
                                  user=user, password=password)
        self.assertEqual(st, status, answer)
        return answer


class BrowseTests(WorkbenchCase):
    def test_browse_pages_through_messages_with_headers_and_bodies_and_changes_nothing(self):
        self.dead_letter([("m0", "Timeout"), ("m1", "Bad"), ("m2", "Timeout"), ("m3", None), ("m4", "Bad")])
        before = m.ok("GET", qpath(self.dlq))
        first = self.browse("?count=2")
        self.assertEqual(first["messages_ready"], 5)
        self.assertIsInstance(first["next_cursor"], str)
        self.assertEqual(len(first["messages"]), 2)
        msgs = self.browse_all()
        self.assertEqual([x["payload"] for x in msgs], ["m0", "m1", "m2", "m3", "m4"])
        self.assertEqual(len({x["handle"] for x in msgs}), 5)
        x = msgs[0]
        for key in ("priority", "delivery_count", "payload_bytes"):
            self.assertTrue(is_number(x[key]), key)
        self.assertIs(x["redelivered"], False)
        self.assertIs(x["payload_truncated"], False)
        self.assertEqual((x["payload_encoding"], x["payload_bytes"]), ("string", 2))
        self.assertEqual(x["routing_key"], self.dlq)
        self.assertEqual(x["properties"]["message_id"], "id-m0")
        headers = x["properties"]["headers"]
        self.assertEqual(headers["error.cause"], "Timeout")
        self.assertEqual(headers["x-first-death-reason"], "rejected")
        self.assertEqual(headers["x-death"][0]["queue"], self.work)
        self.assertTrue(is_number(headers["x-death"][0]["count"]))
        self.assertEqual(x["death"]["first_reason"], "rejected")
        self.assertEqual(x["death"]["first_queue"], self.work)
        self.assertEqual((x["death"]["origin_exchange"], x["death"]["origin_routing_key"]), ("", self.work))
        self.assertEqual(self.browse("?cursor=end")["messages"], [])

        # Nothing moved: the counts, the statistics, and what a consumer then gets, in order,
        # none redelivered.
        after = m.ok("GET", qpath(self.dlq))
        self.assertEqual((after["messages_ready"], after["messages_unacknowledged"]), (5, 0))
        for stat in ("get", "deliver", "redeliver", "ack"):
            self.assertEqual(after.get("message_stats", {}).get(stat, 0),
                             before.get("message_stats", {}).get(stat, 0), stat)
        got = consume_n(self.conn, self.ch, self.dlq, 5, auto_ack=False)
        self.assertEqual([b.decode() for _, _, b in got], ["m0", "m1", "m2", "m3", "m4"])
        self.assertEqual([mt.redelivered for mt, _, _ in got], [False] * 5)
        self.ch.basic_ack(got[-1][0].delivery_tag, multiple=True)

    def test_bodies_truncated_and_encoded_as_asked(self):
        self.dead_letter([(b"\xff\x00binary", "x"), ("hello world", "y")])
        binary, text = self.browse()["messages"]
        self.assertEqual((binary["payload_encoding"], binary["payload"]), ("hex", "ff0062696e617279"))
        self.assertEqual(binary["payload_bytes"], 8)
        cut = self.browse("?truncate=5")["messages"][1]
        self.assertEqual((cut["payload"], cut["payload_truncated"], cut["payload_bytes"]), ("hello", True, 11))
        b64 = self.browse("?encoding=base64")["messages"]
        self.assertEqual([x["payload_encoding"] for x in b64], ["base64", "base64"])
        self.assertEqual(b64[0]["payload"], "/wBiaW5hcnk=")
        self.assertEqual(b64[1]["payload"], "aGVsbG8gd29ybGQ=")
        self.assertEqual(self.browse("?encoding=hex")["messages"][1]["payload"], "hello world".encode().hex())
        self.assertEqual(text["payload"], "hello world")

    def test_filters_by_reason_origin_and_header(self):
        self.dead_letter([("a", "Timeout"), ("b", "Bad"), ("c", "Timeout")])
        got = self.browse("?header=error.cause&header_value=Timeout")["messages"]
        self.assertEqual([x["payload"] for x in got], ["a", "c"])
        self.assertEqual(len(self.browse("?reason=rejected&origin_queue=" + quote(self.work))["messages"]), 3)
        self.assertEqual(self.browse("?reason=expired")["messages"], [])

    def test_bad_parameters_are_400_and_unknown_objects_404(self):
        for query in ("?count=0", "?count=x", "?count=1001", "?cursor=zz", "?encoding=utf8",
                      "?header_value=x", "?truncate=-1", "?count=1000&truncate=1000000"):
            body = self.browse(query, status=400)
            self.assertEqual(body["error"], "bad_request", query)
            self.assertIsInstance(body["reason"], str)
        self.assertEqual(m.get(qpath("nope", "/messages"))[0], 404)
        self.assertEqual(m.get(qpath(self.dlq, "/messages", vhost="no-such-vhost"))[0], 404)
        self.assertEqual(m.get(qpath("nope", "/messages/unacked"))[0], 404)
        self.assertEqual(m.get(qpath("nope", "/dead-letter-health"))[0], 404)
        self.assertEqual(m.get(qpath(self.dlq, "/messages/other"))[0], 404)

    def test_unacked_messages_are_listed_with_their_consumer(self):
        self.dead_letter([("a", "x"), ("b", "x"), ("c", "x")])
        got = []
        self.ch.basic_qos(prefetch_count=2)
        tag = self.ch.basic_consume(self.dlq, lambda c, mt, p, b: got.append(mt), consumer_tag="holder")
        wait_for(self.conn, lambda: len(got) == 2, what="two deliveries")
        st, page, _ = m.get(qpath(self.dlq, "/messages/unacked"))
        self.assertEqual(st, 200)
        self.assertIs(page["more"], False)
        held = page["messages"]
        self.assertEqual([x["payload"] for x in held], ["a", "b"])
        self.assertEqual({x["consumer_tag"] for x in held}, {"holder"})
        self.assertEqual([x["delivery_tag"] for x in held], [g.delivery_tag for g in got])
        self.assertTrue(all(is_number(x["channel_number"]) and is_number(x["unacked_for_ms"]) for x in held))
        self.assertIn("->", held[0]["connection_name"])
        one = m.ok("GET", qpath(self.dlq, "/messages/unacked?count=1"))
        self.assertEqual((len(one["messages"]), one["more"]), (1, True))
        self.assertEqual([x["payload"] for x in self.browse()["messages"]], ["c"])
        self.ch.basic_cancel(tag)


class RedriveTests(WorkbenchCase):
    def test_redrive_all_to_the_origin_from_x_death_after_a_dry_run(self):
        self.dead_letter([("a", "Timeout"), ("b", "Bad")])
        dry = self.action("redrive", {"all": True, "dry_run": True})
        self.assertEqual(dry, {"dry_run": True, "matched": 2, "redriven": 2, "failed": 0, "failures": []})
        self.assertEqual(message_count(self.ch, self.dlq), 2)
        done = self.action("redrive", {"all": True})
        self.assertEqual((done["matched"], done["redriven"], done["failed"]), (2, 2, 0))
        self.assertEqual(message_count(self.ch, self.dlq), 0)
        back = get_all(self.ch, self.work)
        self.assertEqual([b.decode() for _, _, b in back], ["a", "b"])
        self.assertEqual([p.headers["error.cause"] for _, p, _ in back], ["Timeout", "Bad"])
        self.assertEqual(back[0][1].headers["x-death"][0]["queue"], self.work)  # history kept
        self.assertFalse(back[0][0].redelivered)

    def test_redrive_selected_handles_or_a_filter_to_a_chosen_exchange_and_key(self):
        self.dead_letter([("a", "Timeout"), ("b", "Bad"), ("c", "Timeout")])
        retry = unique("retry")
        self.ch.queue_declare(retry)
        self.ch.queue_bind(retry, "amq.direct", "again")
        handles = [x["handle"] for x in self.browse()["messages"]]
        one = self.action("redrive", {"handles": [handles[1]],
                                      "target": {"exchange": "amq.direct", "routing_key": "again"}})
        self.assertEqual((one["redriven"], one["failed"]), (1, 0))
        again = self.action("redrive", {"handles": [handles[1]],
                                        "target": {"exchange": "amq.direct", "routing_key": "again"}})
        self.assertEqual((again["redriven"], again["failed"]), (0, 1))
        self.assertEqual(again["failures"][0]["handle"], handles[1])
        self.assertIsInstance(again["failures"][0]["reason"], str)
        flt = self.action("redrive", {"filter": {"header": "error.cause", "header_value": "Timeout"},
                                      "target": {"exchange": "amq.direct", "routing_key": "again"}})
        self.assertEqual((flt["matched"], flt["redriven"]), (2, 2))
        self.assertEqual(message_count(self.ch, self.dlq), 0)
        self.assertEqual([b.decode() for _, _, b in get_all(self.ch, retry)], ["b", "a", "c"])

    def test_a_failing_redrive_leaves_every_message_in_place(self):
        self.dead_letter([("a", "x"), ("b", "x")])
        handles = [x["handle"] for x in self.browse()["messages"]]
        # An exchange that does not exist: refused before anything moves.
        body = self.action("redrive", {"all": True, "target": {"exchange": "no-such-exchange"}}, status=404)
        self.assertIn("no-such-exchange", body["reason"])
        # One that routes the key nowhere: each message stays, with the reason.
        lonely = unique("x")
        self.ch.exchange_declare(lonely, "direct")
        r = self.action("redrive", {"all": True, "target": {"exchange": lonely, "routing_key": "k"}})
        self.assertEqual((r["matched"], r["redriven"], r["failed"]), (2, 0, 2))
        self.assertIn("unroutable", r["failures"][0]["reason"])
        # The origin queue is gone: its messages cannot go back.
        self.ch.queue_delete(self.work)
        r = self.action("redrive", {"all": True})
        self.assertEqual((r["redriven"], r["failed"]), (0, 2))
        self.assertEqual([x["handle"] for x in self.browse()["messages"]], handles)
        self.assertEqual([b.decode() for _, _, b in get_all(self.ch, self.dlq)], ["a", "b"])

    def test_delete_selected_then_all(self):
        self.dead_letter([("a", "x"), ("b", "y"), ("c", "x")])
        handles = [x["handle"] for x in self.browse()["messages"]]
        self.assertEqual(self.action("delete", {"handles": [handles[0]]})["deleted"], 1)
        self.assertEqual(self.action("delete", {"filter": {"header": "error.cause", "header_value": "y"},
                                                "dry_run": True})["deleted"], 1)
        self.assertEqual([x["payload"] for x in self.browse()["messages"]], ["b", "c"])
        self.assertEqual(self.action("delete", {"all": True})["deleted"], 2)
        self.assertEqual(message_count(self.ch, self.dlq), 0)

    def test_bad_bodies_are_400(self):
        bad = [None, {}, {"all": True, "handles": ["1-1"]}, {"handles": []}, {"handles": ["x"]},
               {"handles": ["1-%d" % i for i in range(1, 1002)]},
               {"handles": "1-1"}, {"all": False}, {"filter": {}}, {"filter": {"colour": "red"}},
               {"filter": {"header_value": "x"}}, {"all": True, "dry_run": "yes"}, {"all": True, "extra": 1},
               {"all": True, "target": {"routing_key": "k"}}, {"all": True, "target": "amq.direct"}, [1]]
        for body in bad:
            answer = self.action("redrive", body, status=400)
            self.assertEqual(answer["error"], "bad_request", body)
        self.assertEqual(self.action("redrive", None, raw=b"{not json", status=400)["reason"], "not_json")
        self.action("delete", {"all": True, "target": {"exchange": "amq.direct"}}, status=400)
        self.action("redrive", {"all": True}, queue="no-such-queue", status=404)
        st, _, _ = m.request("POST", qpath(self.dlq, "/messages/redrive", vhost="no-such-vhost"), {"all": True})
        self.assertEqual(st, 404)
        st, _, _ = m.request("GET", qpath(self.dlq, "/messages/redrive"))
        self.assertEqual(st, 404)


class HealthTests(WorkbenchCase):
    def test_health_counts_by_reason_origin_and_error_header(self):
        self.dead_letter([("a", "Timeout"), ("b", "Bad"), ("c", "Timeout")])
        st, h, _ = m.get(qpath(self.dlq, "/dead-letter-health"))
        self.assertEqual(st, 200)
        self.assertEqual(h["messages_ready"], 3)
        self.assertIs(h["counts_complete"], True)
        self.assertEqual(h["header"], "error.cause")
        self.assertEqual(h["by_reason"], {"rejected": 3})
        self.assertEqual(h["by_origin_queue"], {self.work: 3})
        self.assertEqual(h["by_header"], {"Timeout": 2, "Bad": 1})
        for key in ("arrivals", "growth_rate", "arrival_rate", "rate_window_seconds", "oldest_message_age_seconds",
                    "unreadable"):
            self.assertTrue(is_number(h[key]), key)
        other = m.ok("GET", qpath(self.dlq, "/dead-letter-health?header=x-first-death-queue"))
        self.assertEqual((other["header"], other["by_header"]), ("x-first-death-queue", {self.work: 3}))
        empty = m.ok("GET", qpath(self.work, "/dead-letter-health"))
        self.assertIsNone(empty["oldest_message_age_seconds"])
        self.assertEqual(empty["by_reason"], {})


class PermissionTests(WorkbenchCase):
    def user(self, tags, perms):
        name = unique("u")
        m.ok("PUT", "/api/users/" + name, {"password": name, "tags": tags})
        if perms:
            m.ok("PUT", "/api/permissions/%s/%s" % (quote("/"), name), perms)
        self.addCleanup(lambda: m.request("DELETE", "/api/users/" + name))
        return name

    def as_user(self, name, method, path, body=None):
        return m.request(method, path, body, user=name, password=name)[0]

    def test_browse_needs_the_management_tag_vhost_access_and_read_on_the_queue(self):
        self.dead_letter([("a", "x")])
        paths = [qpath(self.dlq, p) for p in ("/messages", "/messages/unacked", "/dead-letter-health")]
        reader = self.user("management", {"configure": "", "write": "", "read": ".*"})
        for p in paths:
            self.assertEqual(self.as_user(reader, "GET", p), 200, p)
        no_read = self.user("management", {"configure": ".*", "write": ".*", "read": "^$"})
        no_tag = self.user("", ALL)
        outsider = self.user("monitoring", None)
        for u in (no_read, no_tag, outsider):
            for p in paths:
                self.assertEqual(self.as_user(u, "GET", p), 401, (u, p))
        # The refused ones changed nothing either.
        self.assertEqual(self.as_user(no_read, "POST", qpath(self.dlq, "/messages/delete"), {"all": True}), 401)
        self.assertEqual(message_count(self.ch, self.dlq), 1)

    def test_redrive_needs_write_on_each_exchange_it_publishes_to(self):
        self.dead_letter([("a", "x")])
        # May read the queue and publish to amq.direct only, not to the default exchange (the origin).
        user = self.user("management", {"configure": "", "write": "^amq\\.direct$", "read": ".*"})
        path = qpath(self.dlq, "/messages/redrive")
        st, r, _ = m.request("POST", path, {"all": True}, user=user, password=user)
        self.assertEqual(st, 200)
        self.assertEqual((r["redriven"], r["failed"]), (0, 1))
        self.assertIn("access refused", r["failures"][0]["reason"])
        self.assertEqual(self.as_user(user, "POST", path, {"all": True, "target": {"exchange": "amq.topic"}}), 401)
        retry = unique("retry")
        self.ch.queue_declare(retry)
        self.ch.queue_bind(retry, "amq.direct", "k")
        self.assertEqual(self.as_user(user, "POST", path, {"all": True, "target": {"exchange": "amq.direct",
                                                                                   "routing_key": "k"}}), 200)
        self.assertEqual(message_count(self.ch, retry), 1)


class DurableRedriveTests(WorkbenchCase):
    durable = True

    def test_a_redrive_answered_ok_survives_a_crash(self):
        self.dead_letter([("a", "x"), ("b", "y")])
        r = self.action("redrive", {"all": True})
        self.assertEqual(r["redriven"], 2)
        self.close()
        m.broker.restart(kill=True)
        procs.wait_until(lambda: mgmt_http._answers(m), 30, what="the management API after the restart")
        self.conn = m.broker.connect()
        self.ch = self.conn.channel()
        # The copies were stored before the 2xx: both are back in the work queue. The originals'
        # removal may not have reached the disk before the kill: then both come back beside
        # their copies (at least once, never neither), in order.
        self.assertEqual([b.decode() for _, _, b in get_all(self.ch, self.work)], ["a", "b"])
        self.assertIn([b.decode() for _, _, b in get_all(self.ch, self.dlq)], (["a", "b"], []))


if __name__ == "__main__":
    unittest.main()
