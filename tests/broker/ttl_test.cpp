// Message TTL through the protocol, on the manual clock: x-message-ttl and per-message
// expiration (the lower wins), TTL 0, and Warren's on-time expiry (DECISIONS.md): a message
// expires at its deadline wherever it is in the queue, and expired messages are dead-lettered
// in deadline order.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

BasicProperties expiring(const char* ms) {
    BasicProperties p;
    p.expiration = ms;
    p.set_flag(property_flag::expiration);
    return p;
}

std::vector<std::string> bodies(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (auto& d : ds) out.push_back(d.body);
    return out;
}

std::vector<std::string> drain(TestClient& c, std::string_view queue) {
    std::vector<std::string> out;
    while (true) {
        c.get(1, queue, true);
        auto got = c.deliveries();
        if (got.empty()) break;
        out.push_back(got[0].body);
    }
    c.take<BasicGetEmpty>();
    return out;
}

// Queue "q" (with `args`) dead-letters to "dlq" through the default exchange.
void setup(TestClient& c, FieldTable args = {}) {
    c.open_channel(1);
    c.declare_queue(1, "dlq");
    args.set("x-dead-letter-exchange", std::string(""));
    args.set("x-dead-letter-routing-key", std::string("dlq"));
    c.declare_queue(1, "q", args);
}

std::size_t depth(TestBroker& b, std::string_view q) { return b.queue(q)->message_count(); }

}  // namespace

TEST_CASE("x-message-ttl expires a message exactly at its deadline", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-message-ttl", std::int32_t{1000}}}));
    c.publish(1, "", "q", "x");
    b.advance(999ms);
    CHECK(depth(b, "q") == 1);
    b.advance(1ms);
    CHECK(depth(b, "q") == 0);
    CHECK(depth(b, "dlq") == 1);
}

TEST_CASE("a per-message expiration expires the message at its deadline", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.publish(1, "", "q", "x", expiring("250"));
    b.advance(249ms);
    CHECK(depth(b, "q") == 1);
    b.advance(1ms);
    CHECK(depth(b, "q") == 0);
    CHECK(depth(b, "dlq") == 1);
}

TEST_CASE("the lower of x-message-ttl and the expiration wins", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-message-ttl", std::int32_t{1000}}}));
    c.publish(1, "", "q", "short message ttl", expiring("300"));
    c.publish(1, "", "q", "long message ttl", expiring("5000"));
    b.advance(300ms);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"short message ttl"});
    b.advance(700ms);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"long message ttl"});
    CHECK(depth(b, "q") == 0);
}

TEST_CASE("a message in the middle of a queue expires at its deadline", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.publish(1, "", "q", "head");
    c.publish(1, "", "q", "middle", expiring("1000"));
    c.publish(1, "", "q", "tail");
    b.advance(999ms);
    CHECK(depth(b, "q") == 3);
    b.advance(1ms);
    CHECK(depth(b, "q") == 2);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"middle"});
    CHECK(drain(c, "q") == std::vector<std::string>{"head", "tail"});
}

TEST_CASE("a message behind a longer-lived one still expires on time", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.publish(1, "", "q", "long", expiring("10000"));
    c.publish(1, "", "q", "short", expiring("100"));
    b.advance(100ms);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"short"});
    CHECK(depth(b, "q") == 1);
}

TEST_CASE("messages with mixed TTLs are dead-lettered in deadline order", "[ttl][dlx]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.publish(1, "", "q", "a3000", expiring("3000"));
    c.publish(1, "", "q", "b1000", expiring("1000"));
    c.publish(1, "", "q", "c2000", expiring("2000"));
    c.publish(1, "", "q", "d500", expiring("500"));
    c.publish(1, "", "q", "forever");
    SECTION("all at once") { b.advance(5000ms); }
    SECTION("step by step") {
        for (int i = 0; i < 50; ++i) b.advance(100ms);
    }
    CHECK(drain(c, "dlq") == std::vector<std::string>{"d500", "b1000", "c2000", "a3000"});
    CHECK(drain(c, "q") == std::vector<std::string>{"forever"});
}

TEST_CASE("expiry in a priority queue removes the message from its level", "[ttl][priority]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-priority", std::int32_t{5}}}));
    BasicProperties high = expiring("100");
    high.priority = 5;
    high.set_flag(property_flag::priority);
    BasicProperties low;
    low.priority = 1;
    low.set_flag(property_flag::priority);
    c.publish(1, "", "q", "low", low);
    c.publish(1, "", "q", "high-expiring", high);
    b.advance(100ms);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"high-expiring"});
    CHECK(drain(c, "q") == std::vector<std::string>{"low"});
}

TEST_CASE("TTL 0 delivers a message a consumer can take at once", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.consume(1, "q", "t", true);
    c.deliveries();
    c.publish(1, "", "q", "now", expiring("0"));
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"now"});
    CHECK(depth(b, "dlq") == 0);
}

TEST_CASE("TTL 0 expires a message no consumer can take at once", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    SECTION("no consumer") {
        setup(c);
        c.publish(1, "", "q", "now", expiring("0"));
    }
    SECTION("x-message-ttl 0 and no consumer") {
        setup(c, table({{"x-message-ttl", std::int32_t{0}}}));
        c.publish(1, "", "q", "now");
    }
    SECTION("the consumer has no credit") {
        setup(c);
        c.qos(1, 1);
        c.publish(1, "", "q", "first");
        c.consume(1, "q", "t");
        REQUIRE(c.deliveries().size() == 1);
        c.publish(1, "", "q", "now", expiring("0"));
        CHECK(c.deliveries().empty());
    }
    CHECK(depth(b, "q") == 0);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"now"});
}

TEST_CASE("a delivered message does not expire while unacked, but expires when requeued late", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-message-ttl", std::int32_t{1000}}}));
    c.publish(1, "", "q", "x");
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    b.advance(2000ms);
    CHECK(depth(b, "dlq") == 0);
    c.reject(1, got[0].delivery_tag(), true);
    CHECK(depth(b, "q") == 0);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"x"});
}

TEST_CASE("a message requeued before its deadline keeps its deadline", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-message-ttl", std::int32_t{1000}}}));
    c.publish(1, "", "q", "x");
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    b.advance(600ms);
    c.reject(1, got[0].delivery_tag(), true);
    CHECK(depth(b, "q") == 1);
    b.advance(399ms);
    CHECK(depth(b, "q") == 1);
    b.advance(1ms);
    CHECK(depth(b, "q") == 0);
    CHECK(depth(b, "dlq") == 1);
}

TEST_CASE("a delivered message keeps its expiration property", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.publish(1, "", "q", "x", expiring("60000"));
    c.get(1, "q", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].properties().expiration == "60000");
}

TEST_CASE("an expired message is not delivered to a consumer that arrives late", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-message-ttl", std::int32_t{100}}}));
    c.publish_n(1, "", "q", 3);
    b.advance(50ms);
    c.publish(1, "", "q", "fresh");
    b.advance(50ms);
    c.consume(1, "q", "t", true);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"fresh"});
    CHECK(depth(b, "dlq") == 3);
}

TEST_CASE("purging a queue cancels its pending expiries", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    setup(c);
    c.publish(1, "", "q", "a", expiring("100"));
    c.publish(1, "", "q", "b", expiring("100"));
    c.purge_queue(1, "q");
    c.publish(1, "", "q", "later", expiring("500"));
    b.advance(100ms);
    CHECK(depth(b, "dlq") == 0);
    CHECK(depth(b, "q") == 1);
    b.advance(400ms);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"later"});
}

// A TTL-0 message's deadline is its arrival: delivered at once, it has no time left, so if it
// comes back it expires (RabbitMQ drops expired messages at the head after a requeue).
TEST_CASE("a TTL-0 message that is requeued expires instead of being redelivered", "[ttl]") {
    TestBroker b;
    TestClient c(b);
    SECTION("x-message-ttl 0") {
        setup(c, table({{"x-message-ttl", std::int32_t{0}}}));
        c.consume(1, "q", "t");
        c.publish(1, "", "q", "now");
    }
    SECTION("expiration 0") {
        setup(c);
        c.consume(1, "q", "t");
        c.publish(1, "", "q", "now", expiring("0"));
    }
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.reject(1, got[0].delivery_tag(), true);
    CHECK(c.deliveries().empty());
    CHECK(depth(b, "q") == 0);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"now"});
}
