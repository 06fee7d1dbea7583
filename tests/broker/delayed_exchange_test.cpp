// The delayed-message exchange through the protocol, on the manual clock: the plugin's
// x-delayed-message type with each underlying type and LavinMQ's x-delayed-exchange argument;
// a message is routed by the bindings of its release time, not before, with x-delay made
// negative; no or a negative delay routes at once; mandatory, confirms, deletion, redeclare
// and the errors for bad declarations and bad x-delay headers, as the plugin (or, where it says
// nothing, Warren) gives them.
#include <catch2/catch.hpp>

#include "support/delayed_test.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

TEST_CASE("a delayed message is routed when its delay ends, not before, by each underlying type", "[delayed]") {
    struct Case {
        const char* type;
        const char* binding_key;
        const char* routing_key;
        FieldTable binding_args;
        FieldTable headers;
    };
    for (const Case& k : std::vector<Case>{
             {"direct", "jobs", "jobs", {}, {}},
             {"topic", "pdf.*", "pdf.render", {}, {}},
             {"fanout", "", "anything", {}, {}},
             {"headers", "", "", table({{"x-match", "all"}, {"kind", "pdf"}}), table({{"kind", "pdf"}})},
         }) {
        INFO(k.type);
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        declare_delayed(c, "later", k.type);
        declare_and_bind(c, "q", "later", k.binding_key, k.binding_args);
        c.consume(1, "q", "t", true);
        publish_delayed(c, "later", k.routing_key, "m", std::int32_t{1500}, false, k.headers);
        CHECK(delayed_in(b, "later") == 1);
        b.advance(1499ms);
        CHECK(c.deliveries().empty());
        b.advance(1ms);
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].body == "m");
        CHECK(got[0].exchange() == "later");
        CHECK(got[0].routing_key() == k.routing_key);
        // The plugin makes x-delay negative, so that no delayed exchange delays it again.
        FieldTable h = got[0].headers();
        REQUIRE(h.find("x-delay"));
        CHECK(h.find("x-delay")->as_integer() == -1500);
        CHECK(delayed_in(b, "later") == 0);
    }
}

TEST_CASE("mixed delays come out in deadline order, routed by the bindings of their release time", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    c.declare_queue(1, "q");
    c.consume(1, "q", "t", true);
    for (auto [body, delay] : std::vector<std::pair<const char*, int>>{{"c", 300}, {"a", 100}, {"d", 300}, {"b", 200}})
        publish_delayed(c, "later", "k", body, std::int32_t{delay});
    b.advance(50ms);
    c.bind_queue(1, "q", "later", "k");  // bound after the publish: what counts is the release
    c.take<QueueBindOk>();
    b.advance(250ms);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("no x-delay, zero or negative: routed at once, the header left as it is", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_and_bind(c, "q", "later", "k");
    c.consume(1, "q", "t", true);
    c.publish(1, "later", "k", "none");
    publish_delayed(c, "later", "k", "zero", std::int32_t{0});
    publish_delayed(c, "later", "k", "negative", std::int32_t{-500});
    auto got = c.deliveries();
    CHECK(bodies(got) == std::vector<std::string>{"none", "zero", "negative"});
    CHECK(got[2].headers().find("x-delay")->as_integer() == -500);
    CHECK(delayed_in(b, "later") == 0);
}

TEST_CASE("x-delay as the plugin reads it: a decimal string, a float truncated", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_and_bind(c, "q", "later", "k");
    c.consume(1, "q", "t", true);
    publish_delayed(c, "later", "k", "string", std::string("200"));
    publish_delayed(c, "later", "k", "double", 100.9);
    publish_delayed(c, "later", "k", "byte", std::uint8_t{50});
    b.advance(50ms);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"byte"});
    b.advance(50ms);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"double"});
    b.advance(100ms);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"string"});
}

TEST_CASE("a mandatory delayed message is returned at once as unroutable, as the plugin does, and still delivered",
          "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_and_bind(c, "q", "later", "k");
    c.consume(1, "q", "t", true);
    publish_delayed(c, "later", "k", "m", std::int32_t{1000}, true);
    auto returned = c.deliveries();
    REQUIRE(returned.size() == 1);
    CHECK(returned[0].is_return());
    CHECK(returned[0].method.as<BasicReturn>()->reply_code == 312);
    // The return carries the message as published.
    CHECK(returned[0].headers().find("x-delay")->as_integer() == 1000);
    b.advance(1000ms);
    auto delivered = c.deliveries();
    REQUIRE(delivered.size() == 1);
    CHECK_FALSE(delivered[0].is_return());
    // Not delayed: mandatory works as on any exchange.
    c.publish(1, "later", "k", "now", {}, true);
    CHECK_FALSE(c.deliveries().at(0).is_return());
}

TEST_CASE("a held message is not unroutable: the alternate exchange does not get it", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_exchange(1, "ae", "fanout");
    declare_and_bind(c, "alt", "ae", "");
    c.declare_exchange(1, "later", "x-delayed-message",
                       table({{"x-delayed-type", "direct"}, {"alternate-exchange", "ae"}}));
    c.take<ExchangeDeclareOk>();
    publish_delayed(c, "later", "nowhere", "m", std::int32_t{100});
    CHECK(b.queue("alt")->message_count() == 0);
    b.advance(100ms);  // released and unroutable now: the alternate exchange takes it
    CHECK(b.queue("alt")->message_count() == 1);
}

TEST_CASE("publisher confirms for held messages that are not stored come at once", "[delayed][confirm]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    c.confirm_select(1);
    c.take<ConfirmSelectOk>();
    publish_delayed(c, "later", "k", "m", std::int32_t{1000});
    CHECK(c.take<BasicAck>().size() == 1);
}

TEST_CASE("deleting a delayed exchange deletes its held messages", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_and_bind(c, "q", "later", "k");
    for (int i = 0; i < 3; ++i) publish_delayed(c, "later", "k", "m", std::int32_t{1000});
    CHECK(delayed_in(b, "later") == 3);
    c.send(1, ExchangeDelete{0, "later", false, false});
    c.take<ExchangeDeleteOk>();
    declare_delayed(c, "later", "direct");  // a new exchange of the same name holds nothing
    c.bind_queue(1, "q", "later", "k");
    b.advance(2000ms);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(delayed_in(b, "later") == 0);
}

TEST_CASE("LavinMQ's x-delayed-exchange argument makes any exchange delayed", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_exchange(1, "events", "topic", table({{"x-delayed-exchange", true}}));
    REQUIRE(c.take<ExchangeDeclareOk>().size() == 1);
    declare_and_bind(c, "q", "events", "order.#");
    publish_delayed(c, "events", "order.paid", "m", std::int32_t{200});
    CHECK(b.queue("q")->message_count() == 0);
    b.advance(200ms);
    CHECK(b.queue("q")->message_count() == 1);
    CHECK(b.broker->default_vhost().find_exchange("events")->type_name() == "topic");
    // false, or no argument: an ordinary exchange.
    c.declare_exchange(1, "plain", "direct", table({{"x-delayed-exchange", false}}));
    c.take<ExchangeDeclareOk>();
    CHECK_FALSE(b.broker->default_vhost().find_exchange("plain")->delayed);
}

TEST_CASE("a delayed exchange reached through an exchange binding or as a dead-letter exchange holds the message",
          "[delayed][dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_and_bind(c, "q", "later", "k");
    c.send(1, ExchangeBind{0, "later", "amq.direct", "k", false, {}});
    c.take<ExchangeBindOk>();
    publish_delayed(c, "amq.direct", "k", "via-binding", std::int32_t{100});
    // A retry queue that dead-letters rejected messages to the delayed exchange.
    c.declare_queue(1, "work", table({{"x-dead-letter-exchange", "later"}, {"x-dead-letter-routing-key", "k"}}));
    c.take<QueueDeclareOk>();
    publish_delayed(c, "", "work", "via-dlx", std::int32_t{300});
    c.get(1, "work");
    c.reject(1, c.deliveries().at(0).delivery_tag(), false);
    CHECK(delayed_in(b, "later") == 2);
    CHECK(b.queue("q")->message_count() == 0);
    b.advance(100ms);
    CHECK(b.queue("q")->message_count() == 1);
    b.advance(200ms);
    CHECK(b.queue("q")->message_count() == 2);
}

TEST_CASE("a publish in a transaction is held from its commit", "[delayed][tx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_and_bind(c, "q", "later", "k");
    c.tx_select(1);
    c.take<TxSelectOk>();
    publish_delayed(c, "later", "k", "m", std::int32_t{100});
    CHECK(delayed_in(b, "later") == 0);
    c.tx_commit(1);
    c.take<TxCommitOk>();
    CHECK(delayed_in(b, "later") == 1);
    b.advance(100ms);
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a burst of equal deadlines goes out in bounded batches per loop turn, every one of them", "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "fanout");
    declare_and_bind(c, "q", "later", "");
    for (int i = 0; i < 3000; ++i) publish_delayed(c, "later", "", "m", std::int32_t{10});
    b.clock.advance(10ms);
    b.broker->run_pending();  // one loop turn: one batch
    const std::size_t first_turn = b.queue("q")->message_count();
    CHECK(first_turn > 0);
    CHECK(first_turn < 3000);
    b.settle();
    CHECK(b.queue("q")->message_count() == 3000);
}

TEST_CASE(
    "redeclaring a delayed exchange: x-delayed-type is not compared (as the plugin), the type and "
    "x-delayed-exchange are",
    "[delayed]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    declare_delayed(c, "later", "topic");                 // accepted; it stays direct
    c.declare_exchange(1, "later", "x-delayed-message");  // accepted too
    CHECK(c.take<ExchangeDeclareOk>().size() == 1);
    CHECK(b.broker->default_vhost().find_exchange("later")->type == warren::exchanges::ExchangeType::Direct);
    c.declare_exchange(1, "later", "direct");
    auto closed = c.channel_close(1);
    REQUIRE(closed);
    CHECK(text_of(*closed) ==
          "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'later' in vhost '/': "
          "received 'direct' but current is 'x-delayed-message'");
    c.close_ok(1);
    c.open_channel(1);
    c.declare_exchange(1, "events", "topic", table({{"x-delayed-exchange", true}}));
    c.take<ExchangeDeclareOk>();
    c.declare_exchange(1, "events", "topic");
    closed = c.channel_close(1);
    REQUIRE(closed);
    CHECK(text_of(*closed) ==
          "PRECONDITION_FAILED - inequivalent arg 'x-delayed-exchange' for exchange 'events' in "
          "vhost '/': received none but current is the value 'true' of type 'bool'");
}

TEST_CASE("bad declarations get the plugin's errors", "[delayed]") {
    SECTION("no x-delayed-type") {
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        c.declare_exchange(1, "later", "x-delayed-message");
        auto closed = c.channel_close(1);
        REQUIRE(closed);
        CHECK(closed->reply_code == 406);
        CHECK(text_of(*closed) ==
              "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type");
    }
    SECTION("x-delayed-type x-delayed-message") {
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        c.declare_exchange(1, "later", "x-delayed-message", table({{"x-delayed-type", "x-delayed-message"}}));
        auto closed = c.channel_close(1);
        REQUIRE(closed);
        CHECK(text_of(*closed) ==
              "PRECONDITION_FAILED - Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'");
    }
    SECTION("an x-delayed-type that does not exist closes the connection, as check_type does") {
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        c.declare_exchange(1, "later", "x-delayed-message", table({{"x-delayed-type", "x-no-such-type"}}));
        auto closed = c.connection_close();
        REQUIRE(closed);
        CHECK(closed->reply_code == 503);
        CHECK(text_of(*closed) == "COMMAND_INVALID - unknown exchange type 'x-no-such-type'");
        CHECK_FALSE(b.broker->default_vhost().find_exchange("later"));
    }
    SECTION("x-delayed-exchange that is not a boolean") {
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        c.declare_exchange(1, "events", "topic", table({{"x-delayed-exchange", "yes"}}));
        auto closed = c.channel_close(1);
        REQUIRE(closed);
        CHECK(text_of(*closed) ==
              "PRECONDITION_FAILED - invalid type 'longstr' for arg 'x-delayed-exchange' in "
              "exchange 'events' in vhost '/'");
    }
}

TEST_CASE("an x-delay that is not a number, or beyond the largest delay, is refused naming the header", "[delayed]") {
    struct Case {
        FieldValue delay;
        const char* text;
    };
    for (const Case& k : std::vector<Case>{
             {std::string("soon"),
              "PRECONDITION_FAILED - invalid 'x-delay' header for exchange 'later' in vhost '/': "
              "\"soon\" is not an integer"},
             {true,
              "PRECONDITION_FAILED - invalid 'x-delay' header for exchange 'later' in vhost '/': a value of "
              "type bool is not a number of milliseconds"},
             {std::int64_t{4294967296},
              "PRECONDITION_FAILED - invalid 'x-delay' header for exchange 'later' in vhost "
              "'/': 4294967296 ms is more than the largest delay, 4294967295 ms (49.7 days)"},
         }) {
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        declare_delayed(c, "later", "direct");
        publish_delayed(c, "later", "k", "m", k.delay);
        auto closed = c.channel_close(1);
        REQUIRE(closed);
        CHECK(closed->reply_code == 406);
        CHECK(closed->class_id == 60);
        CHECK(closed->method_id == 40);
        CHECK(text_of(*closed) == k.text);
    }
    // The largest delay itself is accepted.
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_delayed(c, "later", "direct");
    publish_delayed(c, "later", "k", "m", std::int64_t{4294967295});
    CHECK_FALSE(c.channel_close(1));
    CHECK(delayed_in(b, "later") == 1);
    // On an exchange that is not delayed, x-delay means nothing.
    publish_delayed(c, "amq.direct", "k", "m", std::string("soon"));
    CHECK_FALSE(c.channel_close(1));
}
