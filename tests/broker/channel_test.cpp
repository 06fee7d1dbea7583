// Channel methods through the connection: consumers (round-robin, priorities, single active
// consumer, exclusive, cancel, server cancel), basic.get, no-ack, publish checks and the
// channel-level errors, with RabbitMQ 3.10's codes and texts (docs/rabbitmq-reference.md).
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

std::vector<std::string> bodies(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (auto& d : ds) out.push_back(d.body);
    return out;
}

std::vector<std::string> bodies_for(const std::vector<Delivery>& ds, std::string_view tag) {
    std::vector<std::string> out;
    for (auto& d : ds)
        if (d.consumer_tag() == tag) out.push_back(d.body);
    return out;
}

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

void expect_connection_close(TestClient& c, std::uint16_t code, std::string_view text, MethodId method) {
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == code);
    CHECK(text_of(*close) == text);
    CHECK(close->class_id == method.class_id);
    CHECK(close->method_id == method.method_id);
}

BasicProperties with_priority(std::uint8_t p) {
    BasicProperties props;
    props.priority = p;
    props.set_flag(property_flag::priority);
    return props;
}

}  // namespace

// ---- consumers ------------------------------------------------------------------------------

TEST_CASE("consume-ok comes before the first delivery and carries the tag", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "x");
    c.frames();
    c.consume(1, "q", "my-tag");
    auto frames = c.frames();
    REQUIRE(frames.size() >= 2);
    auto ok = frames[0].as<BasicConsumeOk>();
    REQUIRE(ok);
    CHECK(ok->consumer_tag.view() == "my-tag");
    auto deliver = frames[1].as<BasicDeliver>();
    REQUIRE(deliver);
    CHECK(deliver->consumer_tag.view() == "my-tag");
    CHECK(deliver->delivery_tag == 1);
    CHECK_FALSE(deliver->redelivered);
    CHECK(deliver->exchange.view() == "");
    CHECK(deliver->routing_key.view() == "q");
}

TEST_CASE("a consumer without a tag gets amq.ctag- and 22 characters", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q");
    auto ok = c.take<BasicConsumeOk>();
    REQUIRE(ok.size() == 1);
    std::string tag(ok[0].consumer_tag.view());
    CHECK(tag.size() == 31);
    CHECK(tag.starts_with("amq.ctag-"));
}

TEST_CASE("two consumers receive messages round-robin", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q");
    c.consume(1, "q", "a");
    c.consume(2, "q", "b");
    c.publish_n(1, "", "q", 6);
    auto got = c.deliveries();
    REQUIRE(got.size() == 6);
    CHECK(bodies_for(got, "a") == std::vector<std::string>{"m1", "m3", "m5"});
    CHECK(bodies_for(got, "b") == std::vector<std::string>{"m2", "m4", "m6"});
}

TEST_CASE("round-robin skips a consumer without credit", "[consume][prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.qos(1, 1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "a");
    c.consume(2, "q", "b");
    c.publish_n(1, "", "q", 5);
    auto got = c.deliveries();
    CHECK(bodies_for(got, "a") == std::vector<std::string>{"m1"});
    CHECK(bodies_for(got, "b") == std::vector<std::string>{"m2", "m3", "m4", "m5"});
}

TEST_CASE("a consumer with a higher x-priority is served first while it has credit", "[consume][priority]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.qos(2, 2);
    c.declare_queue(1, "q");
    c.consume(1, "q", "low", false, table({{"x-priority", std::int32_t{1}}}));
    c.consume(2, "q", "high", false, table({{"x-priority", std::int32_t{10}}}));
    c.publish_n(1, "", "q", 5);
    auto got = c.deliveries();
    CHECK(bodies_for(got, "high") == std::vector<std::string>{"m1", "m2"});
    CHECK(bodies_for(got, "low") == std::vector<std::string>{"m3", "m4", "m5"});
}

TEST_CASE("consumers of equal priority above the rest share round-robin", "[consume][priority]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "low", false, table({{"x-priority", std::int32_t{-5}}}));
    c.consume(1, "q", "a", false, table({{"x-priority", std::int32_t{3}}}));
    c.consume(1, "q", "b", false, table({{"x-priority", std::int64_t{3}}}));
    c.publish_n(1, "", "q", 4);
    auto got = c.deliveries();
    CHECK(bodies_for(got, "low").empty());
    CHECK(bodies_for(got, "a").size() == 2);
    CHECK(bodies_for(got, "b").size() == 2);
}

TEST_CASE("single active consumer: only the first consumer receives until it goes", "[consume][sac]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q", table({{"x-single-active-consumer", true}}));
    c.consume(1, "q", "first");
    c.consume(2, "q", "second");
    c.publish_n(1, "", "q", 3);
    auto got = c.deliveries();
    CHECK(bodies_for(got, "first") == std::vector<std::string>{"m1", "m2", "m3"});
    CHECK(bodies_for(got, "second").empty());
    c.cancel(1, "first");
    c.publish_n(1, "", "q", 1);
    got = c.deliveries();
    CHECK(bodies_for(got, "second") == std::vector<std::string>{"m1"});
}

TEST_CASE("single active consumer: a full active consumer does not pass messages on", "[consume][sac]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.qos(1, 1);
    c.declare_queue(1, "q", table({{"x-single-active-consumer", true}}));
    c.consume(1, "q", "first");
    c.consume(2, "q", "second");
    c.publish_n(1, "", "q", 3);
    auto got = c.deliveries();
    CHECK(bodies(got) == std::vector<std::string>{"m1"});
    CHECK(b.queue("q")->message_count() == 2);
    // The active consumer's channel closes: its unacked message goes back, the next takes over.
    c.close_channel(1);
    got = c.deliveries();
    CHECK(bodies_for(got, "second") == std::vector<std::string>{"m1", "m2", "m3"});
}

TEST_CASE("an exclusive consumer refuses other consumers and needs an idle queue", "[consume][exclusive]") {
    const std::string text = "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use";
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q");
    SECTION("beside an exclusive consumer") {
        c.consume(1, "q", "x", false, {}, true);
        c.consume(2, "q", "other");
        expect_channel_close(c, 2, 403, text, {60, 20});
    }
    SECTION("exclusive beside another consumer") {
        c.consume(1, "q", "other");
        c.consume(2, "q", "x", false, {}, true);
        expect_channel_close(c, 2, 403, text, {60, 20});
    }
    SECTION("after the exclusive consumer is cancelled") {
        c.consume(1, "q", "x", false, {}, true);
        c.cancel(1, "x");
        c.consume(2, "q", "other");
        CHECK(c.take<BasicConsumeOk>().size() == 2);
        CHECK_FALSE(c.channel_close(2));
    }
}

TEST_CASE("basic.get works on a queue with an exclusive consumer", "[consume][exclusive]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.qos(1, 1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "x", false, {}, true);
    c.publish_n(1, "", "q", 2);
    c.deliveries();
    c.get(2, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "m2");
    CHECK_FALSE(c.channel_close(2));
}

TEST_CASE("a duplicate consumer tag on one channel closes the connection with 530", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q");
    c.consume(2, "q", "dup");
    c.consume(1, "q", "dup");
    CHECK(c.take<BasicConsumeOk>().size() == 2);  // the same tag on another channel is fine
    c.consume(1, "q", "dup");
    expect_connection_close(c, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'", {60, 20});
}

TEST_CASE("consuming from a missing queue gets 404", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.consume(1, "nope");
    expect_channel_close(c, 1, 404, "NOT_FOUND - no queue 'nope' in vhost '/'", {60, 20});
}

TEST_CASE("basic.cancel stops deliveries and echoes the tag", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "t");
    c.publish_n(1, "", "q", 1);
    CHECK(c.deliveries().size() == 1);
    c.cancel(1, "t");
    auto ok = c.take<BasicCancelOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].consumer_tag.view() == "t");
    c.publish_n(1, "", "q", 2);
    CHECK(c.deliveries().empty());
    CHECK(b.queue("q")->message_count() == 2);
}

TEST_CASE("basic.cancel of an unknown tag gets cancel-ok", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.cancel(1, "never");
    auto ok = c.take<BasicCancelOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].consumer_tag.view() == "never");
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("messages unacked by a cancelled consumer stay unacked on the channel", "[consume][ack]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "t");
    c.publish_n(1, "", "q", 2);
    auto got = c.deliveries();
    REQUIRE(got.size() == 2);
    c.cancel(1, "t");
    CHECK(b.queue("q")->message_count() == 0);
    c.ack(1, got[1].delivery_tag());
    c.reject(1, got[0].delivery_tag(), true);
    CHECK_FALSE(c.channel_close(1));
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("deleting a queue sends basic.cancel to consumer_cancel_notify clients", "[consume][cancel]") {
    TestBroker b;
    TestClient notified(b);
    TestClient plain(b, true, true, {"publisher_confirms"});
    notified.open_channel(1);
    plain.open_channel(1);
    notified.declare_queue(1, "q");
    notified.consume(1, "q", "n");
    plain.consume(1, "q", "p");
    notified.frames();
    plain.frames();
    TestClient admin(b);
    admin.open_channel(1);
    admin.delete_queue(1, "q");
    auto cancels = notified.take<BasicCancel>();
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].consumer_tag.view() == "n");
    CHECK(cancels[0].nowait);
    CHECK(plain.take<BasicCancel>().empty());
    CHECK_FALSE(notified.channel_close(1));
    CHECK_FALSE(plain.channel_close(1));
    // The consumer is gone from the channel: its tag can be used again.
    notified.declare_queue(1, "q");
    notified.consume(1, "q", "n");
    CHECK(notified.take<BasicConsumeOk>().size() == 1);
    CHECK_FALSE(notified.connection_close());
}

TEST_CASE("deleting a queue from the consumer's own channel sends basic.cancel too", "[consume][cancel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "t");
    c.delete_queue(1, "q");
    CHECK(c.take<BasicCancel>().size() == 1);
    CHECK(c.take<QueueDeleteOk>().size() == 1);
}

TEST_CASE("closing a connection deletes its exclusive queues and leaves other consumers alone",
          "[consume][cancel]") {
    TestBroker b;
    TestClient consumer(b);
    consumer.open_channel(1);
    {
        TestClient owner(b);
        owner.open_channel(1);
        owner.declare_queue(1, "q", {}, false, true);
        // Another connection cannot consume an exclusive queue; a consumer on the owner goes
        // with it. The survivor here is another connection's consumer on a different queue.
        consumer.declare_queue(1, "other");
        consumer.consume(1, "other", "t");
        owner.close_connection();
    }
    CHECK(b.queue("q") == nullptr);
    CHECK(consumer.take<BasicCancel>().empty());
    CHECK(b.queue("other")->consumer_count() == 1);
}

// ---- basic.get ------------------------------------------------------------------------------

TEST_CASE("basic.get-ok carries the number of messages left", "[get]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    std::vector<std::uint32_t> counts;
    for (int i = 0; i < 3; ++i) {
        c.get(1, "q", true);
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        counts.push_back(got[0].method.as<BasicGetOk>()->message_count);
        CHECK(got[0].body == "m" + std::to_string(i + 1));
    }
    CHECK(counts == std::vector<std::uint32_t>{2, 1, 0});
}

TEST_CASE("basic.get on an empty queue gets get-empty", "[get]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.get(1, "q");
    auto empty = c.take<BasicGetEmpty>();
    REQUIRE(empty.size() == 1);
    CHECK(empty[0].cluster_id.view() == "");
    CHECK(c.deliveries().empty());
}

TEST_CASE("basic.get on a missing queue gets 404", "[get]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.get(1, "nope");
    expect_channel_close(c, 1, 404, "NOT_FOUND - no queue 'nope' in vhost '/'", {60, 70});
}

TEST_CASE("basic.get without no_ack leaves the message unacked until acked", "[get][ack]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 1);
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(c.connection().channel(1)->unacked_count() == 1);
    c.ack(1, got[0].delivery_tag());
    CHECK(c.connection().channel(1)->unacked_count() == 0);
    CHECK_FALSE(c.channel_close(1));
}

// ---- no-ack ---------------------------------------------------------------------------------

TEST_CASE("a no-ack consumer gets everything regardless of prefetch and nothing is unacked", "[consume][no_ack]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 5);
    c.consume(1, "q", "t", true);
    auto got = c.deliveries();
    CHECK(got.size() == 5);
    CHECK(c.connection().channel(1)->unacked_count() == 0);
    CHECK(b.queue("q")->message_count() == 0);
    // Acking a no-ack delivery is an unknown tag.
    c.ack(1, got[0].delivery_tag());
    expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - unknown delivery tag 1", {60, 80});
}

TEST_CASE("closing a no-ack consumer's channel loses nothing that was not delivered", "[consume][no_ack]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "t", true);
    c.publish_n(1, "", "q", 2);
    CHECK(c.deliveries().size() == 2);
    c.close_channel(1);
    CHECK(b.queue("q")->message_count() == 0);
}

// ---- priority queues ------------------------------------------------------------------------

TEST_CASE("a priority queue delivers higher priorities first, capped at x-max-priority", "[queue][priority]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-max-priority", std::int32_t{5}}}));
    for (std::uint8_t p : {1, 5, 3, 9}) c.publish(1, "", "q", "p" + std::to_string(p), with_priority(p));
    c.consume(1, "q", "t", true);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"p5", "p9", "p3", "p1"});
}

// ---- qos and other channel errors -----------------------------------------------------------

TEST_CASE("basic.qos with prefetch_size closes the connection with 540", "[channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, BasicQos{1000, 0, false});
    expect_connection_close(c, 540, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)", {60, 10});
}

TEST_CASE("basic.qos global gets qos-ok", "[channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 5, true);
    CHECK(c.take<BasicQosOk>().size() == 1);
}

TEST_CASE("basic.recover with requeue=false closes the connection with 540", "[channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, BasicRecover{false});
    expect_connection_close(c, 540, "NOT_IMPLEMENTED - requeue=false", {60, 110});
}

// ---- publish checks -------------------------------------------------------------------------

TEST_CASE("publishing with immediate=true closes the connection with 540", "[publish]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    BasicPublish p;
    p.routing_key = "q";
    p.immediate = true;
    c.send(1, p);
    expect_connection_close(c, 540, "NOT_IMPLEMENTED - immediate=true", {60, 40});
}

TEST_CASE("publishing to a missing exchange gets 404", "[publish]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.publish(1, "nope", "k", "x");
    expect_channel_close(c, 1, 404, "NOT_FOUND - no exchange 'nope' in vhost '/'", {60, 40});
}

TEST_CASE("publishing to an internal exchange gets 403", "[publish]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    ExchangeDeclare d;
    d.exchange = "x";
    d.type = "direct";
    d.internal = true;
    c.send(1, d);
    c.publish(1, "x", "k", "x");
    expect_channel_close(c, 1, 403, "ACCESS_REFUSED - cannot publish to internal exchange 'x' in vhost '/'", {60, 40});
}

TEST_CASE("a body above max_message_size gets 406", "[publish]") {
    Config config;
    config.max_message_size = 1000;
    TestBroker b(config);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", std::string(1001, 'x'));
    expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000",
                         {60, 40});
    CHECK(b.queue("q")->message_count() == 0);
    c.close_ok(1);
    c.open_channel(1);
    c.publish(1, "", "q", std::string(1000, 'x'));
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a user_id property other than the login gets 406", "[publish]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    BasicProperties props;
    props.user_id = "someoneelse";
    props.set_flag(property_flag::user_id);
    c.publish(1, "", "q", "x", props);
    expect_channel_close(c, 1, 406,
                         "PRECONDITION_FAILED - user_id property set to 'someoneelse' but authenticated user was 'guest'",
                         {60, 40});
    CHECK(b.queue("q")->message_count() == 0);
    c.close_ok(1);
    c.open_channel(1);
    props.user_id = "guest";
    c.publish(1, "", "q", "x", props);
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("an expiration that is not a number gets 406", "[publish][ttl]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    BasicProperties props;
    props.set_flag(property_flag::expiration);
    SECTION("text") {
        props.expiration = "abc";
        c.publish(1, "", "q", "x", props);
        expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - invalid expiration 'abc': no_integer", {60, 40});
    }
    SECTION("negative") {
        props.expiration = "-1";
        c.publish(1, "", "q", "x", props);
        expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}", {60, 40});
    }
    CHECK(b.queue("q")->message_count() == 0);
}

TEST_CASE("the channel keeps working after a publish to a missing exchange is refused elsewhere", "[publish]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(2, "q");
    c.publish(1, "nope", "k", "x");
    REQUIRE(c.channel_close(1));
    c.publish(2, "", "q", "ok");
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a message is published with the properties it was sent with", "[publish]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    BasicProperties props;
    props.content_type = "text/plain";
    props.correlation_id = "abc";
    props.delivery_mode = 2;
    ByteBuffer headers = encode_table_body(table({{"h", std::int32_t{7}}}));
    props.headers = TableView::trusted(headers.span());
    props.set_flag(property_flag::content_type);
    props.set_flag(property_flag::correlation_id);
    props.set_flag(property_flag::delivery_mode);
    props.set_flag(property_flag::headers);
    c.publish(1, "", "q", "body", props);
    c.consume(1, "q", "t", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    ByteBuffer expected;
    encode_properties(expected, props);
    CHECK(got[0].properties_bytes == std::vector<std::byte>(expected.span().begin(), expected.span().end()));
    CHECK(got[0].body == "body");
}

TEST_CASE("a body larger than frame_max arrives in several body frames", "[publish]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 4096, 0));
    c.open_channel(1);
    c.declare_queue(1, "q");
    std::string big(20000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    c.publish(1, "", "q", big);
    c.consume(1, "q", "t", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == big);
}

TEST_CASE("no_local is ignored: a connection receives its own messages", "[consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    BasicConsume consume;
    consume.queue = "q";
    consume.consumer_tag = "t";
    consume.no_local = true;
    c.send(1, consume);
    c.publish(1, "", "q", "mine");
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"mine"});
}

// ---- direct reply-to ------------------------------------------------------------------------

TEST_CASE("direct reply-to: a request's reply reaches the requester's reply consumer", "[reply_to]") {
    TestBroker b;
    TestClient client(b);
    TestClient server(b);
    client.open_channel(1);
    server.open_channel(1);
    server.declare_queue(1, "rpc");
    server.consume(1, "rpc", "srv", true);
    client.consume(1, "amq.rabbitmq.reply-to", "replies", true);
    REQUIRE(client.take<BasicConsumeOk>().size() == 1);

    BasicProperties props;
    props.reply_to = "amq.rabbitmq.reply-to";
    props.set_flag(property_flag::reply_to);
    client.publish(1, "", "rpc", "request", props);
    auto requests = server.deliveries();
    REQUIRE(requests.size() == 1);
    std::string reply_to(requests[0].properties().reply_to);
    CHECK(reply_to.starts_with("amq.rabbitmq.reply-to."));

    server.publish(1, "", reply_to, "response");
    auto replies = client.deliveries();
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].body == "response");
    CHECK(replies[0].consumer_tag() == "replies");
    CHECK(replies[0].routing_key() == reply_to);
    CHECK(replies[0].exchange() == "");
}

TEST_CASE("direct reply-to: the reply consumer must be no-ack", "[reply_to]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.consume(1, "amq.rabbitmq.reply-to", "replies", false);
    expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge", {60, 20});
}

TEST_CASE("direct reply-to: a request without a reply consumer gets 406", "[reply_to]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "rpc");
    BasicProperties props;
    props.reply_to = "amq.rabbitmq.reply-to";
    props.set_flag(property_flag::reply_to);
    c.publish(1, "", "rpc", "request", props);
    expect_channel_close(c, 1, 406, "PRECONDITION_FAILED - fast reply consumer does not exist", {60, 40});
}

TEST_CASE("direct reply-to: a mandatory reply to an unknown name is returned", "[reply_to]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.publish(1, "", "amq.rabbitmq.reply-to.bogus", "x", {}, true);
    auto returns = c.take<BasicReturn>();
    REQUIRE(returns.size() == 1);
    CHECK(returns[0].reply_code == 312);
    c.publish(1, "", "amq.rabbitmq.reply-to.bogus", "x");
    CHECK(c.take<BasicReturn>().empty());
    CHECK_FALSE(c.channel_close(1));
}

// RabbitMQ 3.10 answers a passive declare of the pseudo-queue with declare-ok
// (message_count 0, consumer_count 1), and so does Warren.
TEST_CASE("direct reply-to: a passive declare of the reply queue succeeds", "[reply_to]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.consume(1, "amq.rabbitmq.reply-to", "replies", true);
    QueueDeclare d;
    d.queue = "amq.rabbitmq.reply-to";
    d.passive = true;
    c.send(1, d);
    auto ok = c.take<QueueDeclareOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].consumer_count == 1);
    CHECK_FALSE(c.channel_close(1));
}

// ---- consumer timeout -----------------------------------------------------------------------

// DECISIONS.md: a delivery unacknowledged for consumer_timeout_ms cancels only its consumer
// and requeues its messages.
TEST_CASE("a consumer that does not ack within consumer_timeout_ms is cancelled", "[consume][timeout]") {
    Config config;
    config.consumer_timeout_ms = 1000;
    TestBroker b(config);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "x");
    c.consume(1, "q", "slow");
    REQUIRE(c.deliveries().size() == 1);
    b.advance(std::chrono::milliseconds(1001));
    auto cancels = c.take<BasicCancel>();
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].consumer_tag.view() == "slow");
    CHECK(b.queue("q")->message_count() == 1);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("a timed-out consumer of a client without consumer_cancel_notify has its channel closed with 406",
          "[consume][timeout]") {
    Config config;
    config.consumer_timeout_ms = 1000;
    TestBroker b(config);
    TestClient c(b, true, true, {});
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "x");
    c.consume(1, "q", "slow");
    REQUIRE(c.deliveries().size() == 1);
    b.advance(std::chrono::milliseconds(999));
    CHECK_FALSE(c.channel_close(1));
    b.advance(std::chrono::milliseconds(2));
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(close->reply_text.view() ==
          "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 1000 ms. This "
          "timeout value can be configured, see consumers doc guide to learn more");
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a consumer that acks in time is not cancelled", "[consume][timeout]") {
    Config config;
    config.consumer_timeout_ms = 1000;
    TestBroker b(config);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.qos(1, 1);
    c.consume(1, "q", "steady");
    auto first = c.deliveries();
    REQUIRE(first.size() == 1);
    b.advance(std::chrono::milliseconds(600));
    c.ack(1, first[0].delivery_tag());
    auto second = c.deliveries();
    REQUIRE(second.size() == 1);
    b.advance(std::chrono::milliseconds(600));
    CHECK(c.take<BasicCancel>().empty());
    b.advance(std::chrono::milliseconds(500));
    CHECK(c.take<BasicCancel>().size() == 1);
}
