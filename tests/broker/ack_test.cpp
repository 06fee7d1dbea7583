// basic.ack, nack, reject and recover through the connection: the unacked ledger, RabbitMQ's
// "unknown delivery tag" errors, and requeueing to the original position with redelivered set.
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

std::vector<bool> redelivered(const std::vector<Delivery>& ds) {
    std::vector<bool> out;
    for (auto& d : ds) out.push_back(d.redelivered());
    return out;
}

void expect_unknown_tag(TestClient& c, std::uint64_t tag, MethodId method) {
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(text_of(*close) == "PRECONDITION_FAILED - unknown delivery tag " + std::to_string(tag));
    CHECK(close->class_id == method.class_id);
    CHECK(close->method_id == method.method_id);
    CHECK_FALSE(c.connection_close());
}

// A channel 1 consumer "t" on queue "q" that has received m1..mN.
std::vector<Delivery> consume_n(TestClient& c, int n, std::uint16_t prefetch = 0) {
    c.open_channel(1);
    if (prefetch) c.qos(1, prefetch);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", n);
    c.consume(1, "q", "t");
    return c.deliveries();
}

std::size_t unacked(TestClient& c) { return c.connection().channel(1)->unacked_count(); }

}  // namespace

TEST_CASE("delivery tags on a channel count up from 1", "[ack]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 3);
    REQUIRE(got.size() == 3);
    CHECK(got[0].delivery_tag() == 1);
    CHECK(got[1].delivery_tag() == 2);
    CHECK(got[2].delivery_tag() == 3);
    CHECK(unacked(c) == 3);
}

TEST_CASE("an ack settles one delivery", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 3);
    c.ack(1, 2);
    CHECK(unacked(c) == 2);
    c.ack(1, 1);
    c.ack(1, 3);
    CHECK(unacked(c) == 0);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("ack multiple settles every delivery up to the tag", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 5);
    c.ack(1, 2);
    c.ack(1, 4, true);
    CHECK(unacked(c) == 1);
    c.ack(1, 5);
    CHECK(unacked(c) == 0);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("ack multiple with tag 0 settles everything outstanding", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 4);
    c.ack(1, 0, true);
    CHECK(unacked(c) == 0);
    c.ack(1, 0, true);  // nothing outstanding: still no error
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("acking an unknown tag gets 406 unknown delivery tag", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 2);
    SECTION("ack") {
        c.ack(1, 99);
        expect_unknown_tag(c, 99, {60, 80});
    }
    SECTION("ack multiple") {
        c.ack(1, 99, true);
        expect_unknown_tag(c, 99, {60, 80});
    }
    SECTION("ack tag 0 without multiple") {
        c.ack(1, 0);
        expect_unknown_tag(c, 0, {60, 80});
    }
    SECTION("reject") {
        c.reject(1, 7);
        expect_unknown_tag(c, 7, {60, 90});
    }
    SECTION("nack") {
        c.nack(1, 8);
        expect_unknown_tag(c, 8, {60, 120});
    }
}

TEST_CASE("acking a delivery twice gets 406 unknown delivery tag", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 2);
    c.ack(1, 1);
    c.ack(1, 1);
    expect_unknown_tag(c, 1, {60, 80});
}

TEST_CASE("acking a tag already covered by a multiple ack gets 406", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 3);
    c.ack(1, 3, true);
    c.ack(1, 2);
    expect_unknown_tag(c, 2, {60, 80});
}

TEST_CASE("a channel error from a bad ack requeues the channel's unacked messages", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 3);
    c.ack(1, 1);
    c.ack(1, 42);
    REQUIRE(c.channel_close(1));
    CHECK(b.queue("q")->message_count() == 2);
}

TEST_CASE("reject with requeue puts the message back at its original position, redelivered", "[ack]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 5, 3);
    REQUIRE(bodies(got) == std::vector<std::string>{"m1", "m2", "m3"});
    // Free no credit yet: reject m2 (it goes back in front of m4 and m5).
    c.cancel(1, "t");
    c.reject(1, got[1].delivery_tag(), true);
    c.get(1, "q", true);
    c.get(1, "q", true);
    auto again = c.deliveries();
    REQUIRE(again.size() == 2);
    CHECK(again[0].body == "m2");
    CHECK(again[0].redelivered());
    CHECK(again[1].body == "m4");
    CHECK_FALSE(again[1].redelivered());
}

TEST_CASE("requeued messages keep their order whatever order they are rejected in", "[ack]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 8, 5);
    REQUIRE(got.size() == 5);
    c.cancel(1, "t");
    c.reject(1, got[3].delivery_tag(), true);  // m4
    c.reject(1, got[1].delivery_tag(), true);  // m2
    c.nack(1, got[4].delivery_tag(), false, true);  // m5
    c.consume(1, "q", "t2", true);
    auto again = c.deliveries();
    CHECK(bodies(again) == std::vector<std::string>{"m2", "m4", "m5", "m6", "m7", "m8"});
    CHECK(redelivered(again) == std::vector<bool>{true, true, true, false, false, false});
}

TEST_CASE("nack multiple requeues every delivery up to the tag", "[ack]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 4);
    c.cancel(1, "t");
    c.nack(1, 3, true, true);
    CHECK(unacked(c) == 1);
    CHECK(b.queue("q")->message_count() == 3);
    c.consume(1, "q", "t2", true);
    auto again = c.deliveries();
    CHECK(bodies(again) == std::vector<std::string>{"m1", "m2", "m3"});
    CHECK(redelivered(again) == std::vector<bool>{true, true, true});
}

TEST_CASE("nack multiple with tag 0 requeues everything", "[ack]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 3);
    c.cancel(1, "t");
    c.nack(1, 0, true, true);
    CHECK(unacked(c) == 0);
    CHECK(b.queue("q")->message_count() == 3);
}

TEST_CASE("reject or nack without requeue and without a DLX drops the message", "[ack]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 3);
    c.reject(1, 1, false);
    c.nack(1, 3, true, false);
    CHECK(unacked(c) == 0);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("a requeued message is redelivered to a consumer with credit", "[ack]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 1, 1);
    REQUIRE(got.size() == 1);
    c.reject(1, got[0].delivery_tag(), true);
    auto again = c.deliveries();
    REQUIRE(again.size() == 1);
    CHECK(again[0].body == "m1");
    CHECK(again[0].redelivered());
    CHECK(again[0].delivery_tag() == 2);
}

TEST_CASE("unacked messages are requeued in order when the channel closes", "[ack]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(2);
    auto got = consume_n(c, 6, 4);
    REQUIRE(got.size() == 4);
    c.ack(1, 2);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"m5"});
    c.close_channel(1);
    CHECK(b.queue("q")->message_count() == 5);
    c.consume(2, "q", "t2", true);
    auto again = c.deliveries();
    CHECK(bodies(again) == std::vector<std::string>{"m1", "m3", "m4", "m5", "m6"});
    CHECK(redelivered(again) == std::vector<bool>{true, true, true, true, false});
}

TEST_CASE("unacked messages are requeued when the connection closes or is lost", "[ack]") {
    TestBroker b;
    TestClient other(b);
    other.open_channel(1);
    {
        TestClient c(b);
        auto got = consume_n(c, 3);
        REQUIRE(got.size() == 3);
        SECTION("connection.close") { c.close_connection(); }
        SECTION("transport lost") { c.lose_transport(); }
        SECTION("connection error") { c.send_raw(raw_frame(9, 0, "")); }
    }
    CHECK(b.queue("q")->message_count() == 3);
    other.consume(1, "q", "t", true);
    auto again = other.deliveries();
    CHECK(bodies(again) == std::vector<std::string>{"m1", "m2", "m3"});
    CHECK(redelivered(again) == std::vector<bool>{true, true, true});
}

TEST_CASE("basic.get deliveries are requeued too when the channel closes", "[ack][get]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.get(1, "q");
    c.deliveries();
    c.close_channel(1);
    CHECK(b.queue("q")->message_count() == 2);
}

TEST_CASE("basic.recover requeues every unacked delivery and answers recover-ok first", "[ack][recover]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 3);
    REQUIRE(got.size() == 3);
    c.ack(1, 2);
    c.frames();
    c.send(1, BasicRecover{true});
    auto frames = c.frames();
    REQUIRE(!frames.empty());
    CHECK(frames[0].as<BasicRecoverOk>());
    std::vector<std::uint64_t> tags;
    std::vector<bool> redelivered_flags;
    for (auto& f : frames)
        if (auto d = f.as<BasicDeliver>()) {
            tags.push_back(d->delivery_tag);
            redelivered_flags.push_back(d->redelivered);
        }
    CHECK(tags == std::vector<std::uint64_t>{4, 5});
    CHECK(redelivered_flags == std::vector<bool>{true, true});
}

TEST_CASE("basic.recover-async requeues without a reply", "[ack][recover]") {
    TestBroker b;
    TestClient c(b);
    consume_n(c, 2);
    c.send(1, BasicRecoverAsync{true});
    CHECK(c.take<BasicRecoverOk>().empty());
    auto again = c.deliveries();
    CHECK(bodies(again) == std::vector<std::string>{"m1", "m2"});
    CHECK(redelivered(again) == std::vector<bool>{true, true});
}

TEST_CASE("an ack frees prefetch credit for the next message", "[ack][prefetch]") {
    TestBroker b;
    TestClient c(b);
    auto got = consume_n(c, 3, 1);
    REQUIRE(bodies(got) == std::vector<std::string>{"m1"});
    c.ack(1, 1);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"m2"});
    c.reject(1, 2, false);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"m3"});
}
