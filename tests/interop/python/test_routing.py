"""Routing: every exchange type, exchange-to-exchange bindings, alternate exchanges, mandatory
returns, the declare/bind/delete errors RabbitMQ gives, counts from purge/delete/get, and the
click fan-out (10,000 events to three queues, each exactly once).
"""
import unittest

import pika
import pika.exceptions

import brokers
from helpers import (ConfirmedPublisher, bodies, channel_error, consume_n, message_count, unique,
                     wait_for)

broker = None


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


class RoutingCase(unittest.TestCase):
    def setUp(self):
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()  # a confirmed publish has been routed and enqueued
        self.addCleanup(self._close)

    def _close(self):
        if self.conn.is_open:
            self.conn.close()

    def queue(self, prefix="q"):
        return self.ch.queue_declare(unique(prefix), exclusive=True).method.queue

    def exchange(self, kind, prefix="x", **kw):
        name = unique(prefix + "-" + kind)
        self.ch.exchange_declare(name, kind, auto_delete=False, **kw)
        self.addCleanup(self._delete_exchange, name)
        return name

    def _delete_exchange(self, name):
        if self.conn.is_open:
            self.conn.channel().exchange_delete(name)

    def publish(self, exchange, key, body, headers=None, mandatory=False):
        props = pika.BasicProperties(headers=headers) if headers is not None else None
        self.ch.basic_publish(exchange, key, body.encode(), props, mandatory=mandatory)


class ExchangeTypeTests(RoutingCase):
    def test_direct_routes_by_exact_key(self):
        x = self.exchange("direct")
        qa, qb, qa2 = self.queue(), self.queue(), self.queue()
        self.ch.queue_bind(qa, x, "a")
        self.ch.queue_bind(qb, x, "b")
        self.ch.queue_bind(qa2, x, "a")
        self.ch.queue_bind(qa2, x, "b")
        for key in ("a", "b", "A", "", "a.b"):
            self.publish(x, key, key)
        self.assertEqual(bodies(self.ch, qa), ["a"])
        self.assertEqual(bodies(self.ch, qb), ["b"])
        self.assertEqual(bodies(self.ch, qa2), ["a", "b"])

    def test_fanout_ignores_the_routing_key(self):
        x = self.exchange("fanout")
        queues = [self.queue() for _ in range(3)]
        for i, q in enumerate(queues):
            self.ch.queue_bind(q, x, "key-%d" % i)
        for key in ("", "key-0", "anything.at.all"):
            self.publish(x, key, key)
        for q in queues:
            self.assertEqual(bodies(self.ch, q), ["", "key-0", "anything.at.all"])

    def test_topic_wildcards_and_edge_cases(self):
        x = self.exchange("topic")
        patterns = ["#", "*", "a.*", "a.#", "#.a", "a.#.b", "a.*.b", "*.*", "a.#.#.b", "#.#",
                    "a", "", "a..b", "*.b.#"]
        keys = ["", "a", "b", "a.b", "a.c", "a.b.c", "a.x.y.b", "b.a", "a..b", "x.b", "x.b.y.z",
                "a.b.b", ".", "a."]
        queue_of = {}
        for p in patterns:
            queue_of[p] = self.queue("topic")
            self.ch.queue_bind(queue_of[p], x, p)
        for k in keys:
            self.publish(x, k, k)
        expected = {
            # '#' matches zero or more words, so every key, including the empty one.
            "#": keys,
            # '*' matches exactly one word; the empty key has no words at all.
            "*": ["a", "b"],
            "a.*": ["a.b", "a.c", "a."],
            # 'a.#' includes plain "a": '#' may match zero words.
            "a.#": ["a", "a.b", "a.c", "a.b.c", "a.x.y.b", "a..b", "a.b.b", "a."],
            "#.a": ["a", "b.a"],
            "a.#.b": ["a.b", "a.x.y.b", "a..b", "a.b.b"],
            # An empty word is a word: 'a.*.b' matches "a..b".
            "a.*.b": ["a..b", "a.b.b"],
            "*.*": ["a.b", "a.c", "b.a", "x.b", ".", "a."],
            "a.#.#.b": ["a.b", "a.x.y.b", "a..b", "a.b.b"],
            "#.#": keys,
            "a": ["a"],
            "": [""],
            "a..b": ["a..b"],
            "*.b.#": ["a.b", "a.b.c", "x.b", "x.b.y.z", "a.b.b"],
        }
        actual = {p: sorted(bodies(self.ch, queue_of[p])) for p in patterns}
        self.assertEqual(actual, {p: sorted(expected[p]) for p in patterns})

    def test_headers_exchange_all_and_any(self):
        x = self.exchange("headers")
        q_all, q_any, q_empty_all, q_xkeys = (self.queue("hdr") for _ in range(4))
        self.ch.queue_bind(q_all, x, "", arguments={"x-match": "all", "a": 1, "b": "two"})
        self.ch.queue_bind(q_any, x, "", arguments={"x-match": "any", "a": 1, "b": "two"})
        self.ch.queue_bind(q_empty_all, x, "", arguments={"x-match": "all"})
        # Binding arguments starting with "x-" take no part in matching.
        self.ch.queue_bind(q_xkeys, x, "", arguments={"x-match": "all", "x-ignored": "yes",
                                                      "c": "three"})
        messages = {
            "both": {"a": 1, "b": "two"},
            "both-and-more": {"a": 1, "b": "two", "c": "three"},
            "only-a": {"a": 1},
            "only-b": {"b": "two"},
            "a-wrong-value": {"a": 2, "b": "two2"},
            "none": {},
            "c-only": {"c": "three"},
        }
        for body, headers in messages.items():
            self.publish(x, "ignored-key", body, headers=headers)
        self.assertEqual(bodies(self.ch, q_all), ["both", "both-and-more"])
        self.assertEqual(bodies(self.ch, q_any), ["both", "both-and-more", "only-a", "only-b"])
        self.assertEqual(bodies(self.ch, q_empty_all), list(messages))
        self.assertEqual(bodies(self.ch, q_xkeys), ["both-and-more", "c-only"])

    def test_headers_exchange_defaults_to_all(self):
        x = self.exchange("headers")
        q = self.queue("hdr")
        self.ch.queue_bind(q, x, "", arguments={"k": "v", "n": 5})
        self.publish(x, "", "one-header", headers={"k": "v"})
        self.publish(x, "", "both-headers", headers={"k": "v", "n": 5})
        self.assertEqual(bodies(self.ch, q), ["both-headers"])


class ExchangeToExchangeTests(RoutingCase):
    def test_exchange_to_exchange_binding_forwards(self):
        src = self.exchange("topic", "src")
        dst = self.exchange("direct", "dst")
        q = self.queue()
        self.ch.exchange_bind(destination=dst, source=src, routing_key="orders.*")
        self.ch.queue_bind(q, dst, "orders.new")
        self.publish(src, "orders.new", "forwarded")
        self.publish(src, "orders.old", "filtered by dst")
        self.publish(src, "payments.new", "filtered by src")
        self.assertEqual(bodies(self.ch, q), ["forwarded"])
        self.ch.exchange_unbind(destination=dst, source=src, routing_key="orders.*")
        self.publish(src, "orders.new", "after unbind")
        self.assertEqual(bodies(self.ch, q), [])

    def test_binding_cycle_terminates_and_delivers_once(self):
        x1 = self.exchange("fanout", "cycle1")
        x2 = self.exchange("fanout", "cycle2")
        q1, q2 = self.queue(), self.queue()
        self.ch.exchange_bind(destination=x2, source=x1)
        self.ch.exchange_bind(destination=x1, source=x2)
        self.ch.queue_bind(q1, x1)
        self.ch.queue_bind(q2, x2)
        self.publish(x1, "", "round")  # confirm_delivery: returns only once routing finished
        self.publish(x2, "", "trip")
        self.assertEqual(bodies(self.ch, q1), ["round", "trip"])
        self.assertEqual(bodies(self.ch, q2), ["round", "trip"])

    def test_queue_reached_by_two_paths_gets_one_copy(self):
        top = self.exchange("fanout", "top")
        left = self.exchange("direct", "left")
        right = self.exchange("topic", "right")
        q = self.queue()
        self.ch.exchange_bind(destination=left, source=top)
        self.ch.exchange_bind(destination=right, source=top)
        self.ch.queue_bind(q, left, "k")
        self.ch.queue_bind(q, right, "#")
        self.ch.queue_bind(q, top)  # and a third, direct path
        self.publish(top, "k", "diamond")
        self.assertEqual(bodies(self.ch, q), ["diamond"])


class AlternateAndMandatoryTests(RoutingCase):
    def test_alternate_exchange_receives_unroutable_messages(self):
        ae = self.exchange("fanout", "ae")
        unrouted = self.queue("unrouted")
        self.ch.queue_bind(unrouted, ae)
        x = self.exchange("direct", arguments={"alternate-exchange": ae})
        routed = self.queue("routed")
        self.ch.queue_bind(routed, x, "known")
        self.publish(x, "known", "routed")
        self.publish(x, "unknown", "to the AE")
        self.assertEqual(bodies(self.ch, routed), ["routed"])
        self.assertEqual(bodies(self.ch, unrouted), ["to the AE"])

    def test_mandatory_without_route_is_returned_312_no_route(self):
        conn = broker.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        returned = []
        ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, p, b)))
        x = self.exchange("direct")
        key = unique("nobody")
        ch.basic_publish(x, key, b"lost?", pika.BasicProperties(message_id="m1"), mandatory=True)
        wait_for(conn, lambda: returned, what="basic.return")
        method, props, body = returned[0]
        self.assertEqual((method.reply_code, method.reply_text, method.exchange,
                          method.routing_key), (312, "NO_ROUTE", x, key))
        self.assertEqual((props.message_id, body), ("m1", b"lost?"))
        # A routable mandatory publish is not returned; the default exchange with a missing
        # queue name is unroutable too.
        q = self.queue()
        ch.basic_publish("", q, b"fine", mandatory=True)
        ch.basic_publish("", unique("no-such-queue"), b"lost", mandatory=True)
        wait_for(conn, lambda: len(returned) >= 2, what="second basic.return")
        self.assertEqual(returned[1][0].reply_code, 312)
        self.assertEqual(returned[1][2], b"lost")
        self.assertEqual(message_count(self.ch, q), 1)
        self.assertEqual(len(returned), 2)


class ErrorTests(RoutingCase):
    def test_publish_to_missing_exchange_is_404(self):
        ch = self.conn.channel()
        missing = unique("missing")
        with channel_error(self, 404, "NOT_FOUND - no exchange '%s' in vhost '/'" % missing):
            ch.basic_publish(missing, "k", b"x")
            ch.queue_declare("", exclusive=True)  # the error arrives asynchronously
        self.assertTrue(self.conn.is_open)

    def test_declaring_amq_prefixed_exchange_is_403(self):
        ch = self.conn.channel()
        with channel_error(self, 403, "ACCESS_REFUSED - exchange name 'amq.custom' contains "
                                      "reserved prefix 'amq.*'"):
            ch.exchange_declare("amq.custom", "direct")

    def test_passive_declare_of_builtin_amq_exchanges_succeeds(self):
        for name, kind in (("amq.direct", "direct"), ("amq.fanout", "fanout"),
                           ("amq.topic", "topic"), ("amq.headers", "headers"),
                           ("amq.match", "headers")):
            self.ch.exchange_declare(name, passive=True)
            self.ch.exchange_declare(name, kind, durable=True)  # equivalent redeclare is fine

    def test_redeclare_exchange_with_other_type_is_406(self):
        x = self.exchange("direct")
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for "
                                      "exchange '%s' in vhost '/': received 'fanout' but current "
                                      "is 'direct'" % x):
            ch.exchange_declare(x, "fanout")

    def test_redeclare_exchange_with_other_durability_is_406(self):
        x = self.exchange("topic")
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for "
                                      "exchange '%s' in vhost '/': received 'true' but current "
                                      "is 'false'" % x):
            ch.exchange_declare(x, "topic", durable=True)

    def test_passive_declare_of_missing_exchange_is_404(self):
        ch = self.conn.channel()
        missing = unique("missing")
        with channel_error(self, 404, "NOT_FOUND - no exchange '%s' in vhost '/'" % missing):
            ch.exchange_declare(missing, passive=True)

    def test_default_exchange_bind_is_403(self):
        q = self.queue()
        ch = self.conn.channel()
        with channel_error(self, 403, "ACCESS_REFUSED - operation not permitted on the default "
                                      "exchange"):
            ch.queue_bind(q, "", "k")

    def test_default_exchange_unbind_is_403(self):
        q = self.queue()
        ch = self.conn.channel()
        with channel_error(self, 403, "ACCESS_REFUSED - operation not permitted on the default "
                                      "exchange"):
            ch.queue_unbind(q, "", q)

    def test_default_exchange_delete_is_403(self):
        ch = self.conn.channel()
        with channel_error(self, 403, "ACCESS_REFUSED - operation not permitted on the default "
                                      "exchange"):
            ch.exchange_delete("")

    def test_default_exchange_declare_is_403(self):
        ch = self.conn.channel()
        with channel_error(self, 403, "ACCESS_REFUSED - operation not permitted on the default "
                                      "exchange"):
            ch.exchange_declare("", "direct")

    def test_queue_redeclare_with_different_args_is_406(self):
        q = unique("args")
        self.ch.queue_declare(q, exclusive=True, arguments={"x-message-ttl": 1000})
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for "
                                      "queue '%s' in vhost '/': received '2000' but current is "
                                      "'1000'" % q):
            ch.queue_declare(q, exclusive=True, arguments={"x-message-ttl": 2000})

    def test_queue_redeclare_adding_an_arg_is_406(self):
        q = unique("args")
        self.ch.queue_declare(q, exclusive=True)
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for "
                                      "queue '%s' in vhost '/': received the value '10' of type "
                                      "'signedint' but current is none" % q):
            ch.queue_declare(q, exclusive=True, arguments={"x-max-length": 10})

    def test_queue_redeclare_with_other_durability_is_406(self):
        q = unique("durable")
        self.ch.queue_declare(q, auto_delete=True)
        self.addCleanup(lambda: self.conn.is_open and self.conn.channel().queue_delete(q))
        ch = self.conn.channel()
        with channel_error(self, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for "
                                      "queue '%s' in vhost '/': received 'true' but current is "
                                      "'false'" % q):
            ch.queue_declare(q, durable=True, auto_delete=True)

    def test_exclusive_queue_from_another_connection_is_405(self):
        q = self.queue("exclusive")
        other = broker.connect()
        self.addCleanup(other.close)
        text = ("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost "
                "'/'. It could be originally declared on another connection or the exclusive "
                "property value does not match that of the original declaration." % q)
        for op in (lambda ch: ch.queue_declare(q, exclusive=True),
                   lambda ch: ch.queue_declare(q, passive=True),
                   lambda ch: ch.basic_consume(q, lambda *a: None),
                   lambda ch: ch.queue_purge(q),
                   lambda ch: ch.queue_delete(q)):
            with channel_error(self, 405, text):
                op(other.channel())
        self.assertEqual(message_count(self.ch, q), 0)  # still there for its owner

    def test_passive_declare_of_missing_queue_is_404(self):
        ch = self.conn.channel()
        missing = unique("missing")
        with channel_error(self, 404, "NOT_FOUND - no queue '%s' in vhost '/'" % missing):
            ch.queue_declare(missing, passive=True)

    def test_bind_to_missing_queue_or_exchange_is_404(self):
        x = self.exchange("direct")
        q = self.queue()
        missing = unique("missing")
        with channel_error(self, 404, "NOT_FOUND - no queue '%s' in vhost '/'" % missing):
            self.conn.channel().queue_bind(missing, x, "k")
        with channel_error(self, 404, "NOT_FOUND - no exchange '%s' in vhost '/'" % missing):
            self.conn.channel().queue_bind(q, missing, "k")


class ArgumentValidationTests(RoutingCase):
    def test_unknown_exchange_type_is_connection_error_503(self):
        conn = broker.connect()
        self.addCleanup(lambda: conn.is_open and conn.close())
        with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
            conn.channel().exchange_declare(unique("x"), "bogus")
        self.assertEqual((cm.exception.reply_code, cm.exception.reply_text),
                         (503, "COMMAND_INVALID - unknown exchange type 'bogus'"))

    def test_deleting_a_builtin_exchange_is_403(self):
        with channel_error(self, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' "
                                      "in vhost '/' not allowed"):
            self.conn.channel().exchange_delete("amq.direct")

    def test_amq_prefixed_queue_name_is_403(self):
        with channel_error(self, 403, "ACCESS_REFUSED - queue name 'amq.custom' contains reserved "
                                      "prefix 'amq.*'"):
            self.conn.channel().queue_declare("amq.custom")

    def test_deleting_missing_queue_or_exchange_succeeds(self):
        missing = unique("missing")
        self.assertEqual(self.ch.queue_delete(missing).method.message_count, 0)
        self.ch.exchange_delete(missing)
        q = self.queue()
        self.ch.queue_unbind(q, "amq.direct", "never-bound")
        self.assertTrue(self.conn.is_open and self.ch.is_open)

    def test_invalid_queue_arguments_are_406(self):
        cases = [
            ({"x-queue-type": "bogus"},
             "invalid arg 'x-queue-type' for queue '%s' in vhost '/': "
             "\"unsupported queue type 'bogus'\""),
            ({"x-message-ttl": -1},
             "invalid arg 'x-message-ttl' for queue '%s' in vhost '/': {value_negative,-1}"),
            ({"x-max-length": -1},
             "invalid arg 'x-max-length' for queue '%s' in vhost '/': {value_negative,-1}"),
            ({"x-expires": 0},
             "invalid arg 'x-expires' for queue '%s' in vhost '/': {value_zero,0}"),
            ({"x-overflow": "drop-tail"},
             "invalid arg 'x-overflow' for queue '%s' in vhost '/': invalid_overflow"),
            ({"x-max-priority": 300},
             "invalid arg 'x-max-priority' for queue '%s' in vhost '/': {max_value_exceeded,300}"),
            ({"x-dead-letter-routing-key": "k"},
             "invalid arg 'x-dead-letter-routing-key' for queue '%s' in vhost '/': "
             "routing_key_but_no_dlx_defined"),
        ]
        for args, text in cases:
            q = unique("badarg")
            with channel_error(self, 406, "PRECONDITION_FAILED - " + text % q):
                self.conn.channel().queue_declare(q, exclusive=True, arguments=args)


class QueueCountTests(RoutingCase):
    def test_purge_and_delete_report_message_counts(self):
        q = self.queue()
        for i in range(5):
            self.publish("", q, "m%d" % i)
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 5)
        self.assertEqual(message_count(self.ch, q), 0)
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 0)
        for i in range(3):
            self.publish("", q, "n%d" % i)
        self.assertEqual(self.ch.queue_delete(q).method.message_count, 3)
        ch = self.conn.channel()
        with channel_error(self, 404, "NOT_FOUND - no queue '%s' in vhost '/'" % q):
            ch.queue_declare(q, passive=True)

    def test_purge_leaves_unacked_messages_alone(self):
        q = self.queue()
        for i in range(4):
            self.publish("", q, "m%d" % i)
        method, _, _ = self.ch.basic_get(q, auto_ack=False)
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 3)
        self.ch.basic_reject(method.delivery_tag, requeue=True)
        self.assertEqual(bodies(self.ch, q), ["m0"])

    def test_delete_if_empty_and_if_unused(self):
        q = self.queue()
        self.publish("", q, "x")
        with channel_error(self, 406, "PRECONDITION_FAILED - queue '%s' in vhost '/' not empty"
                           % q):
            self.conn.channel().queue_delete(q, if_empty=True)
        consumer = self.conn.channel()
        consumer.basic_consume(q, lambda *a: None)
        with channel_error(self, 406, "PRECONDITION_FAILED - queue '%s' in vhost '/' in use" % q):
            self.conn.channel().queue_delete(q, if_unused=True)
        self.assertEqual(message_count(self.ch, q), 0)  # the consumer took it

    def test_basic_get_reports_remaining_count_then_get_empty(self):
        q = self.queue()
        for i in range(3):
            self.publish("", q, "m%d" % i)
        seen = []
        for _ in range(3):
            method, _, body = self.ch.basic_get(q, auto_ack=True)
            self.assertIsInstance(method, pika.spec.Basic.GetOk)
            seen.append((body.decode(), method.message_count, method.redelivered,
                         method.exchange, method.routing_key))
        self.assertEqual(seen, [("m0", 2, False, "", q), ("m1", 1, False, "", q),
                                ("m2", 0, False, "", q)])
        self.assertEqual(self.ch.basic_get(q, auto_ack=True), (None, None, None))

    def test_basic_get_without_ack_then_reject_redelivers(self):
        q = self.queue()
        self.publish("", q, "once")
        method, _, _ = self.ch.basic_get(q, auto_ack=False)
        self.assertEqual(method.message_count, 0)
        self.assertEqual(self.ch.basic_get(q), (None, None, None))
        self.ch.basic_reject(method.delivery_tag, requeue=True)
        method, _, body = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual((body, method.redelivered), (b"once", True))


class ClickFanoutTests(RoutingCase):
    EVENTS = 10000

    def test_click_events_reach_each_queue_exactly_once(self):
        clicks = self.exchange("fanout", "clicks")
        queues = {}
        for name in ("settlement", "analytics", "dashboard"):
            queues[name] = self.queue(name)
            self.ch.queue_bind(queues[name], clicks)
        pub = ConfirmedPublisher(broker.params(), clicks, "click",
                                 self.EVENTS, body=lambda i: b"click-%05d" % i).run()
        self.assertEqual((len(pub.acks), len(pub.nacks), pub.anomalies), (self.EVENTS, 0, []))
        for name, q in queues.items():
            self.assertEqual(message_count(self.ch, q), self.EVENTS, name)
        for name, q in queues.items():
            ch = self.conn.channel()
            ch.basic_qos(prefetch_count=1000)
            got = consume_n(self.conn, ch, q, self.EVENTS, auto_ack=True)
            ids = [b for _, _, b in got]
            self.assertEqual(len(set(ids)), self.EVENTS, "%s got duplicates" % name)
            self.assertEqual(ids, [b"click-%05d" % i for i in range(self.EVENTS)],
                             "%s got events out of order" % name)
            self.assertEqual(message_count(ch, q), 0, name)


if __name__ == "__main__":
    unittest.main()
