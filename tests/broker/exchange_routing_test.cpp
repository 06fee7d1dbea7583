// Routing at the broker level, through the protocol: bindings of each exchange type end to
// end, exchange-to-exchange bindings, alternate exchanges, CC/BCC, mandatory returns, and the
// exchange.declare / delete / bind errors (RabbitMQ 3.10's codes and texts).
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

std::size_t depth(TestBroker& b, std::string_view q) { return b.queue(q) ? b.queue(q)->message_count() : 0; }

void declare_exchange(TestClient& c, std::string_view name, std::string_view type, const FieldTable& args = {},
                      bool auto_delete = false) {
    ByteBuffer arg_bytes = encode_table_body(args);
    ExchangeDeclare d;
    d.exchange = name;
    d.type = type;
    d.auto_delete = auto_delete;
    d.arguments = TableView::trusted(arg_bytes.span());
    c.send(1, d);
}

void bind_exchange(TestClient& c, std::string_view destination, std::string_view source, std::string_view key) {
    ExchangeBind bind;
    bind.destination = destination;
    bind.source = source;
    bind.routing_key = key;
    c.send(1, bind);
}

void expect_channel_close(TestClient& c, std::uint16_t code, std::string_view text, MethodId method) {
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == code);
    CHECK(text_of(*close) == text);
    CHECK(close->class_id == method.class_id);
    CHECK(close->method_id == method.method_id);
    CHECK_FALSE(c.connection_close());
}

BasicProperties with_headers(ByteBuffer& storage, const FieldTable& headers) {
    storage = encode_table_body(headers);
    BasicProperties props;
    props.headers = TableView::trusted(storage.span());
    props.set_flag(property_flag::headers);
    return props;
}

}  // namespace

// ---- bindings end to end --------------------------------------------------------------------

TEST_CASE("the default exchange routes to the queue named by the routing key", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "a");
    c.declare_queue(1, "b");
    c.publish(1, "", "a", "x");
    c.publish(1, "", "nope", "y");
    CHECK(depth(b, "a") == 1);
    CHECK(depth(b, "b") == 0);
}

TEST_CASE("\"amq.default\" is not an alias of the default exchange", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "amq.default", "q", "x");
    expect_channel_close(c, 404, "NOT_FOUND - no exchange 'amq.default' in vhost '/'", {60, 40});
}

TEST_CASE("direct, fanout, topic and headers bindings route end to end", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    for (auto q : {"d", "f1", "f2", "t_star", "t_hash", "h_all", "h_any"}) c.declare_queue(1, q);
    c.bind_queue(1, "d", "amq.direct", "key");
    c.bind_queue(1, "f1", "amq.fanout", "ignored");
    c.bind_queue(1, "f2", "amq.fanout", "");
    c.bind_queue(1, "t_star", "amq.topic", "a.*");
    c.bind_queue(1, "t_hash", "amq.topic", "a.#");
    c.bind_queue(1, "h_all", "amq.headers", "", table({{"x-match", "all"}, {"k1", "v1"}, {"k2", "v2"}}));
    c.bind_queue(1, "h_any", "amq.headers", "", table({{"x-match", "any"}, {"k1", "v1"}, {"k2", "v2"}}));
    CHECK(c.take<QueueBindOk>().size() == 7);

    c.publish(1, "amq.direct", "key", "x");
    c.publish(1, "amq.direct", "other", "x");
    c.publish(1, "amq.fanout", "whatever", "x");
    c.publish(1, "amq.topic", "a", "x");      // a.# only
    c.publish(1, "amq.topic", "a.b", "x");    // both
    c.publish(1, "amq.topic", "a.b.c", "x");  // a.# only
    ByteBuffer h1, h2;
    c.publish(1, "amq.headers", "", "x", with_headers(h1, table({{"k1", "v1"}})));
    c.publish(1, "amq.headers", "", "x", with_headers(h2, table({{"k1", "v1"}, {"k2", "v2"}})));

    CHECK(depth(b, "d") == 1);
    CHECK(depth(b, "f1") == 1);
    CHECK(depth(b, "f2") == 1);
    CHECK(depth(b, "t_star") == 1);
    CHECK(depth(b, "t_hash") == 3);
    CHECK(depth(b, "h_all") == 1);
    CHECK(depth(b, "h_any") == 2);
}

TEST_CASE("a queue bound twice by matching keys gets one copy", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "amq.topic", "a.*");
    c.bind_queue(1, "q", "amq.topic", "#");
    c.publish(1, "amq.topic", "a.b", "x");
    CHECK(depth(b, "q") == 1);
}

TEST_CASE("a fanout publish shares one message among its queues", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "a");
    c.declare_queue(1, "b");
    c.bind_queue(1, "a", "amq.fanout", "");
    c.bind_queue(1, "b", "amq.fanout", "");
    c.publish(1, "amq.fanout", "", "shared body");
    c.get(1, "a", true);
    c.get(1, "b", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 2);
    CHECK(got[0].body == "shared body");
    CHECK(got[1].body == "shared body");
    CHECK(got[0].exchange() == "amq.fanout");
}

TEST_CASE("queue.unbind stops routing", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "amq.direct", "k");
    QueueUnbind u;
    u.queue = "q";
    u.exchange = "amq.direct";
    u.routing_key = "k";
    c.send(1, u);
    CHECK(c.take<QueueUnbindOk>().size() == 1);
    c.publish(1, "amq.direct", "k", "x");
    CHECK(depth(b, "q") == 0);
}

// ---- exchange-to-exchange -------------------------------------------------------------------

TEST_CASE("exchange-to-exchange bindings route through to queues", "[routing][e2e]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "front", "topic");
    declare_exchange(c, "back", "fanout");
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "back", "");
    bind_exchange(c, "back", "front", "orders.*");
    CHECK(c.take<ExchangeBindOk>().size() == 1);
    c.publish(1, "front", "orders.new", "x");
    c.publish(1, "front", "users.new", "y");
    CHECK(depth(b, "q") == 1);
}

TEST_CASE("a cycle of exchange bindings delivers once and terminates", "[routing][e2e]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "x1", "fanout");
    declare_exchange(c, "x2", "fanout");
    bind_exchange(c, "x2", "x1", "");
    bind_exchange(c, "x1", "x2", "");
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "x1", "");
    c.bind_queue(1, "q", "x2", "");
    c.publish(1, "x1", "", "x");
    CHECK(depth(b, "q") == 1);
}

TEST_CASE("exchange.bind with a missing side gets 404 naming the source first", "[routing][e2e]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    SECTION("both missing") {
        bind_exchange(c, "dst", "src", "");
        expect_channel_close(c, 404, "NOT_FOUND - no exchange 'src' in vhost '/'", {40, 30});
    }
    SECTION("destination missing") {
        bind_exchange(c, "dst", "amq.direct", "");
        expect_channel_close(c, 404, "NOT_FOUND - no exchange 'dst' in vhost '/'", {40, 30});
    }
}

TEST_CASE("deleting an exchange removes the bindings to and from it", "[routing][e2e]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "front", "fanout");
    declare_exchange(c, "middle", "fanout");
    c.declare_queue(1, "q");
    bind_exchange(c, "middle", "front", "");
    c.bind_queue(1, "q", "middle", "");
    ExchangeDelete d;
    d.exchange = "middle";
    c.send(1, d);
    CHECK(c.take<ExchangeDeleteOk>().size() == 1);
    c.publish(1, "front", "", "x", {}, true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].is_return());
    CHECK(depth(b, "q") == 0);
}

// ---- alternate exchange ---------------------------------------------------------------------

TEST_CASE("an unroutable message goes to the alternate exchange", "[routing][ae]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "ae", "fanout");
    declare_exchange(c, "main", "direct", table({{"alternate-exchange", "ae"}}));
    c.declare_queue(1, "routed");
    c.declare_queue(1, "unrouted");
    c.bind_queue(1, "routed", "main", "k");
    c.bind_queue(1, "unrouted", "ae", "");
    c.publish(1, "main", "k", "x", {}, true);
    c.publish(1, "main", "other", "y", {}, true);
    CHECK(depth(b, "routed") == 1);
    CHECK(depth(b, "unrouted") == 1);
    CHECK(c.take<BasicReturn>().empty());  // routed by the AE: not returned
    c.get(1, "unrouted", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].exchange() == "main");
    CHECK(got[0].routing_key() == "other");
}

TEST_CASE("an alternate exchange that routes nowhere lets mandatory return the message", "[routing][ae]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    SECTION("the AE has no bindings") { declare_exchange(c, "ae", "fanout"); }
    SECTION("the AE does not exist") {}
    declare_exchange(c, "main", "direct", table({{"alternate-exchange", "ae"}}));
    c.publish(1, "main", "k", "x", {}, true);
    auto returns = c.take<BasicReturn>();
    REQUIRE(returns.size() == 1);
    CHECK(returns[0].reply_code == 312);
}

TEST_CASE("alternate exchanges chain and a cycle of them terminates", "[routing][ae]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "a", "direct", table({{"alternate-exchange", "b"}}));
    declare_exchange(c, "b", "direct", table({{"alternate-exchange", "a"}}));
    c.publish(1, "a", "k", "x", {}, true);
    CHECK(c.take<BasicReturn>().size() == 1);
    declare_exchange(c, "c", "direct", table({{"alternate-exchange", "d"}}));
    declare_exchange(c, "d", "fanout");
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "d", "");
    c.publish(1, "c", "k", "x", {}, true);
    CHECK(depth(b, "q") == 1);
    CHECK(c.take<BasicReturn>().empty());
}

// ---- CC and BCC -----------------------------------------------------------------------------

TEST_CASE("CC and BCC headers add routing keys and BCC is removed from the delivered message", "[routing][cc]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    for (auto q : {"main", "cc", "bcc"}) {
        c.declare_queue(1, q);
        c.bind_queue(1, q, "amq.direct", q);
    }
    FieldArray cc;
    cc.items.emplace_back(std::string("cc"));
    FieldArray bcc;
    bcc.items.emplace_back(std::string("bcc"));
    ByteBuffer storage;
    c.publish(1, "amq.direct", "main", "x", with_headers(storage, table({{"CC", cc}, {"BCC", bcc}})));
    CHECK(depth(b, "main") == 1);
    CHECK(depth(b, "cc") == 1);
    CHECK(depth(b, "bcc") == 1);
    for (auto q : {"main", "cc", "bcc"}) {
        INFO(q);
        c.get(1, q, true);
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        FieldTable headers = got[0].headers();
        CHECK(headers.find("CC"));
        CHECK_FALSE(headers.find("BCC"));
        CHECK(got[0].routing_key() == "main");
    }
}

// ---- mandatory ------------------------------------------------------------------------------

TEST_CASE("an unroutable mandatory publish comes back with basic.return 312 NO_ROUTE", "[routing][mandatory]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    BasicProperties props;
    props.content_type = "text/plain";
    props.set_flag(property_flag::content_type);
    c.publish(1, "amq.direct", "nowhere", "the body", props, true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].is_return());
    auto r = got[0].method.as<BasicReturn>();
    CHECK(r->reply_code == 312);
    CHECK(r->reply_text.view() == "NO_ROUTE");
    CHECK(r->exchange.view() == "amq.direct");
    CHECK(r->routing_key.view() == "nowhere");
    CHECK(got[0].body == "the body");
    CHECK(got[0].properties().content_type == "text/plain");
}

TEST_CASE("an unroutable publish without mandatory is dropped silently", "[routing][mandatory]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.publish(1, "amq.direct", "nowhere", "x");
    CHECK(c.frames().empty());
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("a routable mandatory publish is not returned", "[routing][mandatory]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "x", {}, true);
    CHECK(c.take<BasicReturn>().empty());
    CHECK(depth(b, "q") == 1);
}

// ---- exchange.declare and delete errors -----------------------------------------------------

TEST_CASE("exchange.declare with an unknown type closes the connection with 503", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    // RabbitMQ says "unknown" for a type that is not an Erlang atom (almost any typo).
    declare_exchange(c, "x", "bogus");
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 503);
    CHECK(text_of(*close) == "COMMAND_INVALID - unknown exchange type 'bogus'");
    CHECK(close->class_id == 40);
    CHECK(close->method_id == 10);
}

TEST_CASE("exchange names with amq. and the default exchange are refused with 403", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    SECTION("declare amq.foo") {
        declare_exchange(c, "amq.foo", "direct");
        expect_channel_close(c, 403, "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
                             {40, 10});
    }
    SECTION("declare the default exchange") {
        declare_exchange(c, "", "direct");
        expect_channel_close(c, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", {40, 10});
    }
    SECTION("delete the default exchange") {
        ExchangeDelete d;
        c.send(1, d);
        expect_channel_close(c, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", {40, 20});
    }
    SECTION("delete amq.direct") {
        ExchangeDelete d;
        d.exchange = "amq.direct";
        c.send(1, d);
        expect_channel_close(c, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
                             {40, 20});
    }
    SECTION("bind a queue to the default exchange") {
        c.declare_queue(1, "q");
        c.bind_queue(1, "q", "", "q");
        expect_channel_close(c, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", {50, 20});
    }
}

TEST_CASE("redeclaring an exchange differently gets 406", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "X", "direct");
    SECTION("type") {
        declare_exchange(c, "X", "fanout");
        expect_channel_close(c, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'X' in vhost '/': received "
                             "'fanout' but current is 'direct'",
                             {40, 10});
    }
    SECTION("auto_delete") {
        declare_exchange(c, "X", "direct", {}, true);
        expect_channel_close(c, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'X' in vhost '/': "
                             "received 'true' but current is 'false'",
                             {40, 10});
    }
    SECTION("alternate-exchange added") {
        declare_exchange(c, "X", "direct", table({{"alternate-exchange", "amq.direct"}}));
        expect_channel_close(c, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'X' in vhost "
                             "'/': received the value 'amq.direct' of type 'longstr' but current is none",
                             {40, 10});
    }
    SECTION("unknown arguments are not compared") {
        declare_exchange(c, "X", "direct", table({{"x-foo", "bar"}}));
        CHECK(c.take<ExchangeDeclareOk>().size() == 2);
        CHECK_FALSE(c.channel_close(1));
    }
}

TEST_CASE("a passive declare of a missing exchange gets 404", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    ExchangeDeclare d;
    d.exchange = "X";
    d.passive = true;
    c.send(1, d);
    expect_channel_close(c, 404, "NOT_FOUND - no exchange 'X' in vhost '/'", {40, 10});
}

TEST_CASE("deleting a missing exchange succeeds", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    ExchangeDelete d;
    d.exchange = "X";
    d.if_unused = true;
    c.send(1, d);
    CHECK(c.take<ExchangeDeleteOk>().size() == 1);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("exchange.delete if-unused refuses an exchange with bindings", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "X", "fanout");
    SECTION("bound to a queue") {
        c.declare_queue(1, "q");
        c.bind_queue(1, "q", "X", "");
    }
    SECTION("source of an exchange binding") {
        declare_exchange(c, "Y", "fanout");
        bind_exchange(c, "Y", "X", "");
    }
    ExchangeDelete d;
    d.exchange = "X";
    d.if_unused = true;
    c.send(1, d);
    expect_channel_close(c, 406, "PRECONDITION_FAILED - exchange 'X' in vhost '/' in use", {40, 20});
}

TEST_CASE("an auto-delete exchange goes with its last binding", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "X", "fanout", {}, true);
    c.declare_queue(1, "q1");
    c.declare_queue(1, "q2");
    c.bind_queue(1, "q1", "X", "");
    c.bind_queue(1, "q2", "X", "");
    c.delete_queue(1, "q1");
    c.publish(1, "X", "", "still there");
    CHECK_FALSE(c.channel_close(1));
    CHECK(depth(b, "q2") == 1);
    c.delete_queue(1, "q2");
    c.publish(1, "X", "", "gone");
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 404);
}

TEST_CASE("a headers binding with a bad x-match gets 406", "[exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "amq.headers", "", table({{"x-match", "foo"}}));
    expect_channel_close(c, 406,
                         "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, any, "
                         "all-with-x, or any-with-x",
                         {50, 20});
}

TEST_CASE("exchange.unbind of a missing binding succeeds", "[exchange][e2e]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_exchange(c, "X", "fanout");
    ExchangeUnbind u;
    u.destination = "X";
    u.source = "amq.direct";
    u.routing_key = "k";
    c.send(1, u);
    CHECK(c.take<ExchangeUnbindOk>().size() == 1);
    CHECK_FALSE(c.channel_close(1));
}

// ---- lookup caches on the publish path ------------------------------------------------------

TEST_CASE("publishing after an exchange is deleted and declared again reaches the new one", "[routing][exchange]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_exchange(1, "x", "fanout");
    c.declare_queue(1, "first");
    c.bind_queue(1, "first", "x", "");
    c.publish(1, "x", "", "one");
    CHECK(b.queue("first")->message_count() == 1);
    c.send(1, ExchangeDelete{0, "x"});
    c.declare_exchange(1, "x", "fanout");
    c.declare_queue(1, "second");
    c.bind_queue(1, "second", "x", "");
    c.publish(1, "x", "", "two");
    CHECK(b.queue("first")->message_count() == 1);
    CHECK(b.queue("second")->message_count() == 1);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("the default exchange finds a queue deleted and declared again under the same name", "[routing]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "one");
    c.send(1, QueueDelete{0, "q"});
    c.publish(1, "", "q", "lost: no queue");
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "two");
    REQUIRE(b.queue("q"));
    CHECK(b.queue("q")->message_count() == 1);
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "two");
}
