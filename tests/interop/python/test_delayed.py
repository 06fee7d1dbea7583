"""Delayed delivery and retry with backoff, with pika: the x-delayed-message exchange with each
underlying type (routed when the delay ends, x-delay made negative), mandatory returns and
confirms as the plugin gives them, its errors, LavinMQ's x-delayed-exchange, retry types, the
delivery limit then dead-lettering, the delayed-message and delayed-retry-* policy keys with the
counts the management API and /metrics show, and delayed and retrying messages across a kill -9.

All Warren-only: Debian's RabbitMQ 3.10 has neither the community plugin nor RabbitMQ 4.3's
delayed retry. Times are lower bounds only ("not before its deadline"), never speeds.
"""
import os
import re
import shutil
import signal
import tempfile
import time
import unittest
import urllib.request

import pika
import pika.exceptions
from prometheus_client.parser import text_string_to_metric_families

import brokers
import mgmt_http
import procs
from brokers import warren_only
from helpers import channel_error, connection_error, consume_n, unique, wait_for

broker = None
REASON = "Debian's RabbitMQ 3.10 has no delayed-message plugin and no delayed retry (RabbitMQ 4.3)"


def setUpModule():
    global broker
    if not brokers.is_rabbitmq():
        broker = brokers.start_broker()


def tearDownModule():
    if broker:
        broker.stop()


def delayed_props(ms, **kw):
    headers = dict(kw.pop("headers", {}))
    headers["x-delay"] = ms
    return pika.BasicProperties(headers=headers, **kw)


class Case(unittest.TestCase):
    def setUp(self):
        self.conn = broker.connect()
        self.addCleanup(lambda: self.conn.is_open and self.conn.close())
        self.ch = self.conn.channel()

    def delayed_exchange(self, underlying="direct", **kw):
        x = unique("later")
        self.ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": underlying}, **kw)
        self.addCleanup(self._cleanup, lambda ch: ch.exchange_delete(x))
        return x

    def queue(self, prefix="q", arguments=None, durable=False):
        q = unique(prefix)
        self.ch.queue_declare(q, durable=durable, arguments=arguments)
        self.addCleanup(self._cleanup, lambda ch: ch.queue_delete(q))
        return q

    def _cleanup(self, f):
        conn = broker.connect()
        f(conn.channel())
        conn.close()


@warren_only(REASON)
class DelayedExchangeTests(Case):
    def test_each_underlying_type_routes_when_the_delay_ends(self):
        for underlying, bind_key, key, bind_args, headers in [
                ("direct", "jobs", "jobs", None, {}),
                ("topic", "pdf.*", "pdf.render", None, {}),
                ("fanout", "", "any", None, {}),
                ("headers", "", "", {"x-match": "all", "kind": "pdf"}, {"kind": "pdf"})]:
            with self.subTest(underlying):
                x = self.delayed_exchange(underlying)
                q = self.queue()
                self.ch.queue_bind(q, x, bind_key, arguments=bind_args)
                published = time.monotonic()
                self.ch.basic_publish(x, key, b"later", delayed_props(700, headers=headers))
                self.ch.basic_publish(x, key, b"now", pika.BasicProperties(headers=headers))
                got = consume_n(self.conn, self.conn.channel(), q, 2)
                self.assertGreaterEqual(time.monotonic() - published, 0.7)
                self.assertEqual([b for _, _, b in got], [b"now", b"later"])
                method, props, _ = got[1]
                self.assertEqual((method.exchange, method.routing_key), (x, key))
                self.assertEqual(props.headers["x-delay"], -700)  # as the plugin swaps it

    def test_deadline_order_with_mixed_delays(self):
        x = self.delayed_exchange()
        q = self.queue()
        self.ch.queue_bind(q, x, "k")
        for body, ms in [("c", 900), ("a", 300), ("d", 1200), ("b", 600)]:
            self.ch.basic_publish(x, "k", body.encode(), delayed_props(ms))
        got = consume_n(self.conn, self.conn.channel(), q, 4)
        self.assertEqual([b.decode() for _, _, b in got], ["a", "b", "c", "d"])

    def test_mandatory_delayed_publish_is_returned_at_once_and_delivered_later(self):
        x = self.delayed_exchange()
        q = self.queue()
        self.ch.queue_bind(q, x, "k")
        returned = []
        self.ch.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, m.reply_text, b)))
        self.ch.basic_publish(x, "k", b"m", delayed_props(300), mandatory=True)
        wait_for(self.conn, lambda: returned, what="basic.return")
        self.assertEqual(returned, [(312, "NO_ROUTE", b"m")])
        got = consume_n(self.conn, self.conn.channel(), q, 1)
        self.assertEqual(got[0][2], b"m")

    def test_confirms_for_stored_delayed_messages(self):
        x = self.delayed_exchange(durable=True)
        q = self.queue(durable=True)
        self.ch.queue_bind(q, x, "k")
        pub = self.conn.channel()
        pub.confirm_delivery()
        for i in range(20):  # each basic_publish returns once its ack came
            pub.basic_publish(x, "k", str(i).encode(), delayed_props(200, delivery_mode=2))
        got = consume_n(self.conn, self.conn.channel(), q, 20)
        self.assertEqual(sorted(int(b) for _, _, b in got), list(range(20)))

    def test_deleting_the_exchange_deletes_its_delayed_messages(self):
        x = unique("later")
        self.ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
        q = self.queue()
        self.ch.queue_bind(q, x, "k")
        self.ch.basic_publish(x, "k", b"gone", delayed_props(300))
        self.ch.exchange_delete(x)
        self.ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
        self.addCleanup(self._cleanup, lambda ch: ch.exchange_delete(x))
        self.ch.queue_bind(q, x, "k")
        self.ch.basic_publish(x, "k", b"kept", delayed_props(600))
        got = consume_n(self.conn, self.conn.channel(), q, 1)
        self.assertEqual(got[0][2], b"kept")  # the first, due earlier, never came

    def test_lavinmq_x_delayed_exchange_argument(self):
        x = unique("events")
        self.ch.exchange_declare(x, "topic", arguments={"x-delayed-exchange": True})
        self.addCleanup(self._cleanup, lambda ch: ch.exchange_delete(x))
        q = self.queue()
        self.ch.queue_bind(q, x, "order.#")
        self.ch.basic_publish(x, "order.paid", b"later", delayed_props(400))
        self.ch.basic_publish(x, "order.paid", b"now")
        got = consume_n(self.conn, self.conn.channel(), q, 2)
        self.assertEqual([b for _, _, b in got], [b"now", b"later"])

    def test_redeclare_keeps_its_type_as_the_plugin(self):
        x = self.delayed_exchange("direct")
        self.ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "topic"})
        with channel_error(self, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%s' in "
                                      "vhost '/': received 'direct' but current is 'x-delayed-message'" % x):
            self.ch.exchange_declare(x, "direct")

    def test_declare_errors(self):
        with channel_error(self, 406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an "
                                      "existing exchange type"):
            self.ch.exchange_declare(unique("later"), "x-delayed-message")
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-message' can't be "
                                      "used for 'x-delayed-type'"):
            ch.exchange_declare(unique("later"), "x-delayed-message",
                                arguments={"x-delayed-type": "x-delayed-message"})
        ch = self.conn.channel()
        with connection_error(self, 503, "COMMAND_INVALID - unknown exchange type 'nonesuch'"):
            ch.exchange_declare(unique("later"), "x-delayed-message", arguments={"x-delayed-type": "nonesuch"})

    def test_bad_x_delay_is_refused_naming_the_header(self):
        x = self.delayed_exchange()
        for value, detail in [("soon", '"soon" is not an integer'),
                              (2 ** 32, "4294967296 ms is more than the largest delay, 4294967295 ms (49.7 days)")]:
            with self.subTest(value):
                ch = self.conn.channel()
                with channel_error(self, 406, "PRECONDITION_FAILED - invalid 'x-delay' header for exchange '%s' "
                                              "in vhost '/': %s" % (x, detail)):
                    ch.basic_publish(x, "k", b"m", delayed_props(value))
                    ch.queue_declare("", exclusive=True)  # a round trip: the close arrives first


@warren_only(REASON)
class RetryTests(Case):
    def retry_queue(self, args, dlq=None):
        if dlq:
            args = dict(args, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
        return self.queue("jobs", args)

    def deliveries(self, q):
        got = []
        ch = self.conn.channel()
        ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, b, time.monotonic())))
        return ch, got

    def test_failed_type_waits_after_reject_not_after_nack(self):
        q = self.retry_queue({"x-delayed-retry-type": "failed", "x-delayed-retry-min": 400})
        self.ch.basic_publish("", q, b"job")
        ch, got = self.deliveries(q)
        wait_for(self.conn, lambda: len(got) == 1)
        ch.basic_nack(got[0][0].delivery_tag, requeue=True)  # a plain return: straight back
        wait_for(self.conn, lambda: len(got) == 2)
        self.assertEqual(got[1][1].headers["x-delivery-count"], 1)
        # Timed before the reject is sent, so that the broker's backoff cannot start earlier.
        rejected = time.monotonic()
        ch.basic_reject(got[1][0].delivery_tag, requeue=True)  # a failure: waits 400 ms
        wait_for(self.conn, lambda: len(got) == 3)
        self.assertGreaterEqual(got[2][3] - rejected, 0.4)
        self.assertEqual(got[2][1].headers["x-delivery-count"], 2)
        self.assertTrue(got[2][0].redelivered)
        ch.basic_ack(got[2][0].delivery_tag)

    def test_exponential_backoff_then_delivery_limit_then_dead_letter(self):
        dlq = self.queue("parked")
        q = self.retry_queue({"x-delayed-retry-min": 100, "x-delayed-retry-multiplier": 2,
                              "x-delivery-limit": 3}, dlq)
        self.ch.basic_publish("", q, b"job", pika.BasicProperties(message_id="m-1"))
        ch, got = self.deliveries(q)
        returned_at = []
        for attempt in range(4):
            wait_for(self.conn, lambda: len(got) == attempt + 1)
            returned_at.append(time.monotonic())  # before the send: a lower bound for the broker's
            ch.basic_reject(got[-1][0].delivery_tag, requeue=True)
        for attempt, wait in [(1, 0.1), (2, 0.2), (3, 0.4)]:
            self.assertGreaterEqual(got[attempt][3] - returned_at[attempt - 1], wait)
        [(_, props, body)] = consume_n(self.conn, self.conn.channel(), dlq, 1)
        self.assertEqual((body, props.message_id), (b"job", "m-1"))
        self.assertEqual(props.headers["x-death"][0]["reason"], "delivery_limit")
        self.assertEqual(props.headers["x-last-death-reason"], "delivery_limit")

    def test_bad_retry_argument_is_refused_naming_it(self):
        with channel_error(self, 406, "PRECONDITION_FAILED - invalid arg 'x-delayed-retry-type' for queue "
                                      "'jobs-x' in vhost '/': \"'sometimes' is not a valid delayed retry type; "
                                      "it must be one of all, failed, returned, disabled\""):
            self.ch.queue_declare("jobs-x", arguments={"x-delayed-retry-type": "sometimes",
                                                       "x-delayed-retry-min": 100})


@warren_only(REASON)
class PolicyKeyTests(unittest.TestCase):
    """The delayed keys as policy keys, set through the management API while queues and exchanges
    exist, and the delayed counts the API and /metrics show."""

    @classmethod
    def setUpClass(cls):
        cls.prometheus_port = procs.free_port()
        cls.m = mgmt_http.start({"prometheus": {"bind": "127.0.0.1", "port": cls.prometheus_port}})

    @classmethod
    def tearDownClass(cls):
        cls.m.stop()

    def setUp(self):
        self.conn = self.m.broker.connect()
        self.addCleanup(lambda: self.conn.is_open and self.conn.close())
        self.ch = self.conn.channel()

    def policy(self, name, pattern, definition, apply_to="all", operator=False):
        path = "/api/%s/%%2F/%s" % ("operator-policies" if operator else "policies", name)
        self.m.ok("PUT", path, {"pattern": pattern, "apply-to": apply_to, "definition": definition})
        self.addCleanup(lambda: self.m.request("DELETE", path))

    def test_delayed_message_policy_makes_an_existing_exchange_delay(self):
        x, q = unique("pol.events"), unique("pol.q")
        self.ch.exchange_declare(x, "direct")
        self.addCleanup(lambda: self.m.request("DELETE", "/api/exchanges/%%2F/%s" % x))
        self.ch.queue_declare(q)
        self.addCleanup(lambda: self.m.request("DELETE", "/api/queues/%%2F/%s" % q))
        self.ch.queue_bind(q, x, "k")
        self.policy("delay-" + x, "^%s$" % re.escape(x), {"delayed-message": True}, "exchanges")
        published = time.monotonic()
        self.ch.basic_publish(x, "k", b"later", delayed_props(800))
        self.ch.basic_publish(x, "k", b"now")
        status, shown, _ = self.m.get("/api/exchanges/%%2F/%s" % x)
        self.assertEqual((status, shown["type"], shown["messages_delayed"]), (200, "direct", 1))
        got = consume_n(self.conn, self.conn.channel(), q, 2)
        self.assertGreaterEqual(time.monotonic() - published, 0.8)
        self.assertEqual([b for _, _, b in got], [b"now", b"later"])
        self.assertEqual(got[1][1].headers["x-delay"], -800)

    def test_retry_policy_keys_reach_an_existing_queue_and_are_counted(self):
        q = unique("pol.jobs")
        self.ch.queue_declare(q)
        self.addCleanup(lambda: self.m.request("DELETE", "/api/queues/%%2F/%s" % q))
        self.policy("retry-" + q, "^%s$" % re.escape(q),
                    {"delayed-retry-type": "all", "delayed-retry-min": 300, "delayed-retry-max": 5000,
                     "delayed-retry-multiplier": 2}, "queues")
        # An operator policy raises the minimum (the larger one wins, as RabbitMQ 4.3 merges them).
        self.policy("op-" + q, "^%s$" % re.escape(q), {"delayed-retry-min": 600}, "queues", operator=True)
        self.ch.basic_publish("", q, b"job")
        got = []
        ch = self.conn.channel()
        ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, time.monotonic())))
        wait_for(self.conn, lambda: len(got) == 1)
        ch.basic_nack(got[0][0].delivery_tag, requeue=True)
        wait_for(self.conn, lambda: self.m.get("/api/queues/%%2F/%s" % q)[1]["messages_delayed"] == 1,
                 what="messages_delayed 1")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics/per-object" % self.prometheus_port) as r:
            families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
        samples = [s for s in families["warren_queue_messages_delayed"].samples if s.labels.get("queue") == q]
        self.assertEqual([s.value for s in samples], [1.0])
        wait_for(self.conn, lambda: len(got) == 2, what="the retried delivery")
        self.assertGreaterEqual(got[1][2] - got[0][2], 0.6)
        self.assertEqual(got[1][1].headers["x-delivery-count"], 1)

    def test_bad_retry_policy_gets_rabbitmq_text(self):
        status, body, _ = self.m.request("PUT", "/api/policies/%2F/bad-retry",
                                         {"pattern": ".*", "definition": {"delayed-retry-type": "failed"}})
        self.assertEqual(status, 400)
        self.assertIn("delayed-retry-min is required when delayed-retry-type is failed", body["reason"])


@warren_only(REASON)
class CrashTests(unittest.TestCase):
    """kill -9 with delayed and retrying messages in flight, then a restart on the same data."""

    def start(self, data):
        b = brokers.start_broker({"data_dir": data})
        self.addCleanup(lambda: getattr(b, "killed", False) or b.stop())
        return b

    def kill9(self, b):
        os.kill(b.pid, signal.SIGKILL)
        b.killed = True
        with self.assertRaisesRegex(RuntimeError, "status -9") as cm:
            b.stop()  # reaps it; says it died by a signal, as it did
        kept = re.search(r"log kept in (\S+)\)", str(cm.exception))
        if kept and not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(kept.group(1), ignore_errors=True)

    def test_delayed_and_retrying_messages_survive_kill_9(self):
        data = tempfile.mkdtemp(prefix="warren-delayed-crash-")
        self.addCleanup(shutil.rmtree, data, True)
        b = self.start(data)
        conn = b.connect()
        ch = conn.channel()
        ch.exchange_declare("later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
        ch.queue_declare("out", durable=True)
        ch.queue_bind("out", "later", "k")
        ch.queue_declare("jobs", durable=True, arguments={"x-delayed-retry-min": 2000})
        ch.confirm_delivery()
        deadlines = {}
        for i in range(50):
            ms = 1000 + (i * 37) % 2000
            # Taken before the publish: the broker's clock starts the delay when the message
            # arrives, and the confirm (an fdatasync) may take longer than the 50 ms allowed.
            sent = time.time()
            ch.basic_publish("later", "k", str(i).encode(), delayed_props(ms, delivery_mode=2))
            deadlines[str(i)] = sent + ms / 1000.0
        ch.basic_publish("", "jobs", b"pdf", pika.BasicProperties(delivery_mode=2))
        method, _, _ = ch.basic_get("jobs")
        ch.basic_reject(method.delivery_tag, requeue=True)  # retried in 2 s
        conn.process_data_events(0)  # the reject is written before anything answers it: a round trip
        ch.queue_declare("jobs", durable=True, passive=True)
        self.kill9(b)

        b = self.start(data)
        conn = b.connect()
        got = []
        conn.channel().basic_consume("out", lambda c, m, p, body: got.append((time.time(), p, body.decode())),
                                     auto_ack=True)
        wait_for(conn, lambda: len(got) == 50, timeout=60, what="the 50 delayed messages")
        bodies = [body for _, _, body in got]
        self.assertEqual(sorted(bodies, key=int), [str(i) for i in range(50)])
        # In deadline order, and none before its deadline (the wall clock, to 50 ms).
        self.assertEqual(bodies, sorted(bodies, key=lambda s: deadlines[s]))
        for received, props, body in got:
            self.assertGreater(received, deadlines[body] - 0.05, body)
            self.assertLess(props.headers["x-delay"], 0)
        [(_, props, body)] = consume_n(conn, conn.channel(), "jobs", 1, timeout=60)
        self.assertEqual((body, props.headers["x-delivery-count"]), (b"pdf", 1))
        conn.close()


if __name__ == "__main__":
    unittest.main()
