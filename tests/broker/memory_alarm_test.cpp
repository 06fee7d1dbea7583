// The memory alarm through the connection: over memory_high_watermark_bytes a publishing
// connection gets connection.blocked and is no longer read; consumers keep receiving; below it
// again the connection gets connection.unblocked. The test broker's memory probe returns
// TestBroker::memory_used.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

Config alarm_config() {
    Config config;
    config.memory_high_watermark_bytes = 1000;
    return config;
}

void raise_alarm(TestBroker& b) {
    b.memory_used = 2000;
    b.broker->check_memory();
    b.settle();
}

void clear_alarm(TestBroker& b) {
    b.memory_used = 10;
    b.broker->check_memory();
    b.settle();
}

}  // namespace

TEST_CASE("the alarm follows the watermark", "[memory]") {
    TestBroker b(alarm_config());
    CHECK(b.broker->memory_limit() == 1000);
    b.memory_used = 1000;
    b.broker->check_memory();
    CHECK_FALSE(b.broker->memory_alarm());
    b.memory_used = 1001;
    b.broker->check_memory();
    CHECK(b.broker->memory_alarm());
    b.memory_used = 999;
    b.broker->check_memory();
    CHECK_FALSE(b.broker->memory_alarm());
}

TEST_CASE("a connection that publishes during the alarm gets connection.blocked and is not read", "[memory]") {
    TestBroker b(alarm_config());
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    raise_alarm(b);
    CHECK(c.take<ConnectionBlocked>().empty());  // not yet: it has not published
    CHECK(c.connection().wants_read());
    c.publish(1, "", "q", "x");
    auto blocked = c.take<ConnectionBlocked>();
    REQUIRE(blocked.size() == 1);
    CHECK(blocked[0].reason.view() == "low on memory");
    CHECK_FALSE(c.connection().wants_read());
    CHECK(c.connection().is_blocked());
    CHECK(b.queue("q")->message_count() == 1);  // the publish that blocked it went through

    clear_alarm(b);
    CHECK(c.take<ConnectionUnblocked>().size() == 1);
    CHECK(c.connection().wants_read());
    CHECK_FALSE(c.connection().is_blocked());
}

TEST_CASE("a connection that has not published is not blocked and its consumers keep receiving", "[memory]") {
    TestBroker b(alarm_config());
    TestClient publisher(b);
    publisher.open_channel(1);
    publisher.declare_queue(1, "q");
    publisher.publish_n(1, "", "q", 3);
    raise_alarm(b);

    TestClient consumer(b);
    consumer.open_channel(1);
    consumer.declare_queue(1, "other");
    CHECK(consumer.take<QueueDeclareOk>().size() == 1);
    consumer.consume(1, "q", "t");
    CHECK(consumer.deliveries().size() == 3);
    consumer.ack(1, 0, true);
    CHECK(consumer.take<ConnectionBlocked>().empty());
    CHECK(consumer.connection().wants_read());
}

TEST_CASE("a client without the connection.blocked capability is blocked without a notification", "[memory]") {
    TestBroker b(alarm_config());
    TestClient c(b, true, true, {"publisher_confirms"});
    c.open_channel(1);
    raise_alarm(b);
    c.publish(1, "amq.direct", "k", "x");
    CHECK(c.take<ConnectionBlocked>().empty());
    CHECK_FALSE(c.connection().wants_read());
    clear_alarm(b);
    CHECK(c.take<ConnectionUnblocked>().empty());
    CHECK(c.connection().wants_read());
}

TEST_CASE("connection.blocked is sent once however many publishes follow", "[memory]") {
    TestBroker b(alarm_config());
    TestClient c(b);
    c.open_channel(1);
    raise_alarm(b);
    c.publish_n(1, "amq.direct", "k", 3);
    raise_alarm(b);
    CHECK(c.take<ConnectionBlocked>().size() == 1);
}

TEST_CASE("a blocked connection with heartbeats is not dropped for silence", "[memory][heartbeat]") {
    TestBroker b(alarm_config());
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    c.open_channel(1);
    raise_alarm(b);
    c.publish(1, "amq.direct", "k", "x");
    REQUIRE_FALSE(c.connection().wants_read());
    // The broker does not read a blocked connection, so the client's heartbeats are not seen.
    for (int i = 0; i < 12; ++i) b.advance(5s);
    CHECK_FALSE(c.transport_closed());
    clear_alarm(b);
    c.send_raw(raw_frame(8, 0, ""));
    b.advance(5s);
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("a blocked connection that the broker closes is read again for its close-ok", "[memory][connection]") {
    TestBroker b(alarm_config());
    TestClient c(b);
    c.open_channel(1);
    raise_alarm(b);
    c.publish(1, "amq.direct", "k", "x");
    REQUIRE_FALSE(c.connection().wants_read());
    c.connection().close_with_error(amqp_error(ReplyCode::ConnectionForced, "shutdown"));
    CHECK(c.connection().wants_read());
    REQUIRE(c.connection_close());
    c.send(0, ConnectionCloseOk{});
    CHECK(c.transport_closed());
}

TEST_CASE("with the broker's own measure, a publish past the watermark blocks at once and draining the queue unblocks",
          "[memory]") {
    Config config;
    config.memory_high_watermark_bytes = 1 << 20;
    TestBroker b(config);
    b.broker->memory_probe = [&b] { return b.broker->memory_in_use(); };
    TestClient consumer(b);
    consumer.open_channel(1);
    consumer.declare_queue(1, "q");
    TestClient publisher(b);
    publisher.open_channel(1);
    const std::string body(600'000, 'x');
    publisher.publish(1, "", "q", body);
    CHECK(publisher.take<ConnectionBlocked>().empty());
    // Two such messages pass the 1 MiB watermark: the alarm does not wait for the next sample.
    publisher.publish(1, "", "q", body);
    CHECK(b.broker->memory_alarm());
    CHECK(publisher.take<ConnectionBlocked>().size() == 1);
    CHECK_FALSE(publisher.connection().wants_read());

    consumer.consume(1, "q", "t", true);
    CHECK(consumer.deliveries().size() == 2);
    b.broker->check_memory();  // the next sample
    CHECK_FALSE(b.broker->memory_alarm());
    CHECK(publisher.take<ConnectionUnblocked>().size() == 1);
    CHECK(publisher.connection().wants_read());
}
