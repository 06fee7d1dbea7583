// The Prometheus text (prometheus.cpp): rabbitmq_prometheus's names, the message-size buckets
// counted per published body, and per-object samples only at /metrics/per-object.
#include "mgmt/prometheus.hpp"

#include <catch2/catch.hpp>

#include "broker/broker.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using warren::mgmt::prometheus_text;

TEST_CASE("metrics carry rabbitmq_prometheus's names and count bodies in RabbitMQ's size buckets",
          "[mgmt][prometheus]") {
    TestBroker b;
    warren::broker::BrokerView view(*b.broker);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", std::string(50, 'x'));
    c.publish(1, "", "q", std::string(5000, 'x'));
    b.settle();
    b.broker->sample_stats();
    auto text = prometheus_text(*b.broker, view, "/metrics");
    REQUIRE(text);
    for (const char* line :
         {"rabbitmq_global_messages_received_total{protocol=\"amqp091\"} 2\n",
          "rabbitmq_message_size_bytes_bucket{protocol=\"amqp091\",le=\"100.0\"} 1\n",
          "rabbitmq_message_size_bytes_bucket{protocol=\"amqp091\",le=\"1000.0\"} 1\n",
          "rabbitmq_message_size_bytes_bucket{protocol=\"amqp091\",le=\"10000.0\"} 2\n",
          "rabbitmq_message_size_bytes_bucket{protocol=\"amqp091\",le=\"+Inf\"} 2\n",
          "rabbitmq_message_size_bytes_sum{protocol=\"amqp091\"} 5050\n", "rabbitmq_queue_messages_ready 2\n",
          "rabbitmq_queues 1\n", "rabbitmq_connections 1\n", "rabbitmq_queues_declared_total 1\n",
          "rabbitmq_channels_opened_total 1\n", "# TYPE rabbitmq_message_size_bytes histogram\n"}) {
        INFO(line);
        CHECK(text->find(line) != std::string::npos);
    }
    CHECK(text->find("queue=\"q\"") == std::string::npos);
    auto per_object = prometheus_text(*b.broker, view, "/metrics/per-object");
    REQUIRE(per_object);
    CHECK(per_object->find("rabbitmq_queue_messages_ready{vhost=\"/\",queue=\"q\"} 2\n") != std::string::npos);
    CHECK(per_object->find("rabbitmq_endpoint=\"per-object\"") != std::string::npos);
    CHECK_FALSE(prometheus_text(*b.broker, view, "/api/overview"));
}

TEST_CASE("delayed messages are counted per queue and per delayed exchange under warren_ names",
          "[mgmt][prometheus][delayed]") {
    TestBroker b;
    warren::broker::BrokerView view(*b.broker);
    TestClient c(b);
    c.open_channel(1);
    c.declare_exchange(1, "later", "x-delayed-message", table({{"x-delayed-type", std::string("direct")}}));
    c.declare_exchange(1, "plain", "direct");
    c.declare_queue(1, "jobs", table({{"x-delayed-retry-min", std::int32_t{60000}}}));
    ByteBuffer headers = encode_table_body(table({{"x-delay", std::int32_t{60000}}}));
    BasicProperties p;
    p.headers = TableView::trusted(headers.span());
    p.set_flag(property_flag::headers);
    for (int i = 0; i < 3; ++i) c.publish(1, "later", "k", "m", p);
    c.publish(1, "", "jobs", "job");
    c.consume(1, "jobs", "w");
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);  // waits 60 s
    b.settle();
    auto text = prometheus_text(*b.broker, view, "/metrics");
    REQUIRE(text);
    CHECK(text->find("# TYPE warren_queue_messages_delayed gauge\n") != std::string::npos);
    CHECK(text->find("warren_queue_messages_delayed 1\n") != std::string::npos);
    CHECK(text->find("warren_exchange_messages_delayed 3\n") != std::string::npos);
    auto per_object = prometheus_text(*b.broker, view, "/metrics/per-object");
    REQUIRE(per_object);
    CHECK(per_object->find("warren_queue_messages_delayed{vhost=\"/\",queue=\"jobs\"} 1\n") != std::string::npos);
    CHECK(per_object->find("warren_exchange_messages_delayed{vhost=\"/\",exchange=\"later\"} 3\n") !=
          std::string::npos);
    // Only delayed exchanges have the count.
    CHECK(per_object->find("exchange=\"plain\"") == std::string::npos);
    // Released on time by the manual clock: the broker's lateness histogram counts them at 0.
    CHECK(text->find("warren_delayed_release_lateness_seconds_count 0\n") != std::string::npos);
    b.advance(std::chrono::milliseconds(60000));
    text = prometheus_text(*b.broker, view, "/metrics");
    CHECK(text->find("# TYPE warren_delayed_release_lateness_seconds histogram\n") != std::string::npos);
    CHECK(text->find("warren_delayed_release_lateness_seconds_bucket{le=\"0.001\"} 4\n") != std::string::npos);
    CHECK(text->find("warren_delayed_release_lateness_seconds_count 4\n") != std::string::npos);
    CHECK(text->find("warren_delayed_release_lateness_max_seconds 0\n") != std::string::npos);
}
