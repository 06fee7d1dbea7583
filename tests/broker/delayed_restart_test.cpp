// Delayed messages and retries across restarts, on the in-memory file system: a durable delayed
// exchange's persistent messages come back with their deadlines (from the segments after a
// crash, from the checkpoint after a clean shutdown); what fell due while the broker was down
// goes out at once, in deadline order; a retrying message keeps its deadline and attempt count;
// a deleted exchange's messages are gone; held messages leave memory once written; a stored
// delayed publish is confirmed after its fdatasync.
#include <catch2/catch.hpp>

#include "broker/durability.hpp"
#include "broker/vhost_storage.hpp"
#include "support/delayed_test.hpp"

using namespace warren::testing;
using warren::store::FaultFileSystem;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t start = 1'700'000'000;

// A persistent (or transient) message to "later" by "k", held `ms`.
void publish_later(TestClient& c, std::string_view body, std::int32_t ms, bool persistent_message = true) {
    publish_delayed(c, "later", "k", body, ms, false, {}, persistent_message ? persistent() : BasicProperties{});
}

// A durable delayed exchange "later" bound to durable queue "q" by "k".
void setup(TestClient& c) {
    c.open_channel(1);
    declare_delayed(c, "later", "direct", true);
    declare_and_bind(c, "q", "later", "k", {}, true);
}

}  // namespace

TEST_CASE(
    "a durable delayed exchange's persistent messages survive a crash with their deadlines; transient ones "
    "do not",
    "[delayed][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        setup(c);
        publish_later(c, "ten", 10'000);
        publish_later(c, "twenty", 20'000);
        publish_later(c, "transient", 10'000, false);
        b.advance(2000ms);
        CHECK(exchange(b, "later").messages_delayed() == 3);
    }                                               // as kill -9: no checkpoint; what was written survives
    TestBroker b(storage_config(), fs, start + 5);  // back 5 s after the publish: 5 s of the first delay left
    TestClient c(b);
    c.open_channel(1);
    CHECK_FALSE(b.broker->default_vhost().storage()->recovery().checkpoint);
    REQUIRE(exchange(b, "later").delayed);
    CHECK(exchange(b, "later").type_name() == "x-delayed-message");
    CHECK(exchange(b, "later").messages_delayed() == 2);
    b.advance(4999ms);
    CHECK(b.queue("q")->message_count() == 0);
    b.advance(1ms);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"ten"});
    b.advance(10s);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"twenty"});
    CHECK(exchange(b, "later").messages_delayed() == 0);
}

TEST_CASE(
    "after a clean shutdown the checkpoint gives the deadlines; what fell due while down goes out at once, in "
    "deadline order",
    "[delayed][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        setup(c);
        publish_later(c, "c", 30'000);
        publish_later(c, "a", 10'000);
        publish_later(c, "later-still", 90'000);
        publish_later(c, "b", 20'000);
        c.close_connection();
        b.settle();
        b.broker->shut_down_storage();
    }
    TestBroker b(storage_config(), fs, start + 60);
    TestClient c(b);
    c.open_channel(1);
    CHECK(b.broker->default_vhost().storage()->recovery().checkpoint);
    b.settle();  // the first turn: everything due is released
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"a", "b", "c"});
    CHECK(exchange(b, "later").messages_delayed() == 1);
    b.advance(30s);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"later-still"});
}

TEST_CASE("a released message is stored again for the durable queues it reaches", "[delayed][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        setup(c);
        publish_later(c, "m", 1000);
        b.advance(1000ms);
        CHECK(b.queue("q")->message_count() == 1);
    }
    TestBroker b(storage_config(), fs, start + 10);
    TestClient c(b);
    c.open_channel(1);
    CHECK(exchange(b, "later").messages_delayed() == 0);  // settled by the exchange
    c.get(1, "q", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "m");
    CHECK(got[0].headers().find("x-delay")->as_integer() == -1000);
}

TEST_CASE("a deleted delayed exchange's messages do not come back", "[delayed][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        setup(c);
        publish_later(c, "m", 10'000);
        c.send(1, ExchangeDelete{0, "later", false, false});
        c.take<ExchangeDeleteOk>();
        declare_delayed(c, "later", "direct", true);  // same name, new exchange: a new stored id
        b.settle();
    }
    TestBroker b(storage_config(), fs, start + 60);
    CHECK(exchange(b, "later").messages_delayed() == 0);
    CHECK(b.broker->default_vhost().storage()->recovery().dropped == 1);
}

TEST_CASE("a retrying message keeps its deadline and attempt count across a crash", "[retry][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        c.open_channel(1);
        declare_queue_ok(c, "jobs",
                         table({{"x-delayed-retry-type", std::string("all")},
                                {"x-delayed-retry-min", std::int32_t{10'000}},
                                {"x-delayed-retry-max", std::int32_t{60'000}}}),
                         true);
        c.publish(1, "", "jobs", "pdf", persistent());
        c.get(1, "jobs");
        c.reject(1, c.deliveries().at(0).delivery_tag(), true);  // attempt 1: 10 s
        b.advance(10s);
        c.get(1, "jobs");
        c.reject(1, c.deliveries().at(0).delivery_tag(), true);  // attempt 2: 20 s
        b.advance(5s);
        CHECK(b.queue("jobs")->messages_delayed() == 1);
    }
    TestBroker b(storage_config(), fs, start + 25);  // 15 s of the 20 spent (5 before the crash, 10 down)
    TestClient c(b);
    c.open_channel(1);
    CHECK(b.queue("jobs")->messages_delayed() == 1);
    CHECK(b.queue("jobs")->message_count() == 0);
    b.advance(4999ms);
    CHECK(b.queue("jobs")->message_count() == 0);
    b.advance(1ms);
    c.get(1, "jobs", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "pdf");
    CHECK(got[0].headers().find("x-delivery-count")->as_integer() == 2);
}

TEST_CASE(
    "a retrying message whose deadline passed while the broker was down is ready at once, through a checkpoint "
    "too",
    "[retry][storage]") {
    for (bool clean : {false, true}) {
        INFO(clean);
        auto fs = std::make_shared<FaultFileSystem>();
        {
            TestBroker b(storage_config(), fs, start);
            TestClient c(b);
            c.open_channel(1);
            declare_queue_ok(c, "jobs", table({{"x-delayed-retry-min", std::int32_t{5000}}}), true);
            c.publish(1, "", "jobs", "pdf", persistent());
            c.get(1, "jobs");
            c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
            if (clean) {
                c.close_connection();
                b.settle();
                b.broker->shut_down_storage();
            }
        }
        TestBroker b(storage_config(), fs, start + 60);
        TestClient c(b);
        c.open_channel(1);
        CHECK(b.broker->default_vhost().storage()->recovery().checkpoint == clean);
        b.settle();
        CHECK(b.queue("jobs")->messages_delayed() == 0);
        c.get(1, "jobs", true);
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].headers().find("x-delivery-count")->as_integer() == 1);
    }
}

TEST_CASE("held messages leave memory once written and are read back when due", "[delayed][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    TestBroker b(storage_config(), fs, start);
    TestClient c(b);
    setup(c);
    for (int i = 0; i < 2000; ++i) publish_later(c, std::to_string(i), 5000 + (i * 7919) % 5000);
    b.settle();
    auto& x = *exchange(b, "later").delayed;
    CHECK(x.messages_delayed() == 2000);
    CHECK(x.messages_in_memory() == 0);
    b.advance(10s);
    CHECK(b.queue("q")->message_count() == 2000);
    CHECK(x.messages_delayed() == 0);
}

TEST_CASE("a stored delayed publish is confirmed after its fdatasync", "[delayed][storage][confirm]") {
    auto fs = std::make_shared<FaultFileSystem>();
    TestBroker b(storage_config(), fs, start);
    TestClient c(b);
    setup(c);
    c.confirm_select(1);
    c.take<ConfirmSelectOk>();
    b.block_on_syncs = false;
    fs->hold_syncs(true);
    publish_later(c, "m", 60'000);
    fs->wait_for_held_syncs(1);
    CHECK(c.take<BasicAck>().empty());
    fs->hold_syncs(false);
    b.block_on_syncs = true;
    b.settle();
    CHECK(c.take<BasicAck>().size() == 1);
}
