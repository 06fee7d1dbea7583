// Retry with backoff through the protocol, on the manual clock: a returned message waits out its
// backoff (linear, constant, exponential) before it is delivered again with x-delivery-count;
// the retry type picks which returns wait; past the delivery limit (20 by default with retries)
// it is dead-lettered with reason delivery_limit; a TTL ends a wait early; the waiting messages
// are counted apart, purged with the queue, and refused as RabbitMQ refuses bad arguments.
#include <catch2/catch.hpp>

#include "support/delayed_test.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

// "q" with `args`, dead-lettering to "dlq"; a consumer on channel 1 (manual ack).
void setup(TestClient& c, FieldTable args) {
    c.open_channel(1);
    declare_dead_lettering(c, "q", "dlq", std::move(args));
    c.consume(1, "q", "worker");
}

FieldTable retry_args(std::int32_t min, std::optional<std::int32_t> max = {}, std::optional<std::string> type = {}) {
    FieldTable t;
    if (type) t.set("x-delayed-retry-type", *type);
    t.set("x-delayed-retry-min", min);
    if (max) t.set("x-delayed-retry-max", *max);
    return t;
}

}  // namespace

TEST_CASE("a nacked message waits out a linear backoff, then comes back with x-delivery-count", "[retry]") {
    TestBroker b;
    TestClient c(b);
    setup(c, retry_args(100, 250, "all"));
    c.publish(1, "", "q", "job");
    auto first = c.deliveries();
    REQUIRE(first.size() == 1);
    CHECK_FALSE(delivery_count(first[0]));
    std::uint64_t tag = first[0].delivery_tag();
    for (auto [n, expected] :
         std::vector<std::pair<int, std::chrono::milliseconds>>{{1, 100ms}, {2, 200ms}, {3, 250ms}}) {
        c.nack(1, tag, false, true);
        CHECK(b.queue("q")->messages_delayed() == 1);
        CHECK(b.queue("q")->message_count() == 0);
        Delivery d;
        CHECK(wait_for_delivery(b, c, d) == expected);
        CHECK(delivery_count(d) == n);
        CHECK(d.redelivered());
        CHECK(d.body == "job");
        CHECK(b.queue("q")->messages_delayed() == 0);
        tag = d.delivery_tag();
    }
    c.ack(1, tag);
    CHECK(b.queue("q")->message_count() == 0);
}

TEST_CASE("x-delayed-retry-multiplier: 1 waits the minimum each time, 2 doubles it", "[retry]") {
    for (auto [multiplier, expected] :
         std::vector<std::pair<std::int32_t, std::vector<int>>>{{1, {50, 50, 50}}, {2, {50, 100, 200, 400}}}) {
        TestBroker b;
        TestClient c(b);
        FieldTable args = retry_args(50);
        args.set("x-delayed-retry-multiplier", multiplier);
        setup(c, args);
        c.publish(1, "", "q", "job");
        std::uint64_t tag = c.deliveries().at(0).delivery_tag();
        for (int ms : expected) {
            c.reject(1, tag, true);
            Delivery d;
            CHECK(wait_for_delivery(b, c, d) == std::chrono::milliseconds(ms));
            tag = d.delivery_tag();
        }
    }
}

TEST_CASE("the retry type picks the returns that wait: failed (reject, closed channel) or returned (nack)", "[retry]") {
    SECTION("failed") {
        TestBroker b;
        TestClient c(b);
        setup(c, retry_args(1000, {}, "failed"));
        c.publish(1, "", "q", "job");
        std::uint64_t tag = c.deliveries().at(0).delivery_tag();
        c.nack(1, tag, false, true);  // a plain return: straight back
        auto again = c.deliveries();
        REQUIRE(again.size() == 1);
        c.reject(1, again[0].delivery_tag(), true);  // a failure: waits
        CHECK(c.deliveries().empty());
        CHECK(b.queue("q")->messages_delayed() == 1);
        b.advance(1000ms);
        auto after = c.deliveries();
        REQUIRE(after.size() == 1);
        CHECK(delivery_count(after[0]) == 2);
        // A channel that closes with it unacknowledged is a failure too.
        c.open_channel(2);
        c.cancel(1, "worker");
        c.take<BasicCancelOk>();
        c.close_channel(1);
        CHECK(b.queue("q")->messages_delayed() == 1);
        c.consume(2, "q", "other");
        CHECK(c.deliveries().empty());
        b.advance(1000ms);
        CHECK(c.deliveries().size() == 1);
    }
    SECTION("returned") {
        TestBroker b;
        TestClient c(b);
        setup(c, retry_args(1000, {}, "returned"));
        c.publish(1, "", "q", "job");
        std::uint64_t tag = c.deliveries().at(0).delivery_tag();
        c.reject(1, tag, true);  // a failure: straight back
        auto again = c.deliveries();
        REQUIRE(again.size() == 1);
        c.nack(1, again[0].delivery_tag(), false, true);  // a plain return: waits
        CHECK(c.deliveries().empty());
        b.advance(999ms);
        CHECK(c.deliveries().empty());
        b.advance(1ms);
        CHECK(c.deliveries().size() == 1);
    }
}

TEST_CASE("past the delivery limit a retried message is dead-lettered with reason delivery_limit", "[retry][dlx]") {
    TestBroker b;
    TestClient c(b);
    FieldTable args = retry_args(10, 10, "all");
    args.set("x-delivery-limit", std::int32_t{2});
    setup(c, args);
    c.publish(1, "", "q", "job");
    std::uint64_t tag = c.deliveries().at(0).delivery_tag();
    for (int i = 0; i < 2; ++i) {
        c.nack(1, tag, false, true);
        Delivery d;
        wait_for_delivery(b, c, d);
        tag = d.delivery_tag();
    }
    c.nack(1, tag, false, true);  // the third return is past the limit: no wait
    CHECK(b.queue("q")->messages_delayed() == 0);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    c.get(1, "dlq", true);
    auto dead = c.deliveries();
    REQUIRE(dead.size() == 1);
    FieldTable h = dead[0].headers();
    CHECK(*h.find("x-last-death-reason") == FieldValue(std::string("delivery_limit")));
}

TEST_CASE("with retries on and no x-delivery-limit, the limit is 20", "[retry]") {
    TestBroker b;
    TestClient c(b);
    setup(c, retry_args(1, 1));
    CHECK(b.queue("q")->delivery_limit() == 20u);
    c.publish(1, "", "q", "job");
    std::uint64_t tag = c.deliveries().at(0).delivery_tag();
    for (int i = 0; i < 20; ++i) {
        c.reject(1, tag, true);
        b.advance(1ms);
        auto d = c.deliveries();
        REQUIRE(d.size() == 1);
        tag = d[0].delivery_tag();
    }
    c.reject(1, tag, true);
    CHECK(b.queue("dlq")->message_count() == 1);
}

TEST_CASE("a queue declared with only x-delayed-retry-min retries every return (LavinMQ's reading)", "[retry]") {
    TestBroker b;
    TestClient c(b);
    setup(c, retry_args(300));
    CHECK(b.queue("q")->retry().type == warren::broker::RetryType::All);
    c.publish(1, "", "q", "job");
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
    Delivery d;
    CHECK(wait_for_delivery(b, c, d) == 300ms);
    c.reject(1, d.delivery_tag(), true);
    CHECK(wait_for_delivery(b, c, d) == 600ms);  // linear and uncapped without a type
}

TEST_CASE("a TTL that ends during the backoff dead-letters the message as expired, at its TTL deadline",
          "[retry][ttl]") {
    TestBroker b;
    TestClient c(b);
    FieldTable args = retry_args(5000, 5000, "all");
    args.set("x-message-ttl", std::int32_t{3000});
    setup(c, args);
    c.publish(1, "", "q", "job");
    b.advance(1000ms);
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
    b.advance(1999ms);
    CHECK(b.queue("dlq")->message_count() == 0);
    b.advance(1ms);
    CHECK(b.queue("q")->messages_delayed() == 0);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    c.get(1, "dlq", true);
    FieldTable h = c.deliveries().at(0).headers();
    CHECK(*h.find("x-last-death-reason") == FieldValue(std::string("expired")));
}

TEST_CASE("a retried message with a TTL left keeps it when it comes back", "[retry][ttl]") {
    TestBroker b;
    TestClient c(b);
    FieldTable args = retry_args(1000, 1000, "all");
    args.set("x-message-ttl", std::int32_t{3000});
    setup(c, args);
    c.cancel(1, "worker");
    c.take<BasicCancelOk>();
    c.publish(1, "", "q", "job");
    c.get(1, "q");
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
    b.advance(1000ms);
    CHECK(b.queue("q")->message_count() == 1);
    b.advance(1999ms);
    CHECK(b.queue("q")->message_count() == 1);
    b.advance(1ms);  // the original TTL deadline
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(b.queue("dlq")->message_count() == 1);
}

TEST_CASE("a retried message goes back to its place, ahead of messages published after it", "[retry]") {
    TestBroker b;
    TestClient c(b);
    setup(c, retry_args(100, 100, "all"));
    c.cancel(1, "worker");
    c.take<BasicCancelOk>();
    c.publish(1, "", "q", "first");
    c.get(1, "q");
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
    c.publish(1, "", "q", "second");
    b.advance(100ms);
    c.get(1, "q", true);
    CHECK(c.deliveries().at(0).body == "first");
}

TEST_CASE("waiting messages count towards x-max-length, are purged with the queue and keep it from being empty",
          "[retry]") {
    TestBroker b;
    TestClient c(b);
    FieldTable args = retry_args(1000, 1000, "all");
    args.set("x-max-length", std::int32_t{2});
    args.set("x-overflow", std::string("reject-publish"));
    setup(c, args);
    c.cancel(1, "worker");
    c.take<BasicCancelOk>();
    c.publish(1, "", "q", "a");
    c.get(1, "q");
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
    c.publish(1, "", "q", "b");
    c.open_channel(2);
    c.confirm_select(2);
    c.take<ConfirmSelectOk>();
    c.publish(2, "", "q", "c");  // a, waiting, and b fill the queue
    auto nacks = c.take<BasicNack>();
    CHECK(nacks.size() == 1);
    c.delete_queue(1, "q", false, true);
    auto closed = c.channel_close(1);
    REQUIRE(closed);
    CHECK(text_of(*closed) == "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty");
    c.close_ok(1);
    c.open_channel(3);
    c.purge_queue(3, "q");
    auto purged = c.take<QueuePurgeOk>();
    REQUIRE(purged.size() == 1);
    CHECK(purged[0].message_count == 2);
    CHECK(b.queue("q")->messages_delayed() == 0);
    b.advance(2000ms);
    CHECK(b.queue("q")->message_count() == 0);
}

TEST_CASE("bad retry arguments are refused with 406 naming the argument", "[retry]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-delayed-retry-min", std::int32_t{-1}}}));
    auto closed = c.channel_close(1);
    REQUIRE(closed);
    CHECK(closed->reply_code == 406);
    CHECK(text_of(*closed) ==
          "PRECONDITION_FAILED - invalid arg 'x-delayed-retry-min' for queue 'q' in vhost '/': {value_negative,-1}");
}
