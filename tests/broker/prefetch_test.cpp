// Prefetch through the connection core: consumers receive at most prefetch_count unacked
// deliveries; an ack frees credit; a per-consumer qos applies to later consumers, a global one
// to the channel at once.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

TEST_CASE("prefetch 2 holds the third message until an ack", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 2);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.consume(1, "q");
    auto first = c.deliveries();
    REQUIRE(first.size() == 2);
    CHECK(first[0].body == "m1");
    CHECK(first[1].body == "m2");
    c.ack(1, first[0].method.as<BasicDeliver>()->delivery_tag);
    auto second = c.deliveries();
    REQUIRE(second.size() == 1);
    CHECK(second[0].body == "m3");
}

// RabbitMQ: basic.qos global=false limits the consumers created after it; an existing
// consumer keeps the limit it started with.
TEST_CASE("a per-consumer qos applies to consumers created afterwards only", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 5);
    c.consume(1, "q", "first");
    CHECK(c.deliveries().size() == 1);
    c.qos(1, 3);
    CHECK(c.deliveries().empty());
    c.consume(1, "q", "second");
    CHECK(c.deliveries().size() == 3);
}

// A channel-wide qos (global=true) applies at once to the consumers the channel has (Celery
// changes its prefetch this way while consuming).
TEST_CASE("a new global qos applies to existing consumers", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 1, true);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 5);
    c.consume(1, "q");
    CHECK(c.deliveries().size() == 1);
    c.qos(1, 3, true);
    CHECK(c.deliveries().size() == 2);
    c.qos(1, 0, true);
    CHECK(c.deliveries().size() == 2);
}

TEST_CASE("global prefetch limits the channel across consumers", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 3, true);
    c.declare_queue(1, "a");
    c.declare_queue(1, "b");
    c.publish_n(1, "", "a", 5);
    c.publish_n(1, "", "b", 5);
    c.consume(1, "a");
    c.consume(1, "b");
    CHECK(c.deliveries().size() == 3);
    c.ack(1, 0, true);
    CHECK(c.deliveries().size() == 3);
}

TEST_CASE("per-consumer prefetch applies to each consumer on the channel", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 2);
    c.declare_queue(1, "a");
    c.declare_queue(1, "b");
    c.publish_n(1, "", "a", 5);
    c.publish_n(1, "", "b", 5);
    c.consume(1, "a", "ta");
    c.consume(1, "b", "tb");
    auto got = c.deliveries();
    int from_a = 0, from_b = 0;
    for (auto& d : got) (d.consumer_tag() == "ta" ? from_a : from_b)++;
    CHECK(from_a == 2);
    CHECK(from_b == 2);
}

TEST_CASE("the channel-wide and per-consumer limits apply together", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 1);        // per consumer
    c.qos(1, 3, true);  // channel-wide
    for (auto q : {"a", "b", "c", "d"}) {
        c.declare_queue(1, q);
        c.publish_n(1, "", q, 2);
        c.consume(1, q, std::string("t") + q);
    }
    CHECK(c.deliveries().size() == 3);
    c.ack(1, 1);
    CHECK(c.deliveries().size() == 1);
}

TEST_CASE("prefetch counts basic.get deliveries against the channel-wide limit only", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 2, true);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 4);
    c.get(1, "q");
    CHECK(c.deliveries().size() == 1);
    c.consume(1, "q", "t");
    CHECK(c.deliveries().size() == 1);
}

// ---- flow control: the connection's output high-water mark ----------------------------------

namespace {
Config small_output_config() {
    Config config;
    config.connection_output_high_water = 8192;
    return config;
}
}  // namespace

TEST_CASE("deliveries stop while the connection's output is above its high-water mark", "[prefetch][flow]") {
    TestBroker b(small_output_config());
    TestClient publisher(b);
    TestClient consumer(b);
    publisher.open_channel(1);
    publisher.declare_queue(1, "q");
    consumer.open_channel(1);
    consumer.consume(1, "q", "t", true);  // no-ack: only the output bound applies
    consumer.frames();
    consumer.hold_output(true);  // a slow socket: nothing is written

    const std::string body(1000, 'x');
    for (int i = 0; i < 50; ++i) publisher.publish(1, "", "q", body);
    Queue* q = b.queue("q");
    REQUIRE(q);
    CHECK(q->message_count() > 0);
    CHECK_FALSE(consumer.connection().is_writable());
    // At most one message over the mark: each delivery checks the mark first.
    CHECK(consumer.connection().output_level() < 8192 + 1100);
    const std::size_t waiting = q->message_count();
    b.advance(std::chrono::seconds(1));
    CHECK(q->message_count() == waiting);  // nothing moves while the output is not drained

    consumer.hold_output(false);
    auto got = consumer.deliveries();
    CHECK(got.size() == 50);
    CHECK(q->message_count() == 0);
}

TEST_CASE("a connection over its output mark does not hold up other consumers", "[prefetch][flow]") {
    TestBroker b(small_output_config());
    TestClient publisher(b);
    TestClient slow(b);
    TestClient fast(b);
    publisher.open_channel(1);
    publisher.declare_queue(1, "q");
    slow.open_channel(1);
    fast.open_channel(1);
    slow.consume(1, "q", "slow", true);
    fast.consume(1, "q", "fast", true);
    slow.hold_output(true);
    const std::string body(1000, 'x');
    for (int i = 0; i < 40; ++i) publisher.publish(1, "", "q", body);
    // Draining the fast consumer lets the queue go on: everything the slow one cannot take
    // goes to the fast one.
    CHECK(fast.deliveries().size() > 20);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK_FALSE(slow.connection().is_writable());
}

// Input batching (TurnPacer) does not pause after an ack that gave a starved consumer credit:
// the broker says so for the turn, once, and not for acks of a consumer that had credit left.
TEST_CASE("an ack that frees a starved consumer's credit is reported to the event loop", "[prefetch][pacer]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 2);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 1);
    c.consume(1, "q");
    auto first = c.deliveries();
    REQUIRE(first.size() == 1);
    b.broker->take_credit_freed();
    c.ack(1, first[0].method.as<BasicDeliver>()->delivery_tag);
    CHECK_FALSE(b.broker->take_credit_freed());  // one of two credits in use: not starved
    c.publish_n(1, "", "q", 3);
    auto full = c.deliveries();
    REQUIRE(full.size() == 2);
    b.broker->take_credit_freed();
    c.ack(1, full[0].method.as<BasicDeliver>()->delivery_tag);
    CHECK(b.broker->take_credit_freed());
    CHECK_FALSE(b.broker->take_credit_freed());
}
