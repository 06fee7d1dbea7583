// Queue length limits through the protocol: x-max-length and x-max-length-bytes with the
// three x-overflow behaviours (drop-head, reject-publish with a confirm nack,
// reject-publish-dlx).
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

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

// "q" with `args`, dead-lettering to "dlq".
void setup(TestClient& c, FieldTable args) {
    c.open_channel(1);
    c.declare_queue(1, "dlq");
    args.set("x-dead-letter-exchange", std::string(""));
    args.set("x-dead-letter-routing-key", std::string("dlq"));
    c.declare_queue(1, "q", args);
    c.frames();
}

std::vector<std::string> confirms(TestClient& c) {
    std::vector<std::string> out;
    for (auto& f : c.frames()) {
        if (auto a = f.as<BasicAck>()) out.push_back("ack " + std::to_string(a->delivery_tag));
        if (auto n = f.as<BasicNack>()) out.push_back("nack " + std::to_string(n->delivery_tag));
    }
    return out;
}

}  // namespace

TEST_CASE("x-max-length drops the head and dead-letters it", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{2}}}));
    c.publish_n(1, "", "q", 5);
    CHECK(drain(c, "q") == std::vector<std::string>{"m4", "m5"});
    CHECK(drain(c, "dlq") == std::vector<std::string>{"m1", "m2", "m3"});
}

TEST_CASE("x-max-length 0 drops every message", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{0}}}));
    c.publish_n(1, "", "q", 2);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"m1", "m2"});
}

TEST_CASE("x-max-length-bytes counts body bytes and drops from the head", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length-bytes", std::int32_t{10}}}));
    c.publish(1, "", "q", "aaaaa");
    c.publish(1, "", "q", "bbbbb");
    CHECK(b.queue("q")->message_bytes() == 10);
    c.publish(1, "", "q", "cc");
    CHECK(b.queue("q")->message_bytes() == 7);
    c.publish(1, "", "q", std::string(10, 'd'));
    CHECK(drain(c, "q") == std::vector<std::string>{std::string(10, 'd')});
    CHECK(drain(c, "dlq") == std::vector<std::string>{"aaaaa", "bbbbb", "cc"});
}

TEST_CASE("a message larger than x-max-length-bytes on its own is dropped", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length-bytes", std::int32_t{3}}}));
    c.publish(1, "", "q", "four");
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(drain(c, "dlq") == std::vector<std::string>{"four"});
}

TEST_CASE("unacked messages do not count towards x-max-length", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{1}}}));
    c.publish(1, "", "q", "a");
    c.get(1, "q");
    REQUIRE(c.deliveries().size() == 1);
    c.publish(1, "", "q", "b");
    CHECK(b.queue("q")->message_count() == 1);
    CHECK(b.queue("dlq")->message_count() == 0);
}

TEST_CASE("both limits apply together", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{3}}, {"x-max-length-bytes", std::int32_t{4}}}));
    c.publish_n(1, "", "q", 3);  // "m1".."m3": 6 bytes, over the byte limit
    CHECK(drain(c, "q") == std::vector<std::string>{"m2", "m3"});
}

TEST_CASE("drop-head in a priority queue drops the oldest of the lowest priority", "[maxlen][priority]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{2}}, {"x-max-priority", std::int32_t{5}}}));
    auto prio = [](std::uint8_t p) {
        BasicProperties props;
        props.priority = p;
        props.set_flag(property_flag::priority);
        return props;
    };
    c.publish(1, "", "q", "high", prio(5));
    c.publish(1, "", "q", "low1", prio(1));
    c.publish(1, "", "q", "low2", prio(1));
    CHECK(drain(c, "dlq") == std::vector<std::string>{"low1"});
    CHECK(drain(c, "q") == std::vector<std::string>{"high", "low2"});
}

TEST_CASE("reject-publish refuses new messages and nacks them in confirm mode", "[maxlen][confirm]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{2}}, {"x-overflow", "reject-publish"}}));
    c.confirm_select(1);
    c.frames();
    c.publish_n(1, "", "q", 3);
    CHECK(confirms(c) == std::vector<std::string>{"ack 1", "ack 2", "nack 3"});
    CHECK(drain(c, "q") == std::vector<std::string>{"m1", "m2"});
    CHECK(b.queue("dlq")->message_count() == 0);  // refused, not dead-lettered
    c.publish(1, "", "q", "room again");
    CHECK(confirms(c) == std::vector<std::string>{"ack 4"});
}

TEST_CASE("reject-publish without confirms drops the new message silently", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{1}}, {"x-overflow", "reject-publish"}}));
    c.publish_n(1, "", "q", 2);
    CHECK(drain(c, "q") == std::vector<std::string>{"m1"});
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("reject-publish with x-max-length-bytes", "[maxlen][confirm]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length-bytes", std::int32_t{5}}, {"x-overflow", "reject-publish"}}));
    c.confirm_select(1);
    c.frames();
    c.publish(1, "", "q", "abc");
    c.publish(1, "", "q", "def");
    c.publish(1, "", "q", "gh");
    CHECK(confirms(c) == std::vector<std::string>{"ack 1", "nack 2", "ack 3"});
    CHECK(drain(c, "q") == std::vector<std::string>{"abc", "gh"});
}

TEST_CASE("reject-publish-dlx refuses and dead-letters, with a nack", "[maxlen][confirm][dlx]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-max-length", std::int32_t{1}}, {"x-overflow", "reject-publish-dlx"}}));
    c.confirm_select(1);
    c.frames();
    c.publish_n(1, "", "q", 2);
    CHECK(confirms(c) == std::vector<std::string>{"ack 1", "nack 2"});
    CHECK(drain(c, "q") == std::vector<std::string>{"m1"});
    CHECK(drain(c, "dlq") == std::vector<std::string>{"m2"});
}

TEST_CASE("a message refused by one queue still reaches the others", "[maxlen]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "full", table({{"x-max-length", std::int32_t{0}}, {"x-overflow", "reject-publish"}}));
    c.declare_queue(1, "open");
    c.bind_queue(1, "full", "amq.fanout", "");
    c.bind_queue(1, "open", "amq.fanout", "");
    c.publish(1, "amq.fanout", "", "x", {}, true);
    CHECK(b.queue("open")->message_count() == 1);
    CHECK(c.take<BasicReturn>().empty());
}
