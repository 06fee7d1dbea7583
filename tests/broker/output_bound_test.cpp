// Every path that writes to a connection is bounded. Deliveries from queues stop at
// connection_output_high_water (prefetch_test.cpp); answers to the connection's own input
// (basic.return, get-ok, method replies) stop it being read at that mark; direct reply-to
// deliveries, caused by other connections, close it past connection_output_limit. The harness's
// hold_output() plays a client that does not read its socket.
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "support/log_capture.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t high_water = 64 * 1024;

Config small_output_config() {
    Config config;
    config.connection_output_high_water = high_water;
    config.connection_output_limit = 16 * 1024;
    return config;
}

}  // namespace

TEST_CASE("a client that publishes mandatory messages to nowhere and never reads is not read past the high-water mark",
          "[flow][output]") {
    TestBroker b(small_output_config());
    TestClient c(b);
    c.open_channel(1);
    c.frames();
    c.hold_output(true);
    const std::string body(1024, 'x');
    int sent = 0;
    while (c.connection().wants_read() && sent < 1000) {
        c.publish(1, "amq.direct", "nowhere", body, {}, true);
        ++sent;
    }
    CHECK_FALSE(c.connection().wants_read());
    CHECK(sent < 80);
    CHECK(c.connection().output_level() < high_water + 2048);

    // The client reads: every return is there, and the connection is read again.
    const int changes = c.read_state_changes();
    c.hold_output(false);
    auto got = c.deliveries();
    CHECK(static_cast<int>(got.size()) == sent);
    CHECK(c.connection().wants_read());
    CHECK(c.read_state_changes() > changes);
}

TEST_CASE("a client that sends basic.get and never reads is not read past the high-water mark", "[flow][output][get]") {
    TestBroker b(small_output_config());
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    const std::string body(1024, 'x');
    for (int i = 0; i < 200; ++i) c.publish(1, "", "q", body);
    c.frames();
    c.hold_output(true);
    int gets = 0;
    while (c.connection().wants_read() && gets < 200) {
        c.get(1, "q");
        ++gets;
    }
    CHECK_FALSE(c.connection().wants_read());
    CHECK(gets < 80);
    CHECK(b.queue("q")->message_count() == 200u - static_cast<unsigned>(gets));
    c.hold_output(false);
    CHECK(static_cast<int>(c.deliveries().size()) == gets);
    CHECK(c.connection().wants_read());
}

// A consumer's deliveries wait at the mark on their own; its acks (what frees it) must still be
// read, and a client that publishes from one thread and reads from another never waits on us.
TEST_CASE("deliveries above the high-water mark do not stop the consumer's acks being read", "[flow][output]") {
    TestBroker b(small_output_config());
    TestClient publisher(b);
    TestClient consumer(b);
    publisher.open_channel(1);
    publisher.declare_queue(1, "q");
    consumer.open_channel(1);
    consumer.consume(1, "q", "t");
    publisher.publish(1, "", "q", "first");
    auto first = consumer.deliveries();
    REQUIRE(first.size() == 1);
    consumer.hold_output(true);
    const std::string body(1024, 'x');
    for (int i = 0; i < 200; ++i) publisher.publish(1, "", "q", body);
    CHECK_FALSE(consumer.connection().is_writable());
    CHECK(consumer.connection().wants_read());
    consumer.ack(1, first[0].delivery_tag());
    CHECK(consumer.connection().channel(1)->unacked_count() < 100);
}

// RabbitMQ pauses its heartbeat monitor while it does not read a connection.
TEST_CASE("missed heartbeats are not held against a connection that is not read for its output",
          "[flow][output][heartbeat]") {
    TestBroker b(small_output_config());
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    c.open_channel(1);
    c.frames();
    c.hold_output(true);
    const std::string body(1024, 'x');
    for (int i = 0; i < 1000 && c.connection().wants_read(); ++i) c.publish(1, "amq.direct", "nowhere", body, {}, true);
    REQUIRE_FALSE(c.connection().wants_read());
    for (int i = 0; i < 60; ++i) b.advance(1s);
    CHECK_FALSE(c.transport_closed());
    c.hold_output(false);
    c.frames();
    CHECK(c.connection().wants_read());
    for (int i = 0; i < 30; ++i) b.advance(1s);
    CHECK(c.transport_closed());  // read again, and silent: the monitor is back
}

// Direct reply-to: replies come from other connections, so not reading cannot slow them. Past
// connection_output_limit of them unsent, the requester is disconnected at once (its output
// dropped), its unacked messages go back to their queues, and later replies are returned.
TEST_CASE("a direct reply-to requester that never reads is closed past connection_output_limit",
          "[flow][output][reply-to]") {
    TestBroker b(small_output_config());
    TestClient requester(b), server(b);
    requester.open_channel(1);
    requester.declare_queue(1, "rpc");
    requester.declare_queue(1, "jobs");
    requester.publish(1, "", "jobs", "job");
    requester.consume(1, "jobs", "jobs");
    requester.consume(1, "amq.rabbitmq.reply-to", "replies", true);
    BasicProperties props;
    props.reply_to = "amq.rabbitmq.reply-to";
    props.set_flag(property_flag::reply_to);
    requester.publish(1, "", "rpc", "request", props);
    REQUIRE(requester.deliveries().size() == 1);  // the job, held unacked
    server.open_channel(1);
    server.get(1, "rpc", true);
    auto request = server.deliveries();
    REQUIRE(request.size() == 1);
    const std::string reply_to(request[0].properties().reply_to);

    LogCapture log(warren::log::Level::Warning);
    requester.hold_output(true);
    const std::string body(1024, 'r');
    int replies = 0;
    while (!requester.transport_closed() && replies < 100) {
        server.publish(1, "", reply_to, body, {}, true);
        ++replies;
    }
    CHECK(requester.transport_aborted());
    CHECK(replies <= 20);
    CHECK(log.contains("connection_output_limit"));
    CHECK(b.queue("jobs")->message_count() == 1);
    CHECK(server.take<BasicReturn>().size() == 1);  // the one that found the limit reached
    server.publish(1, "", reply_to, "late", {}, true);
    CHECK(server.take<BasicReturn>().size() == 1);
}

// A requester that reads its replies is never closed, however many there are.
TEST_CASE("a direct reply-to requester that reads is not closed", "[flow][output][reply-to]") {
    TestBroker b(small_output_config());
    TestClient requester(b), server(b);
    requester.open_channel(1);
    requester.declare_queue(1, "rpc");
    requester.consume(1, "amq.rabbitmq.reply-to", "replies", true);
    BasicProperties props;
    props.reply_to = "amq.rabbitmq.reply-to";
    props.set_flag(property_flag::reply_to);
    requester.publish(1, "", "rpc", "request", props);
    server.open_channel(1);
    server.get(1, "rpc", true);
    const std::string reply_to(server.deliveries().at(0).properties().reply_to);
    const std::string body(1024, 'r');
    for (int i = 0; i < 100; ++i) {
        server.publish(1, "", reply_to, body);
        if (i % 10 == 9) CHECK(requester.deliveries().size() == 10);
    }
    CHECK_FALSE(requester.transport_closed());
}
