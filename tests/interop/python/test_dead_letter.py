"""Dead-lettering: x-death bookkeeping, a TTL retry loop ending in a parking lot, per-message TTL
order, max-length overflow modes, and delivery limits.
"""
import datetime
import unittest

import pika
import pika.exceptions

import brokers
from brokers import warren_only
from helpers import bodies, consume_n, message_count, unique, wait_for

broker = None
XDEATH_KEYS = {"count", "reason", "queue", "time", "exchange", "routing-keys"}


def setUpModule():
    global broker
    broker = brokers.start_broker()


def tearDownModule():
    broker.stop()


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


class DeadLetterCase(unittest.TestCase):
    def setUp(self):
        self.conn = broker.connect()
        self.addCleanup(lambda: self.conn.is_open and self.conn.close())
        self.ch = self.conn.channel()
        self.pub = self.conn.channel()
        self.pub.confirm_delivery()

    def queue(self, prefix="q", arguments=None, durable=False):
        q = unique(prefix)
        self.ch.queue_declare(q, durable=durable, arguments=arguments)
        self.addCleanup(self._delete_queue, q)
        return q

    def _delete_queue(self, q):
        conn = broker.connect()
        conn.channel().queue_delete(q)
        conn.close()

    def publish(self, q, body, exchange="", **props):
        self.pub.basic_publish(exchange, q, body.encode(),
                               pika.BasicProperties(**props) if props else None)

    def assert_death(self, death, queue, reason, count, exchange, routing_keys, extra=()):
        self.assertEqual(set(death), XDEATH_KEYS | set(extra), death)
        self.assertEqual((death["queue"], death["reason"], death["count"], death["exchange"],
                          death["routing-keys"]),
                         (queue, reason, count, exchange, routing_keys))
        self.assertIsInstance(death["time"], datetime.datetime)


class RejectTests(DeadLetterCase):
    def test_rejected_message_goes_to_dlx_with_x_death(self):
        dlx = unique("dlx")
        self.ch.exchange_declare(dlx, "fanout")
        self.addCleanup(lambda: self.conn.is_open and self.conn.channel().exchange_delete(dlx))
        dlq = self.queue("dlq")
        self.ch.queue_bind(dlq, dlx)
        work = self.queue("work", {"x-dead-letter-exchange": dlx})
        before = utcnow()
        self.publish(work, "job", headers={"app": "billing"}, message_id="m-1")
        method, _, _ = self.ch.basic_get(work)
        self.ch.basic_reject(method.delivery_tag, requeue=False)
        [(m, props, body)] = consume_n(self.conn, self.conn.channel(), dlq, 1)
        after = utcnow()
        self.assertEqual((body, props.message_id), (b"job", "m-1"))
        self.assertEqual((m.exchange, m.routing_key), (dlx, work))  # original key kept
        h = props.headers
        self.assertEqual(h["app"], "billing")
        self.assertEqual(len(h["x-death"]), 1)
        death = h["x-death"][0]
        self.assert_death(death, work, "rejected", 1, "", [work])
        self.assertTrue(before - datetime.timedelta(seconds=2) <= death["time"]
                        <= after + datetime.timedelta(seconds=2), death["time"])
        self.assertEqual((h["x-first-death-exchange"], h["x-first-death-queue"],
                          h["x-first-death-reason"]), ("", work, "rejected"))
        if brokers.is_rabbitmq():
            self.assertFalse([k for k in h if k.startswith("x-last-death")])  # 3.13+ only

    def test_dead_letter_routing_key_and_repeated_deaths_count_up(self):
        # work -(reject, DLX "" with key back to work)-> work: the same queue twice.
        work = unique("loop")
        self.ch.queue_declare(work, arguments={"x-dead-letter-exchange": "",
                                               "x-dead-letter-routing-key": work})
        self.addCleanup(self._delete_queue, work)
        self.publish(work, "again")
        counts, times = [], []
        for _ in range(3):
            [(m, props, _)] = consume_n(self.conn, self.ch, work, 1, auto_ack=False)
            deaths = (props.headers or {}).get("x-death", [])
            counts.append(deaths[0]["count"] if deaths else 0)
            times += [d["time"] for d in deaths]
            self.ch.basic_reject(m.delivery_tag, requeue=False)
        self.assertEqual(counts, [0, 1, 2])
        [(m, props, _)] = consume_n(self.conn, self.ch, work, 1)
        [death] = props.headers["x-death"]
        self.assert_death(death, work, "rejected", 3, "", [work])
        self.assertEqual(set(times + [death["time"]]), {times[0]})  # the first death's time

    def test_client_supplied_x_death_is_continued(self):
        # A message republished by a client with its x-death header (a retry counter kept in
        # x-death.count) counts on from there when it dies again.
        dlq = self.queue("dlq")
        work = self.queue("work", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
        earlier = {"count": 5, "reason": "rejected", "queue": work, "exchange": "",
                   "routing-keys": [work], "time": datetime.datetime(2024, 1, 2, 3, 4, 5)}
        self.publish(work, "retried", headers={"x-death": [earlier]})
        m, _, _ = self.ch.basic_get(work)
        self.ch.basic_reject(m.delivery_tag, requeue=False)
        [(_, props, _)] = consume_n(self.conn, self.ch, dlq, 1)
        [death] = props.headers["x-death"]
        self.assert_death(death, work, "rejected", 6, "", [work])
        # Only the count moves on: "time" stays that of the first death (RabbitMQ 3.x).
        self.assertEqual(death["time"], earlier["time"])

    @warren_only("x-last-death-* headers are written (RabbitMQ adds them only from 3.13)")
    def test_x_last_death_headers_follow_the_latest_death(self):
        dlq = self.queue("dlq")
        second = self.queue("second", {"x-dead-letter-exchange": "",
                                       "x-dead-letter-routing-key": dlq})
        first = self.queue("first", {"x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": second})
        self.publish(first, "twice dead")
        m, _, _ = self.ch.basic_get(first)
        self.ch.basic_reject(m.delivery_tag, requeue=False)
        [(m, _, _)] = consume_n(self.conn, self.ch, second, 1, auto_ack=False)
        self.ch.basic_nack(m.delivery_tag, requeue=False)
        [(_, props, _)] = consume_n(self.conn, self.ch, dlq, 1)
        h = props.headers
        self.assertEqual([d["queue"] for d in h["x-death"]], [second, first])
        self.assertEqual((h["x-first-death-queue"], h["x-first-death-reason"],
                          h["x-first-death-exchange"]), (first, "rejected", ""))
        self.assertEqual((h["x-last-death-queue"], h["x-last-death-reason"],
                          h["x-last-death-exchange"]), (second, "rejected", ""))


class RetryLoopTests(DeadLetterCase):
    def test_ttl_retry_loop_three_rounds_then_parking_lot(self):
        work, retry, parking = unique("work"), unique("retry"), self.queue("parking")
        self.ch.queue_declare(work, arguments={"x-dead-letter-exchange": "",
                                               "x-dead-letter-routing-key": retry})
        self.addCleanup(self._delete_queue, work)
        self.ch.queue_declare(retry, arguments={"x-message-ttl": 100,
                                                "x-dead-letter-exchange": "",
                                                "x-dead-letter-routing-key": work})
        self.addCleanup(self._delete_queue, retry)
        seen = []

        def worker(ch, method, props, body):
            deaths = (props.headers or {}).get("x-death", [])
            rejected = sum(d["count"] for d in deaths
                           if d["queue"] == work and d["reason"] == "rejected")
            seen.append(rejected)
            if rejected < 3:
                ch.basic_reject(method.delivery_tag, requeue=False)  # off to the retry queue
            else:
                ch.basic_publish("", parking, body, props)
                ch.basic_ack(method.delivery_tag)
        self.ch.basic_consume(work, worker)
        self.publish(work, "flaky job", headers={"attempt-of": "order-7"})
        [(_, props, body)] = consume_n(self.conn, self.conn.channel(), parking, 1)
        self.assertEqual(seen, [0, 1, 2, 3])
        self.assertEqual(body, b"flaky job")
        h = props.headers
        self.assertEqual(h["attempt-of"], "order-7")
        # Most recent death first; one entry per (queue, reason), counting repeats.
        self.assertEqual(len(h["x-death"]), 2)
        self.assert_death(h["x-death"][0], retry, "expired", 3, "", [retry])
        self.assert_death(h["x-death"][1], work, "rejected", 3, "", [work])
        self.assertEqual((h["x-first-death-queue"], h["x-first-death-reason"]),
                         (work, "rejected"))
        self.assertEqual(message_count(self.ch, retry), 0)


class TtlTests(DeadLetterCase):
    def _expiring_queue(self):
        expired = self.queue("expired")
        q = self.queue("ttl", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": expired})
        return q, expired

    def test_per_message_ttl_dead_letters_with_original_expiration(self):
        q, expired = self._expiring_queue()
        for ms in (100, 200, 300):  # deadlines in queue order: both brokers agree
            self.publish(q, "ttl-%d" % ms, expiration=str(ms), message_id="id-%d" % ms)
        got = consume_n(self.conn, self.ch, expired, 3)
        self.assertEqual([b for _, _, b in got], [b"ttl-100", b"ttl-200", b"ttl-300"])
        for (_, props, body), ms in zip(got, (100, 200, 300)):
            self.assertIsNone(props.expiration)  # removed, kept in x-death
            [death] = props.headers["x-death"]
            self.assert_death(death, q, "expired", 1, "", [q], extra={"original-expiration"})
            self.assertEqual(death["original-expiration"], str(ms))
            self.assertEqual(props.message_id, "id-%d" % ms)

    def test_queue_ttl_expires_unconsumed_messages(self):
        expired = self.queue("expired")
        q = self.queue("qttl", {"x-message-ttl": 150, "x-dead-letter-exchange": "",
                                "x-dead-letter-routing-key": expired})
        for i in range(3):
            self.publish(q, "m%d" % i)
        got = consume_n(self.conn, self.ch, expired, 3)
        self.assertEqual([b for _, _, b in got], [b"m0", b"m1", b"m2"])
        self.assertEqual(message_count(self.ch, q), 0)
        self.assert_death(got[0][1].headers["x-death"][0], q, "expired", 1, "", [q])

    def test_zero_ttl_message_to_consumer_is_delivered_not_expired(self):
        expired = self.queue("expired")
        q = self.queue("ttl0", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": expired})
        ch = self.conn.channel()
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
        self.publish(q, "now or never", expiration="0")
        wait_for(self.conn, lambda: got, what="delivery of a TTL 0 message to a waiting consumer")
        self.assertEqual(got, [b"now or never"])
        self.assertEqual(message_count(self.ch, expired), 0)

    @warren_only("TTL expires at the deadline anywhere in the queue (RabbitMQ: only at the head)")
    def test_mixed_per_message_ttls_expire_in_deadline_order(self):
        q, expired = self._expiring_queue()
        for ms in (900, 300, 600, 100):
            self.publish(q, "ttl-%d" % ms, expiration=str(ms))
        got = consume_n(self.conn, self.ch, expired, 4)
        self.assertEqual([b for _, _, b in got], [b"ttl-100", b"ttl-300", b"ttl-600", b"ttl-900"])
        self.assertEqual(message_count(self.ch, q), 0)


class MaxLengthTests(DeadLetterCase):
    def test_drop_head_dead_letters_the_oldest_with_reason_maxlen(self):
        dlq = self.queue("dlq")
        q = self.queue("maxlen", {"x-max-length": 3, "x-dead-letter-exchange": "",
                                  "x-dead-letter-routing-key": dlq})
        for i in range(5):
            self.publish(q, "m%d" % i)
        self.assertEqual(message_count(self.ch, q), 3)
        got = consume_n(self.conn, self.ch, dlq, 2)
        self.assertEqual([b for _, _, b in got], [b"m0", b"m1"])
        self.assert_death(got[0][1].headers["x-death"][0], q, "maxlen", 1, "", [q])
        self.assertEqual(bodies(self.ch, q), ["m2", "m3", "m4"])

    def test_max_length_bytes_drops_head(self):
        q = self.queue("maxbytes", {"x-max-length-bytes": 10})
        for body in ("aaaa", "bbbb", "cccc"):  # 12 bytes: the oldest goes
            self.publish(q, body)
        self.assertEqual(bodies(self.ch, q), ["bbbb", "cccc"])

    def test_reject_publish_nacks_the_confirming_publisher(self):
        dlq = self.queue("dlq")
        q = self.queue("rejpub", {"x-max-length": 2, "x-overflow": "reject-publish",
                                  "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
        self.publish(q, "m0")
        self.publish(q, "m1")
        with self.assertRaises(pika.exceptions.NackError):
            self.publish(q, "m2")
        self.assertEqual(message_count(self.ch, q), 2)
        self.assertEqual(message_count(self.ch, dlq), 0)  # reject-publish does not dead-letter
        self.ch.basic_get(q, auto_ack=True)
        self.publish(q, "m3")  # room again: acked
        self.assertEqual(bodies(self.ch, q), ["m1", "m3"])

    def test_reject_publish_dlx_nacks_and_dead_letters(self):
        dlq = self.queue("dlq")
        q = self.queue("rejdlx", {"x-max-length": 2, "x-overflow": "reject-publish-dlx",
                                  "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
        self.publish(q, "m0")
        self.publish(q, "m1")
        with self.assertRaises(pika.exceptions.NackError):
            self.publish(q, "m2")
        [(_, props, body)] = consume_n(self.conn, self.ch, dlq, 1)
        self.assertEqual(body, b"m2")
        self.assert_death(props.headers["x-death"][0], q, "maxlen", 1, "", [q])
        self.assertEqual(bodies(self.ch, q), ["m0", "m1"])


class DeliveryLimitTests(DeadLetterCase):
    def _run_delivery_limit(self, queue_args, durable):
        dlq = self.queue("dlq")
        args = {"x-delivery-limit": 2, "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dlq}
        args.update(queue_args)
        q = self.queue("limited", args, durable=durable)
        self.publish(q, "poison")
        ch = self.conn.channel()
        seen = []

        def requeue(c, method, props, body):
            seen.append((method.redelivered, (props.headers or {}).get("x-delivery-count")))
            c.basic_reject(method.delivery_tag, requeue=True)
        ch.basic_consume(q, requeue)
        [(_, props, body)] = consume_n(self.conn, self.conn.channel(), dlq, 1)
        self.conn.process_data_events(time_limit=0)
        # Delivered once, redelivered up to the limit, then dead-lettered.
        self.assertEqual(seen, [(False, None), (True, 1), (True, 2)])
        self.assertEqual(body, b"poison")
        death = props.headers["x-death"][0]
        self.assertEqual((death["queue"], death["reason"], death["count"]),
                         (q, "delivery_limit", 1))
        self.assertEqual(message_count(self.ch, q), 0)

    def test_quorum_queue_delivery_limit_dead_letters(self):
        self._run_delivery_limit({"x-queue-type": "quorum"}, durable=True)

    @warren_only("x-delivery-limit and x-delivery-count on classic queues (RabbitMQ: quorum only)")
    def test_classic_queue_delivery_limit_dead_letters(self):
        self._run_delivery_limit({}, durable=False)


if __name__ == "__main__":
    unittest.main()
