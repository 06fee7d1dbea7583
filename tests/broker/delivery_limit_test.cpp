// x-delivery-limit and x-delivery-count on every queue (DECISIONS.md): redeliveries carry
// x-delivery-count, and a message returned more times than the limit is dead-lettered with
// reason delivery_limit.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

// Takes the next message of "q" with basic.get and returns it (unacked).
Delivery get_next(TestClient& c) {
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    return got[0];
}

std::optional<std::int64_t> delivery_count(const Delivery& d) {
    FieldTable h = d.headers();
    const FieldValue* v = h.find("x-delivery-count");
    if (!v) return std::nullopt;
    CHECK(v->type() == 'l');
    return v->as_integer();
}

void setup(TestClient& c, FieldTable args) {
    c.open_channel(1);
    c.declare_queue(1, "dlq");
    args.set("x-dead-letter-exchange", std::string(""));
    args.set("x-dead-letter-routing-key", std::string("dlq"));
    // Quorum queues must be durable, as in RabbitMQ.
    const FieldValue* type = args.find("x-queue-type");
    bool durable = type && type->as_string() && *type->as_string() == "quorum";
    c.declare_queue(1, "q", args, durable);
}

}  // namespace

TEST_CASE("the first delivery has no x-delivery-count and each redelivery counts up", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, {});
    c.publish(1, "", "q", "x");
    Delivery d = get_next(c);
    CHECK_FALSE(delivery_count(d));
    CHECK_FALSE(d.redelivered());
    for (std::int64_t n = 1; n <= 3; ++n) {
        c.nack(1, d.delivery_tag(), false, true);
        d = get_next(c);
        CHECK(delivery_count(d) == n);
        CHECK(d.redelivered());
    }
}

TEST_CASE("x-delivery-count is added beside the message's own headers", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, {});
    ByteBuffer storage = encode_table_body(table({{"app", "kept"}}));
    BasicProperties props;
    props.headers = TableView::trusted(storage.span());
    props.set_flag(property_flag::headers);
    props.message_id = "id-1";
    props.set_flag(property_flag::message_id);
    c.publish(1, "", "q", "x", props);
    Delivery d = get_next(c);
    c.reject(1, d.delivery_tag(), true);
    d = get_next(c);
    FieldTable h = d.headers();
    REQUIRE(h.find("app"));
    CHECK(*h.find("app") == FieldValue(std::string("kept")));
    CHECK(delivery_count(d) == 1);
    CHECK(d.properties().message_id == "id-1");
    CHECK(d.body == "x");
}

TEST_CASE("a message returned more times than x-delivery-limit is dead-lettered", "[delivery_limit][dlx]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-delivery-limit", std::int32_t{2}}}));
    c.publish(1, "", "q", "x");
    // Delivered three times: the first delivery and two redeliveries.
    for (int i = 0; i < 3; ++i) {
        Delivery d = get_next(c);
        c.nack(1, d.delivery_tag(), false, true);
    }
    CHECK(b.queue("q")->message_count() == 0);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    c.get(1, "dlq", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    FieldTable h = got[0].headers();
    const FieldValue* deaths = h.find("x-death");
    REQUIRE(deaths);
    const FieldTable* first = deaths->get_if<FieldArray>()->items.at(0).get_if<FieldTable>();
    REQUIRE(first);
    CHECK(*first->find("reason") == FieldValue(std::string("delivery_limit")));
}

TEST_CASE("x-delivery-limit 0 dead-letters at the first return", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-delivery-limit", std::int32_t{0}}}));
    c.publish(1, "", "q", "x");
    Delivery d = get_next(c);
    c.reject(1, d.delivery_tag(), true);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(b.queue("dlq")->message_count() == 1);
}

TEST_CASE("past the delivery limit without a dead-letter exchange the message is dropped", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-delivery-limit", std::int32_t{1}}}));
    c.publish(1, "", "q", "x");
    for (int i = 0; i < 2; ++i) {
        Delivery d = get_next(c);
        c.reject(1, d.delivery_tag(), true);
    }
    CHECK(b.queue("q")->message_count() == 0);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("returns on channel close and basic.recover count as deliveries", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-delivery-limit", std::int32_t{2}}}));
    c.open_channel(2);
    c.publish(1, "", "q", "x");
    c.consume(2, "q", "t");
    REQUIRE(c.deliveries().size() == 1);
    c.close_channel(2);  // return 1
    CHECK(b.queue("q")->message_count() == 1);
    Delivery d = get_next(c);
    CHECK(delivery_count(d) == 1);
    c.send(1, BasicRecover{true});  // return 2
    c.take<BasicRecoverOk>();
    d = get_next(c);
    CHECK(delivery_count(d) == 2);
    c.reject(1, d.delivery_tag(), true);  // return 3: past the limit
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(b.queue("dlq")->message_count() == 1);
}

TEST_CASE("a quorum queue sends x-delivery-count from the first delivery, starting at 0", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-queue-type", "quorum"}}));
    c.publish(1, "", "q", "x");
    Delivery d = get_next(c);
    CHECK(delivery_count(d) == 0);
    c.reject(1, d.delivery_tag(), true);
    CHECK(delivery_count(get_next(c)) == 1);
}

TEST_CASE("a non-durable, exclusive or auto-delete quorum queue is refused as in RabbitMQ", "[delivery_limit][queue]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "qq", table({{"x-queue-type", "quorum"}}));
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_text.view() == "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'qq' in vhost '/'");
    c.send(1, ChannelCloseOk{});
    c.open_channel(1);
    c.declare_queue(1, "qq", table({{"x-queue-type", "quorum"}}), true, true);
    close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_text.view() == "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 'qq' in vhost '/'");
    c.send(1, ChannelCloseOk{});
    c.open_channel(1);
    c.declare_queue(1, "qq", table({{"x-queue-type", "quorum"}}), true, false, true);
    close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_text.view() == "PRECONDITION_FAILED - invalid property 'auto-delete' for queue 'qq' in vhost '/'");
}

TEST_CASE("a quorum queue gets a delivery limit of 20 by default", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, table({{"x-queue-type", "quorum"}}));
    c.publish(1, "", "q", "x");
    for (int i = 0; i < 21; ++i) {
        Delivery d = get_next(c);
        c.reject(1, d.delivery_tag(), true);
        if (i < 20) CHECK(b.queue("q")->message_count() == 1);
    }
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(b.queue("dlq")->message_count() == 1);
}

TEST_CASE("a queue without x-delivery-limit redelivers without end", "[delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    setup(c, {});
    c.publish(1, "", "q", "x");
    for (int i = 0; i < 50; ++i) {
        Delivery d = get_next(c);
        c.reject(1, d.delivery_tag(), true);
    }
    CHECK(b.queue("q")->message_count() == 1);
    CHECK(b.queue("dlq")->message_count() == 0);
}
