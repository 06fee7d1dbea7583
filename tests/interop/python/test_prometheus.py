"""Prometheus metrics (`prometheus` listener, /metrics and /metrics/per-object): a scrape parsed by
the Prometheus project's own parser (Debian's python3-prometheus-client) has every metric and
label Grafana dashboard 10991 "RabbitMQ-Overview" queries, in its RabbitMQ 3.10 version and in
its current one (rabbitmq-server's deps/rabbitmq_prometheus/docker/grafana/dashboards), with
values that follow real traffic; per-object samples carry vhost and queue labels.
"""
import unittest
import urllib.request

import pika
from prometheus_client.parser import text_string_to_metric_families

import brokers
import procs
from helpers import unique

broker = None
port = None

# Every metric name in the dashboard's queries (RabbitMQ-Overview.json as of rabbitmq-server v3.10.8
# and as of its main branch in 2026), found with grep -o 'rabbitmq_[a-z_]*' minus label names.
DASHBOARD_3_10 = {
    "rabbitmq_build_info", "rabbitmq_channel_consumers", "rabbitmq_channels", "rabbitmq_channels_closed_total",
    "rabbitmq_channels_opened_total", "rabbitmq_connections", "rabbitmq_connections_closed_total",
    "rabbitmq_connections_opened_total", "rabbitmq_consumers", "rabbitmq_disk_space_available_bytes",
    "rabbitmq_global_messages_acknowledged_total", "rabbitmq_global_messages_confirmed_total",
    "rabbitmq_global_messages_delivered_consume_auto_ack_total",
    "rabbitmq_global_messages_delivered_consume_manual_ack_total",
    "rabbitmq_global_messages_delivered_get_auto_ack_total", "rabbitmq_global_messages_delivered_get_manual_ack_total",
    "rabbitmq_global_messages_get_empty_total", "rabbitmq_global_messages_received_confirm_total",
    "rabbitmq_global_messages_received_total", "rabbitmq_global_messages_redelivered_total",
    "rabbitmq_global_messages_routed_total", "rabbitmq_global_messages_unroutable_dropped_total",
    "rabbitmq_global_messages_unroutable_returned_total", "rabbitmq_identity_info", "rabbitmq_process_max_fds",
    "rabbitmq_process_max_tcp_sockets", "rabbitmq_process_open_fds", "rabbitmq_process_open_tcp_sockets",
    "rabbitmq_process_resident_memory_bytes", "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
    "rabbitmq_queues", "rabbitmq_queues_created_total", "rabbitmq_queues_declared_total",
    "rabbitmq_queues_deleted_total", "rabbitmq_resident_memory_limit_bytes",
}
DASHBOARD_CURRENT = {
    "rabbitmq_build_info", "rabbitmq_channels", "rabbitmq_channels_closed_total", "rabbitmq_channels_opened_total",
    "rabbitmq_connections", "rabbitmq_connections_closed_total", "rabbitmq_connections_opened_total",
    "rabbitmq_disk_space_available_bytes", "rabbitmq_disk_space_available_limit_bytes",
    "rabbitmq_erlang_uptime_seconds", "rabbitmq_global_consumers", "rabbitmq_global_messages_acknowledged_total",
    "rabbitmq_global_messages_confirmed_total", "rabbitmq_global_messages_delivered_consume_auto_ack_total",
    "rabbitmq_global_messages_delivered_consume_manual_ack_total",
    "rabbitmq_global_messages_delivered_get_auto_ack_total", "rabbitmq_global_messages_delivered_get_manual_ack_total",
    "rabbitmq_global_messages_delivered_total", "rabbitmq_global_messages_get_empty_total",
    "rabbitmq_global_messages_received_confirm_total", "rabbitmq_global_messages_received_total",
    "rabbitmq_global_messages_redelivered_total", "rabbitmq_global_messages_routed_total",
    "rabbitmq_global_messages_unroutable_dropped_total", "rabbitmq_global_messages_unroutable_returned_total",
    "rabbitmq_global_publishers", "rabbitmq_identity_info", "rabbitmq_message_size_bytes_bucket",
    "rabbitmq_message_size_bytes_count", "rabbitmq_message_size_bytes_sum", "rabbitmq_process_max_fds",
    "rabbitmq_process_open_fds", "rabbitmq_process_resident_memory_bytes", "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked", "rabbitmq_queues", "rabbitmq_queues_created_total",
    "rabbitmq_queues_declared_total", "rabbitmq_queues_deleted_total", "rabbitmq_resident_memory_limit_bytes",
}
# The histogram buckets the dashboard's "Message Size Distribution" panel reads.
SIZE_BUCKETS = {"100.0", "1000.0", "10000.0", "100000.0", "1e+06", "1e+07", "5e+07", "1e+08", "+Inf"}


def setUpModule():
    global broker, port
    port = procs.free_port()
    broker = brokers.start_broker({"prometheus": {"bind": "127.0.0.1", "port": port}})


def tearDownModule():
    broker.stop()


def scrape(path="/metrics"):
    """{sample name: [(labels, value)]} of a scrape, through prometheus_client's parser."""
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
        content_type = r.headers.get("Content-Type", "")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return content_type, samples


def value(samples, name, **labels):
    return sum(v for l, v in samples[name] if all(l.get(k) == x for k, x in labels.items()))


@brokers.warren_only("the interop harness configures Warren's prometheus listener; RabbitMQ needs the "
                     "rabbitmq_prometheus plugin")
class PrometheusTests(unittest.TestCase):
    def test_every_metric_of_the_grafana_dashboard_is_there(self):
        content_type, samples = scrape()
        self.assertTrue(content_type.startswith("text/plain"), content_type)
        missing = sorted((DASHBOARD_3_10 | DASHBOARD_CURRENT) - set(samples))
        self.assertEqual(missing, [])
        identity = samples["rabbitmq_identity_info"][0][0]
        for key in ("rabbitmq_node", "rabbitmq_cluster", "rabbitmq_endpoint"):
            self.assertTrue(identity.get(key), key)
        self.assertEqual(identity["rabbitmq_endpoint"], "metrics")
        build = samples["rabbitmq_build_info"][0][0]
        self.assertTrue(build.get("rabbitmq_version"))
        self.assertIn("erlang_version", build)
        self.assertEqual({l["le"] for l, _ in samples["rabbitmq_message_size_bytes_bucket"]}, SIZE_BUCKETS)
        self.assertEqual(samples["rabbitmq_global_messages_received_total"][0][0], {"protocol": "amqp091"})
        self.assertGreater(value(samples, "rabbitmq_process_resident_memory_bytes"), 0)
        self.assertGreater(value(samples, "rabbitmq_resident_memory_limit_bytes"), 0)
        self.assertGreater(value(samples, "rabbitmq_process_open_fds"), 0)
        self.assertGreater(value(samples, "rabbitmq_process_max_fds"), 0)

    def test_values_follow_traffic(self):
        _, before = scrape()
        q = unique("prom")
        conn = broker.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(q, auto_delete=True)
            ch.confirm_delivery()
            for size in (10, 500, 5000):
                ch.basic_publish("", q, b"x" * size)
            ch.basic_publish("", "no-such-queue-" + q, b"lost")
            method, _, _ = ch.basic_get(q, auto_ack=False)
            ch.basic_ack(method.delivery_tag)
            ch.basic_get(q, auto_ack=True)
            _, after = scrape()
            self.assertGreaterEqual(value(after, "rabbitmq_connections"), 1)
            self.assertGreaterEqual(value(after, "rabbitmq_channels"), 1)
            self.assertGreaterEqual(value(after, "rabbitmq_queues"), 1)
        finally:
            conn.close()

        def grew(name, by):
            return value(after, name) - value(before, name) >= by

        self.assertTrue(grew("rabbitmq_global_messages_received_total", 4))
        self.assertTrue(grew("rabbitmq_global_messages_confirmed_total", 4))
        self.assertTrue(grew("rabbitmq_global_messages_unroutable_dropped_total", 1))
        self.assertTrue(grew("rabbitmq_global_messages_delivered_get_manual_ack_total", 1))
        self.assertTrue(grew("rabbitmq_global_messages_delivered_get_auto_ack_total", 1))
        self.assertTrue(grew("rabbitmq_global_messages_acknowledged_total", 1))
        self.assertTrue(grew("rabbitmq_channel_messages_published_total", 4))
        self.assertTrue(grew("rabbitmq_queues_declared_total", 1))
        self.assertTrue(grew("rabbitmq_queues_created_total", 1))
        self.assertTrue(grew("rabbitmq_connections_opened_total", 1))
        self.assertTrue(grew("rabbitmq_channels_opened_total", 1))
        # The four bodies: 10 and 4 bytes in the 100 B bucket, 500 in 1 kB, 5000 in 10 kB.
        self.assertTrue(grew("rabbitmq_message_size_bytes_count", 4))
        self.assertTrue(grew("rabbitmq_message_size_bytes_sum", 5514))
        le100 = lambda s: value(s, "rabbitmq_message_size_bytes_bucket", le="100.0")  # noqa: E731
        self.assertGreaterEqual(le100(after) - le100(before), 2)
        _, closed = scrape()
        self.assertGreaterEqual(value(closed, "rabbitmq_connections_closed_total"),
                                value(before, "rabbitmq_connections_closed_total") + 1)

    def test_per_object_metrics_name_each_queue(self):
        q = unique("prom-q")
        conn = broker.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(q)
            ch.confirm_delivery()
            for _ in range(3):
                ch.basic_publish("", q, b"m")
            ch.queue_declare(q, passive=True)
        finally:
            conn.close()

        def seen():
            _, s = scrape("/metrics/per-object")
            return value(s, "rabbitmq_queue_messages_ready", vhost="/", queue=q) == 3 and s
        samples = procs.wait_until(seen, 20, interval=0.2, what="the per-object queue gauge")
        self.assertEqual(samples["rabbitmq_identity_info"][0][0]["rabbitmq_endpoint"], "per-object")
        self.assertEqual(value(samples, "rabbitmq_queue_messages", vhost="/", queue=q), 3)
        self.assertIn("rabbitmq_global_messages_received_total", samples)
        self.assertNotIn(q, [l.get("queue") for l, _ in scrape("/metrics")[1].get("rabbitmq_queue_messages_ready", [])])

    def test_other_paths_are_404(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://127.0.0.1:%d/api/overview" % port, timeout=30)
        self.assertEqual(e.exception.code, 404)



@brokers.warren_only("Warren's own dead-letter metrics; RabbitMQ has none")
class DeadLetterMetricsTests(unittest.TestCase):
    def test_dead_letter_counters_and_dead_letter_queue_health(self):
        dlq, work = unique("prom-dlq"), unique("prom-work")
        _, before = scrape()
        conn = broker.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(dlq)
            ch.queue_declare(work, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
            for cause in ("Timeout", "Bad", "Timeout"):
                ch.basic_publish("", work, b"m", pika.BasicProperties(headers={"error.cause": cause}))
                method, _, _ = ch.basic_get(work)
                ch.basic_reject(method.delivery_tag, requeue=False)
            ch.queue_declare(dlq, passive=True)
        finally:
            conn.close()
        _, after = scrape()
        name = "warren_dead_lettered_messages_total"
        self.assertEqual(value(after, name, reason="rejected") - value(before, name, reason="rejected"), 3)
        self.assertEqual({l["reason"] for l, _ in after[name]}, {"rejected", "expired", "maxlen", "delivery_limit"})
        _, per = scrape("/metrics/per-object")
        self.assertEqual(value(per, name, vhost="/", queue=work, reason="rejected"), 3)
        self.assertGreaterEqual(value(per, "warren_dead_letter_queue_oldest_message_age_seconds", vhost="/",
                                      queue=dlq), 0)
        self.assertIn(dlq, [l["queue"] for l, _ in per["warren_dead_letter_queue_growth_rate"]])
        self.assertEqual(value(per, "warren_dead_letter_queue_messages_by_reason", queue=dlq, reason="rejected"), 3)
        self.assertEqual(value(per, "warren_dead_letter_queue_messages_by_origin", queue=dlq, origin_queue=work), 3)
        by_error = "warren_dead_letter_queue_messages_by_error"
        self.assertEqual(value(per, by_error, queue=dlq, header="error.cause", value="Timeout"), 2)
        self.assertEqual(value(per, by_error, queue=dlq, header="error.cause", value="Bad"), 1)
        # The work queue is no dead-letter queue: no health gauges for it.
        self.assertNotIn(work, [l["queue"] for l, _ in per["warren_dead_letter_queue_growth_rate"]])

    def test_queues_a_dead_letter_exchange_reaches_have_health_gauges_before_any_dead_letter(self):
        dlx, parked, named, work = unique("prom-dlx"), unique("prom-parked"), unique("prom-named"), unique("prom-w")
        conn = broker.connect()
        try:
            ch = conn.channel()
            ch.exchange_declare(dlx, "fanout")
            ch.queue_declare(parked)
            ch.queue_bind(parked, dlx)
            ch.queue_declare(named)
            ch.queue_declare(work, arguments={"x-dead-letter-exchange": dlx})
            ch.queue_declare(work + "-2", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": named})
            ch.basic_publish("", parked, b"waiting")
            ch.queue_declare(parked, passive=True)
        finally:
            conn.close()
        _, per = scrape("/metrics/per-object")
        gauged = [l["queue"] for l, _ in per["warren_dead_letter_queue_growth_rate"]]
        self.assertIn(parked, gauged)
        self.assertIn(named, gauged)
        self.assertNotIn(work, gauged)
        self.assertGreaterEqual(value(per, "warren_dead_letter_queue_oldest_message_age_seconds", queue=parked), 0)
        self.assertEqual(value(per, "warren_dead_letter_queue_messages_by_reason", queue=parked, reason="(none)"), 1)

    def test_fdatasync_and_confirm_wait_histograms(self):
        _, before = scrape()
        q = unique("prom-sync")
        conn = broker.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(q, durable=True)
            ch.confirm_delivery()  # a persistent message on a durable queue: confirmed once synced
            ch.basic_publish("", q, b"m", pika.BasicProperties(delivery_mode=2))
            ch.queue_delete(q)
        finally:
            conn.close()
        _, after = scrape()
        name = "warren_storage_fdatasync_seconds"
        les = [l["le"] for l, _ in after[name + "_bucket"]]
        self.assertEqual(les[-1], "+Inf")
        self.assertEqual(len(les), 13)
        self.assertGreater(value(after, name + "_count"), value(before, name + "_count"))
        self.assertEqual(value(after, name + "_bucket", le="+Inf"), value(after, name + "_count"))
        self.assertGreater(value(after, name + "_sum"), 0)
        waits = "warren_storage_confirm_wait_seconds"
        self.assertGreater(value(after, waits + "_count"), value(before, waits + "_count"))
        self.assertEqual(value(after, waits + "_bucket", le="+Inf"), value(after, waits + "_count"))

    def test_the_message_store_by_vhost(self):
        q = unique("prom-store")
        conn = broker.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(q, durable=True)
            ch.confirm_delivery()
            ch.basic_publish("", q, b"x" * 5000, pika.BasicProperties(delivery_mode=2))
            _, samples = scrape()
            self.assertGreaterEqual(value(samples, "warren_storage_segments", vhost="/"), 1)
            self.assertGreaterEqual(value(samples, "warren_storage_stored_bytes", vhost="/"), 5000)
            for counter in ("warren_storage_write_errors_total", "warren_storage_read_errors_total",
                            "warren_storage_bad_records_total", "warren_storage_segment_index_write_failures_total"):
                self.assertEqual(value(samples, counter, vhost="/"), 0, counter)
            for name in ("warren_storage_segment_indexes_written_total", "warren_storage_segment_index_writes_pending",
                         "warren_storage_segments_reused_total"):
                self.assertEqual([l["vhost"] for l, _ in samples[name]], ["/"], name)
            ch.queue_delete(q)
        finally:
            conn.close()

if __name__ == "__main__":
    unittest.main()
