// Queue lifecycle through the protocol: declare and redeclare equivalence, exclusive and
// auto-delete queues, server-named queues, purge and delete counts, x-expires. Texts are
// RabbitMQ 3.10's (docs/rabbitmq-reference.md).
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

const std::string locked_text =
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be originally "
    "declared on another connection or the exclusive property value does not match that of the original "
    "declaration.";

void expect_channel_close(TestClient& c, std::uint16_t channel, std::uint16_t code, std::string_view text,
                          MethodId method) {
    auto close = c.channel_close(channel);
    REQUIRE(close);
    CHECK(close->reply_code == code);
    CHECK(text_of(*close) == text);
    CHECK(close->class_id == method.class_id);
    CHECK(close->method_id == method.method_id);
    CHECK_FALSE(c.connection_close());
}

QueueDeclare passive(std::string_view name) {
    QueueDeclare d;
    d.queue = name;
    d.passive = true;
    return d;
}

}  // namespace

// ---- declare --------------------------------------------------------------------------------

TEST_CASE("queue.declare-ok reports the name, ready messages and consumers", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    auto ok = c.take<QueueDeclareOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].queue.view() == "q");
    CHECK(ok[0].message_count == 0);
    CHECK(ok[0].consumer_count == 0);

    c.publish_n(1, "", "q", 3);
    c.get(1, "q");  // one unacked: not counted
    c.deliveries();
    c.consume(1, "q", "tag");
    c.deliveries();
    c.declare_queue(1, "q");
    ok = c.take<QueueDeclareOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].consumer_count == 1);
    CHECK(ok[0].message_count == 0);  // the consumer took the other two
}

TEST_CASE("queue.declare-ok counts only ready messages", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.get(1, "q");
    c.deliveries();
    c.send(1, passive("q"));
    auto ok = c.take<QueueDeclareOk>();
    REQUIRE(ok.size() == 2);
    CHECK(ok[1].message_count == 2);
}

TEST_CASE("an identical redeclare succeeds", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    auto args = table({{"x-message-ttl", std::int32_t{1000}}, {"x-max-length", std::int32_t{10}}});
    c.declare_queue(1, "q", args, true);
    c.declare_queue(1, "q", args, true);
    CHECK(c.take<QueueDeclareOk>().size() == 2);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("redeclaring with another durable or auto_delete flag gets 406", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    SECTION("durable") {
        c.declare_queue(1, "q", {}, true);
        expect_channel_close(c, 1, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received "
                             "'true' but current is 'false'",
                             {50, 10});
    }
    SECTION("auto_delete") {
        c.declare_queue(1, "q", {}, false, false, true);
        expect_channel_close(c, 1, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q' in vhost '/': "
                             "received 'true' but current is 'false'",
                             {50, 10});
    }
}

TEST_CASE("redeclaring with an argument added gets 406", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.declare_queue(1, "q", table({{"x-message-ttl", std::int32_t{1000}}}));
    expect_channel_close(c, 1, 406,
                         "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received "
                         "the value '1000' of type 'signedint' but current is none",
                         {50, 10});
}

TEST_CASE("redeclaring with an argument removed gets 406", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-max-length", std::int32_t{10}}}));
    c.declare_queue(1, "q");
    expect_channel_close(c, 1, 406,
                         "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received "
                         "none but current is the value '10' of type 'signedint'",
                         {50, 10});
}

TEST_CASE("redeclaring with another argument value gets 406", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    SECTION("integer") {
        c.declare_queue(1, "q", table({{"x-message-ttl", std::int32_t{1000}}}));
        c.declare_queue(1, "q", table({{"x-message-ttl", std::int32_t{2000}}}));
        expect_channel_close(c, 1, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': "
                             "received '2000' but current is '1000'",
                             {50, 10});
    }
    SECTION("string") {
        c.declare_queue(1, "q", table({{"x-dead-letter-exchange", "a"}}));
        c.declare_queue(1, "q", table({{"x-dead-letter-exchange", "b"}}));
        expect_channel_close(c, 1, 406,
                             "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost "
                             "'/': received 'b' but current is 'a'",
                             {50, 10});
    }
}

TEST_CASE("a redeclare with the same value in another integer type is equivalent", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-message-ttl", std::int32_t{1000}}}));
    c.declare_queue(1, "q", table({{"x-message-ttl", std::int64_t{1000}}}));
    CHECK(c.take<QueueDeclareOk>().size() == 2);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("unknown arguments are not compared on redeclare", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-foo-bar", "a"}}));
    c.declare_queue(1, "q", table({{"x-foo-bar", "b"}}));
    c.declare_queue(1, "q");
    CHECK(c.take<QueueDeclareOk>().size() == 3);
    CHECK_FALSE(c.channel_close(1));
}

// rabbit_misc:assert_field_equivalence/4: a classic queue has no x-queue-type of its own.
TEST_CASE("redeclaring a classic queue with x-queue-type classic is equivalent", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.declare_queue(1, "q", table({{"x-queue-type", "classic"}}));
    c.declare_queue(1, "q");
    CHECK(c.take<QueueDeclareOk>().size() == 3);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("a passive declare of a missing queue gets 404", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, passive("q"));
    expect_channel_close(c, 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", {50, 10});
}

TEST_CASE("a passive declare of an empty name gets 404 even after a declare on the channel", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.take<QueueDeclareOk>();
    c.send(1, passive(""));
    CHECK(c.take<QueueDeclareOk>().empty());
    expect_channel_close(c, 1, 404, "NOT_FOUND - no queue '' in vhost '/'", {50, 10});
}

TEST_CASE("a passive declare ignores the other flags", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    QueueDeclare d = passive("q");
    d.durable = true;
    d.auto_delete = true;
    ByteBuffer args = encode_table_body(table({{"x-message-ttl", std::int32_t{5}}}));
    d.arguments = TableView::trusted(args.span());
    c.send(1, d);
    CHECK(c.take<QueueDeclareOk>().size() == 2);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("a queue name with the amq. prefix is refused with 403", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "amq.foo");
    expect_channel_close(c, 1, 403, "ACCESS_REFUSED - queue name 'amq.foo' contains reserved prefix 'amq.*'", {50, 10});
}

TEST_CASE("a server-named queue is amq.gen- and 22 characters, and the empty name means it later",
          "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "");
    auto ok = c.take<QueueDeclareOk>();
    REQUIRE(ok.size() == 1);
    std::string name(ok[0].queue.view());
    REQUIRE(name.size() == 30);
    CHECK(name.starts_with("amq.gen-"));
    for (char ch : name.substr(8)) CHECK((std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'));
    REQUIRE(b.queue(name));

    c.declare_queue(1, "");
    auto second = c.take<QueueDeclareOk>();
    REQUIRE(second.size() == 1);
    CHECK(second[0].queue.view() != name);
    std::string latest(second[0].queue.view());

    // queue.bind with an empty queue and key binds the latest queue under its own name.
    c.bind_queue(1, "", "amq.direct", "");
    CHECK(c.take<QueueBindOk>().size() == 1);
    c.publish(1, "amq.direct", latest, "hello");
    CHECK(b.queue(latest)->message_count() == 1);
    CHECK(b.queue(name)->message_count() == 0);
}

TEST_CASE("queue.bind with an empty queue name and no queue declared gets 404", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.bind_queue(1, "", "amq.direct", "k");
    expect_channel_close(c, 1, 404, "NOT_FOUND - no previously declared queue", {50, 20});
}

// ---- exclusive ------------------------------------------------------------------------------

TEST_CASE("another connection cannot use an exclusive queue", "[queue][exclusive]") {
    TestBroker b;
    TestClient owner(b);
    owner.open_channel(1);
    owner.declare_queue(1, "q", {}, false, true);
    REQUIRE(owner.take<QueueDeclareOk>().size() == 1);

    TestClient other(b);
    other.open_channel(1);
    SECTION("declare") {
        other.declare_queue(1, "q", {}, false, true);
        expect_channel_close(other, 1, 405, locked_text, {50, 10});
    }
    SECTION("passive declare") {
        other.send(1, passive("q"));
        expect_channel_close(other, 1, 405, locked_text, {50, 10});
    }
    SECTION("consume") {
        other.consume(1, "q");
        expect_channel_close(other, 1, 405, locked_text, {60, 20});
    }
    SECTION("bind") {
        other.bind_queue(1, "q", "amq.direct", "k");
        expect_channel_close(other, 1, 405, locked_text, {50, 20});
    }
    SECTION("delete") {
        other.delete_queue(1, "q");
        expect_channel_close(other, 1, 405, locked_text, {50, 40});
    }
    SECTION("purge") {
        other.purge_queue(1, "q");
        expect_channel_close(other, 1, 405, locked_text, {50, 30});
    }
    SECTION("get") {
        other.get(1, "q");
        expect_channel_close(other, 1, 405, locked_text, {60, 70});
    }
    CHECK(b.queue("q"));
}

TEST_CASE("another connection may publish to and unbind an exclusive queue", "[queue][exclusive]") {
    TestBroker b;
    TestClient owner(b);
    owner.open_channel(1);
    owner.declare_queue(1, "q", {}, false, true);
    owner.bind_queue(1, "q", "amq.direct", "k");

    TestClient other(b);
    other.open_channel(1);
    other.publish(1, "", "q", "hello");
    CHECK(b.queue("q")->message_count() == 1);
    QueueUnbind u;
    u.queue = "q";
    u.exchange = "amq.direct";
    u.routing_key = "k";
    other.send(1, u);
    CHECK(other.take<QueueUnbindOk>().size() == 1);
    CHECK_FALSE(other.channel_close(1));
    other.publish(1, "amq.direct", "k", "unrouted");
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("redeclaring a queue with another exclusive flag gets 405", "[queue][exclusive]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.declare_queue(1, "q", {}, false, true);
    expect_channel_close(c, 1, 405, locked_text, {50, 10});
}

TEST_CASE("an exclusive queue is deleted when its connection closes", "[queue][exclusive]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", {}, false, true);
    c.declare_queue(1, "shared");
    REQUIRE(b.queue("q"));
    SECTION("connection.close") { c.close_connection(); }
    SECTION("transport lost") { c.lose_transport(); }
    CHECK(b.queue("q") == nullptr);
    CHECK(b.queue("shared") != nullptr);
}

TEST_CASE("an exclusive queue outlives the channel that declared it", "[queue][exclusive]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", {}, false, true);
    c.close_channel(1);
    CHECK(b.queue("q"));
    c.open_channel(2);
    c.publish(2, "", "q", "x");
    c.get(2, "q", true);
    CHECK(c.deliveries().size() == 1);
}

// ---- auto-delete ----------------------------------------------------------------------------

TEST_CASE("an auto-delete queue goes when its last consumer is cancelled", "[queue][auto_delete]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", {}, false, false, true);
    c.consume(1, "q", "a");
    c.consume(1, "q", "b");
    c.cancel(1, "a");
    CHECK(b.queue("q"));
    c.cancel(1, "b");
    CHECK(b.queue("q") == nullptr);
    CHECK(c.take<BasicCancelOk>().size() == 2);
}

TEST_CASE("an auto-delete queue goes when the channel of its last consumer closes", "[queue][auto_delete]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q", {}, false, false, true);
    c.consume(2, "q", "a");
    c.close_channel(2);
    CHECK(b.queue("q") == nullptr);
}

TEST_CASE("an auto-delete queue that never had a consumer stays", "[queue][auto_delete]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", {}, false, false, true);
    c.publish(1, "", "q", "x");
    c.get(1, "q", true);
    c.close_channel(1);
    CHECK(b.queue("q"));
}

// ---- purge and delete -----------------------------------------------------------------------

TEST_CASE("queue.purge reports the ready messages it removed", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.purge_queue(1, "q");
    auto ok = c.take<QueuePurgeOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].message_count == 2);
    CHECK(b.queue("q")->message_count() == 0);
    // The unacked message survives the purge and comes back when rejected.
    c.reject(1, got[0].delivery_tag(), true);
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("queue.purge of a missing queue gets 404", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.purge_queue(1, "q");
    expect_channel_close(c, 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", {50, 30});
}

TEST_CASE("queue.delete reports the ready messages and removes the queue", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.bind_queue(1, "q", "amq.fanout", "");
    c.publish_n(1, "", "q", 4);
    c.delete_queue(1, "q");
    auto ok = c.take<QueueDeleteOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].message_count == 4);
    CHECK(b.queue("q") == nullptr);
    // Its bindings went with it: publishing to the fanout reaches nothing.
    c.publish(1, "amq.fanout", "", "x", {}, true);
    auto returned = c.deliveries();
    REQUIRE(returned.size() == 1);
    CHECK(returned[0].is_return());
}

TEST_CASE("queue.delete if-unused refuses a queue with consumers", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q");
    c.consume(2, "q");
    c.delete_queue(1, "q", true, false);
    expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - queue 'q' in vhost '/' in use", {50, 40});
    CHECK(b.queue("q"));
}

TEST_CASE("queue.delete if-empty refuses a queue with messages", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "x");
    c.delete_queue(1, "q", false, true);
    expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty", {50, 40});
    CHECK(b.queue("q"));
}

TEST_CASE("queue.delete if-empty and if-unused pass for an idle empty queue", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.delete_queue(1, "q", true, true);
    CHECK(c.take<QueueDeleteOk>().size() == 1);
    CHECK(b.queue("q") == nullptr);
}

TEST_CASE("deleting a missing queue succeeds with a count of 0", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.delete_queue(1, "nope", true, true);
    auto ok = c.take<QueueDeleteOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].message_count == 0);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("deleting a queue drops its unacked messages when they are settled later", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.delete_queue(1, "q");
    c.declare_queue(1, "q");
    c.nack(1, got[0].delivery_tag(), false, true);
    CHECK_FALSE(c.channel_close(1));
    // The new queue of the same name does not receive the old queue's message.
    CHECK(b.queue("q")->message_count() == 0);
}

// ---- x-expires ------------------------------------------------------------------------------

TEST_CASE("x-expires deletes a queue left unused for that long", "[queue][expires]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-expires", std::int32_t{1000}}}));
    c.publish(1, "", "q", "messages do not count as use");
    b.advance(999ms);
    CHECK(b.queue("q"));
    b.advance(1ms);
    CHECK(b.queue("q") == nullptr);
}

TEST_CASE("a redeclare or basic.get restarts the x-expires period", "[queue][expires]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-expires", std::int32_t{1000}}}));
    b.advance(600ms);
    c.declare_queue(1, "q", table({{"x-expires", std::int32_t{1000}}}));
    b.advance(600ms);
    CHECK(b.queue("q"));
    c.get(1, "q");
    b.advance(900ms);
    CHECK(b.queue("q"));
    b.advance(100ms);
    CHECK(b.queue("q") == nullptr);
}

TEST_CASE("a queue with a consumer does not expire, and the period starts when the last consumer goes",
          "[queue][expires]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-expires", std::int32_t{1000}}}));
    c.consume(1, "q", "tag");
    b.advance(5000ms);
    CHECK(b.queue("q"));
    c.cancel(1, "tag");
    b.advance(999ms);
    CHECK(b.queue("q"));
    b.advance(1ms);
    CHECK(b.queue("q") == nullptr);
}

TEST_CASE("an expired queue cancels nothing and leaves other queues alone", "[queue][expires]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "short", table({{"x-expires", std::int32_t{100}}}));
    c.declare_queue(1, "long", table({{"x-expires", std::int32_t{10000}}}));
    b.advance(200ms);
    CHECK(b.queue("short") == nullptr);
    CHECK(b.queue("long"));
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("queue.unbind of a missing queue or binding succeeds", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    QueueUnbind u;
    u.exchange = "amq.direct";
    u.routing_key = "k";
    u.queue = "q";
    c.send(1, u);
    u.queue = "missing";
    c.send(1, u);
    CHECK(c.take<QueueUnbindOk>().size() == 2);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("queue.bind to a missing queue or exchange gets 404 naming the exchange first", "[queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    SECTION("missing queue") {
        c.bind_queue(1, "q", "amq.direct", "k");
        expect_channel_close(c, 1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", {50, 20});
    }
    SECTION("missing exchange") {
        c.declare_queue(1, "q");
        c.bind_queue(1, "q", "x", "k");
        expect_channel_close(c, 1, 404, "NOT_FOUND - no exchange 'x' in vhost '/'", {50, 20});
    }
    SECTION("both missing") {
        c.bind_queue(1, "q", "x", "k");
        expect_channel_close(c, 1, 404, "NOT_FOUND - no exchange 'x' in vhost '/'", {50, 20});
    }
}
