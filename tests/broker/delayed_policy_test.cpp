// The delayed keys as policy keys, on the manual clock: delayed-retry-* make existing and later
// queues retry with backoff (an operator policy capping them, clearing giving the arguments
// back), and LavinMQ's delayed-message makes existing and later exchanges hold messages by their
// x-delay, what they hold surviving the policy's removal and a crash.
#include <catch2/catch.hpp>

#include "support/delayed_test.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t start = 1'700'000'000;

PolicySpec spec(std::string name, std::string pattern, std::string definition, std::string apply_to = "all") {
    return {"/", std::move(name), std::move(pattern), std::move(apply_to), 0, std::move(definition)};
}

// `body` to `exchange` by "k", held `ms`.
void publish_held(TestClient& c, std::string_view exchange, std::string_view body, std::int32_t ms,
                  bool persistent_message = false) {
    publish_delayed(c, exchange, "k", body, ms, false, {}, persistent_message ? persistent() : BasicProperties{});
}

// `exchange` (direct, durable if asked) bound to queue `queue` by "k".
void exchange_to_queue(TestClient& c, std::string_view exchange, std::string_view queue, bool durable = false) {
    ExchangeDeclare d;
    d.exchange = exchange;
    d.type = "direct";
    d.durable = durable;
    c.send(1, d);
    REQUIRE(c.take<ExchangeDeclareOk>().size() == 1);
    declare_and_bind(c, queue, exchange, "k", {}, durable);
}

}  // namespace

TEST_CASE("delayed-retry policy keys make an existing queue and a later one retry with backoff", "[policy][retry]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "jobs");
    c.take<QueueDeclareOk>();
    REQUIRE_FALSE(b.broker->set_policy(
        spec("retry", "^jobs", R"({"delayed-retry-min":100,"delayed-retry-multiplier":2})", "queues")));
    CHECK(b.queue("jobs")->retry().enabled());
    CHECK(b.queue("jobs")->delivery_limit() == 20u);  // retries bring their default limit
    c.consume(1, "jobs", "w");
    c.publish(1, "", "jobs", "job");
    std::uint64_t tag = c.deliveries().at(0).delivery_tag();
    for (auto expected : {100ms, 200ms, 400ms}) {
        c.nack(1, tag, false, true);
        CHECK(b.queue("jobs")->messages_delayed() == 1);
        Delivery d;
        CHECK(wait_for_delivery(b, c, d) == expected);
        tag = d.delivery_tag();
    }
    c.declare_queue(1, "jobs.later");
    c.take<QueueDeclareOk>();
    CHECK(b.queue("jobs.later")->retry().min_ms == 100u);
    // Cleared: the queues' own arguments (none) again; a return comes straight back.
    REQUIRE_FALSE(b.broker->clear_policy("/", "retry"));
    CHECK_FALSE(b.queue("jobs")->retry().enabled());
    CHECK_FALSE(b.queue("jobs.later")->retry().enabled());
}

TEST_CASE("a return waits by the policy's keys, and without the policy comes back at once", "[policy][retry]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.take<QueueDeclareOk>();
    c.consume(1, "q", "w");
    c.publish(1, "", "q", "job");
    std::uint64_t tag = c.deliveries().at(0).delivery_tag();
    REQUIRE_FALSE(
        b.broker->set_policy(spec("retry", "^q$", R"({"delayed-retry-type":"failed","delayed-retry-min":250})")));
    c.nack(1, tag, false, true);  // not a failure for type failed: straight back
    auto back = c.deliveries();
    REQUIRE(back.size() == 1);
    c.reject(1, back[0].delivery_tag(), true);  // a failure: waits min (max defaults to min, as RabbitMQ 4.3)
    CHECK(b.queue("q")->messages_delayed() == 1);
    Delivery d;
    CHECK(wait_for_delivery(b, c, d) == 250ms);
}

TEST_CASE(
    "an operator policy's retry keys win over the policy's as RabbitMQ 4.3 merges them; arguments take the "
    "lower delays",
    "[policy][retry][precedence]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    FieldTable args;
    args.set("x-delayed-retry-min", std::int32_t{500});
    args.set("x-delayed-retry-jitter", std::int32_t{10});
    c.declare_queue(1, "q", args);
    c.take<QueueDeclareOk>();
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q$",
                                            R"({"delayed-retry-type":"all","delayed-retry-min":100,)"
                                            R"("delayed-retry-max":9000,"delayed-retry-multiplier":3})")));
    REQUIRE_FALSE(b.broker->set_operator_policy(
        spec("o", ".*", R"({"delayed-retry-type":"returned","delayed-retry-min":200,"delayed-retry-max":4000})")));
    const RetrySettings& r = b.queue("q")->retry();
    CHECK(r.type == RetryType::Returned);  // the operator policy's type
    CHECK(r.min_ms == 200);                // the larger of the policies' (200), then the lower with the argument
    CHECK(r.max_ms == 4000);
    CHECK(r.multiplier == 3u);
    CHECK(r.jitter_percent == 10);  // the argument's: the policy sets none
    REQUIRE_FALSE(b.broker->clear_operator_policy("/", "o"));
    CHECK(b.queue("q")->retry().type == RetryType::All);
    CHECK(b.queue("q")->retry().min_ms == 100);
}

TEST_CASE("LavinMQ's delayed-message policy key makes existing and later exchanges delay by x-delay",
          "[policy][delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    exchange_to_queue(c, "events", "q");
    publish_held(c, "events", "before", 200);  // an ordinary exchange: routed at once
    CHECK(b.queue("q")->message_count() == 1);
    REQUIRE_FALSE(b.broker->set_policy(spec("delay", "^events", R"({"delayed-message":true})", "exchanges")));
    publish_held(c, "events", "held", 200);
    CHECK(exchange(b, "events").messages_delayed() == 1);
    CHECK(b.queue("q")->message_count() == 1);
    b.advance(199ms);
    CHECK(b.queue("q")->message_count() == 1);
    b.advance(1ms);
    CHECK(b.queue("q")->message_count() == 2);
    CHECK(exchange(b, "events").type_name() == "direct");
    // A redeclare as it was declared (no x-delayed-exchange) is still equivalent.
    c.declare_exchange(1, "events", "direct");
    CHECK(c.take<ExchangeDeclareOk>().size() == 1);
    // An exchange declared later gets it too; the built-in ones do not.
    exchange_to_queue(c, "events.later", "q2");
    publish_held(c, "events.later", "m", 50);
    CHECK(exchange(b, "events.later").messages_delayed() == 1);
    REQUIRE_FALSE(b.broker->set_policy(spec("all", "^amq\\.direct$", R"({"delayed-message":true})", "exchanges")));
    CHECK_FALSE(exchange(b, "amq.direct").delaying);
    // Cleared: new messages go at once; what is held still goes when due.
    publish_held(c, "events", "held-2", 300);
    REQUIRE_FALSE(b.broker->clear_policy("/", "delay"));
    publish_held(c, "events", "after", 300);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"before", "held", "after"});
    b.advance(300ms);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"held-2"});
    CHECK(drain_bodies(c, 1, "q2") == std::vector<std::string>{"m"});
}

TEST_CASE("what a policy-delayed durable exchange holds survives a crash, the policy gone or not",
          "[policy][delayed][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        c.open_channel(1);
        exchange_to_queue(c, "events", "q", true);
        REQUIRE_FALSE(b.broker->set_policy(spec("delay", "^events$", R"({"delayed-message":true})")));
        publish_held(c, "events", "ten", 10'000, true);
        publish_held(c, "events", "twenty", 20'000, true);
        REQUIRE_FALSE(b.broker->clear_policy("/", "delay"));  // held messages stay held
        publish_held(c, "events", "now", 10'000, true);
        b.settle();
        CHECK(exchange(b, "events").messages_delayed() == 2);
    }  // as kill -9
    TestBroker b(storage_config(), crashed(*fs), start + 5);
    TestClient c(b);
    c.open_channel(1);
    REQUIRE(exchange(b, "events").delayed);
    CHECK_FALSE(exchange(b, "events").delaying);
    CHECK(exchange(b, "events").messages_delayed() == 2);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"now"});
    b.advance(5000ms);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"ten"});
    b.advance(10s);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"twenty"});
}
