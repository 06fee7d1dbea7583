// Publisher confirms through the connection: sequence numbers, acks merged per batch of input,
// basic.return before the confirm, nacks for refused publishes, and the mode-switch errors.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

// The broker's confirm-related frames on channel 1, in order: "ack 3", "ack 5+" (multiple),
// "nack 4", "return".
std::vector<std::string> confirm_events(TestClient& c) {
    std::vector<std::string> out;
    for (auto& f : c.frames()) {
        if (f.channel != 1) continue;
        if (auto a = f.as<BasicAck>())
            out.push_back("ack " + std::to_string(a->delivery_tag) + (a->multiple ? "+" : ""));
        else if (auto n = f.as<BasicNack>())
            out.push_back("nack " + std::to_string(n->delivery_tag) + (n->multiple ? "+" : ""));
        else if (f.as<BasicReturn>())
            out.push_back("return");
    }
    return out;
}

void select(TestClient& c) {
    c.open_channel(1);
    c.confirm_select(1);
    REQUIRE(c.take<ConfirmSelectOk>().size() == 1);
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
    std::vector<std::byte> out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

}  // namespace

TEST_CASE("each publish in its own batch is acked alone", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.frames();
    c.publish(1, "", "q", "a");
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 1"});
    c.publish(1, "", "q", "b");
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 2"});
}

TEST_CASE("publishes in one batch of input are acked with one multiple ack", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.frames();
    c.send_raw(concat({c.encode_publish(1, "", "q", "a"), c.encode_publish(1, "", "q", "b"),
                       c.encode_publish(1, "", "q", "c")}));
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 3+"});
    CHECK(b.queue("q")->message_count() == 3);
}

TEST_CASE("an unroutable publish is acked, not nacked", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.publish(1, "amq.direct", "nowhere", "x");
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 1"});
}

TEST_CASE("a mandatory return comes before its confirm", "[confirm][routing]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.publish(1, "amq.direct", "nowhere", "x", {}, true);
    CHECK(confirm_events(c) == std::vector<std::string>{"return", "ack 1"});
}

TEST_CASE("a publish refused by x-overflow reject-publish is nacked", "[confirm][maxlen]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q", table({{"x-max-length", std::int32_t{1}}, {"x-overflow", "reject-publish"}}));
    c.frames();
    c.publish(1, "", "q", "a");
    c.publish(1, "", "q", "b");
    auto events = c.frames();
    std::vector<std::string> seen;
    for (auto& f : events) {
        if (auto a = f.as<BasicAck>()) seen.push_back("ack " + std::to_string(a->delivery_tag));
        if (auto n = f.as<BasicNack>()) {
            seen.push_back("nack " + std::to_string(n->delivery_tag));
            CHECK(n->requeue);  // RabbitMQ's nack record defaults requeue to true
        }
    }
    CHECK(seen == std::vector<std::string>{"ack 1", "nack 2"});
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("acks before a nack in one batch are sent before it, in order", "[confirm][maxlen]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "full", table({{"x-max-length", std::int32_t{0}}, {"x-overflow", "reject-publish"}}));
    c.declare_queue(1, "q");
    c.frames();
    c.send_raw(concat({c.encode_publish(1, "", "q", "a"), c.encode_publish(1, "", "q", "b"),
                       c.encode_publish(1, "", "full", "c"), c.encode_publish(1, "", "q", "d")}));
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 2+", "nack 3", "ack 4"});
}

TEST_CASE("a publish that reaches one refusing queue among several is nacked", "[confirm][maxlen]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "full", table({{"x-max-length", std::int32_t{0}}, {"x-overflow", "reject-publish"}}));
    c.declare_queue(1, "q");
    c.bind_queue(1, "full", "amq.fanout", "");
    c.bind_queue(1, "q", "amq.fanout", "");
    c.frames();
    c.publish(1, "amq.fanout", "", "x");
    CHECK(confirm_events(c) == std::vector<std::string>{"nack 1"});
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a publish to a missing exchange in confirm mode closes the channel without a nack", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.publish(1, "nope", "k", "x");
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 404);
    CHECK(confirm_events(c).empty());
}

TEST_CASE("confirm.select twice is fine and the sequence continues", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "a");
    c.confirm_select(1);
    CHECK(c.take<ConfirmSelectOk>().size() == 1);
    c.frames();
    c.publish(1, "", "q", "b");
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 2"});
}

TEST_CASE("confirm.select with nowait gets no reply but confirms", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, ConfirmSelect{true});
    CHECK(c.take<ConfirmSelectOk>().empty());
    c.publish(1, "amq.direct", "k", "x");
    CHECK(confirm_events(c) == std::vector<std::string>{"ack 1"});
}

TEST_CASE("confirm.select after tx.select gets 406", "[confirm][tx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.tx_select(1);
    c.confirm_select(1);
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(text_of(*close) == "PRECONDITION_FAILED - cannot switch from tx to confirm mode");
    CHECK(close->class_id == 85);
    CHECK(close->method_id == 10);
}

TEST_CASE("tx.select after confirm.select gets 406", "[confirm][tx]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.tx_select(1);
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(text_of(*close) == "PRECONDITION_FAILED - cannot switch from confirm to tx mode");
    CHECK(close->class_id == 90);
    CHECK(close->method_id == 10);
}

TEST_CASE("confirms are per channel", "[confirm]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.open_channel(2);
    c.confirm_select(2);
    c.frames();
    c.publish(2, "amq.direct", "k", "x");
    c.publish(2, "amq.direct", "k", "y");
    c.publish(1, "amq.direct", "k", "z");
    std::vector<std::string> seen;
    for (auto& f : c.frames())
        if (auto a = f.as<BasicAck>()) seen.push_back(std::to_string(f.channel) + ":" + std::to_string(a->delivery_tag));
    CHECK(seen == std::vector<std::string>{"2:1", "2:2", "1:1"});
}

TEST_CASE("confirms of earlier publishes go out before the channel.close of a failing one", "[confirm]") {
    // One batch of input: an accepted publish, then one to an exchange that does not exist.
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.confirm_select(1);
    c.frames();
    auto batch = c.encode_publish(1, "", "q", "m");
    auto bad = c.encode_publish(1, "nope", "q", "m");
    batch.insert(batch.end(), bad.begin(), bad.end());
    c.send_raw(batch);
    auto frames = c.frames();
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].as<BasicAck>());
    CHECK(frames[1].as<ChannelClose>());
}
