// The core's cascades (requeue -> expire -> dead-letter -> route -> enqueue -> deliver), which
// run from the broker's dead-letter work list, never recursively into a container being walked;
// and the delivery boundary: a delivery that throws leaves the queue delivering.
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

FieldTable dead_letters_to(std::string_view target, FieldTable args = {}) {
    args.set("x-dead-letter-exchange", std::string(""));
    args.set("x-dead-letter-routing-key", std::string(target));
    return args;
}

std::vector<std::string> x_death_queues(const Delivery& d) {
    std::vector<std::string> out;
    FieldTable headers = d.headers();
    const FieldValue* v = headers.find("x-death");
    if (!v || !v->get_if<FieldArray>()) return out;
    for (const auto& item : v->get_if<FieldArray>()->items) {
        const FieldTable* death = item.get_if<FieldTable>();
        const FieldValue* q = death ? death->find("queue") : nullptr;
        out.push_back(q && q->as_string() ? *q->as_string() : "?");
    }
    return out;
}

// As the event loop does with an exception from its deferred work: it is logged and the loop
// carries on (with the old code, a delivery that threw escaped the broker this way).
template <class F>
void as_the_loop(F&& step) {
    try {
        step();
    } catch (const std::exception&) {
    }
}

}  // namespace

// The consumer timeout walks its channel's unacked ledger and requeues; a requeued message past
// its TTL is dead-lettered into a TTL-0 queue whose consumer is on the same channel, which means
// a delivery (a push onto that very ledger). That must not happen while the ledger is walked:
// the dead letters wait on the work list until the timer is done. (With the old recursion this
// pushed onto the deque being iterated: heap-use-after-free under ASan.)
TEST_CASE("a consumer timeout whose requeues dead-letter into a TTL-0 queue consumed on the same channel",
          "[cascade][timeout][ttl][dlx]") {
    Config config;
    config.consumer_timeout_ms = 5000;
    TestBroker b(config);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "zero", table({{"x-message-ttl", std::int32_t{0}}}));
    c.declare_queue(1, "work", dead_letters_to("zero", table({{"x-message-ttl", std::int32_t{1000}}})));
    c.consume(1, "zero", "z");
    c.consume(1, "work", "w");
    constexpr int n = 300;
    std::vector<std::byte> batch;
    for (int i = 0; i < n; ++i) {
        auto one = c.encode_publish(1, "", "work", "m" + std::to_string(i));
        batch.insert(batch.end(), one.begin(), one.end());
    }
    c.send_raw(batch);
    REQUIRE(c.deliveries().size() == n);
    REQUIRE(c.connection().channel(1)->unacked_count() == n);

    b.advance(5000ms);
    auto cancels = c.take<BasicCancel>();
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].consumer_tag.view() == "w");
    auto got = c.deliveries();
    REQUIRE(got.size() == n);
    for (int i = 0; i < n; ++i) {
        CHECK(got[i].consumer_tag() == "z");
        CHECK(got[i].body == "m" + std::to_string(i));
        CHECK(x_death_queues(got[i]) == std::vector<std::string>{"work"});
    }
    CHECK(b.queue("work")->message_count() == 0);
    CHECK(b.queue("zero")->message_count() == 0);
    CHECK(c.connection().channel(1)->unacked_count() == n);
}

// requeue -> delivery limit -> dead-letter -> a full queue drops its head -> dead-letter ->
// a TTL-0 queue with no consumer expires it -> dead-letter -> a consumer on the same channel.
TEST_CASE("a nack cascades through delivery limit, maxlen and TTL 0 to a consumer on the same channel",
          "[cascade][dlx][ttl][maxlen][delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "d");
    c.declare_queue(1, "c", dead_letters_to("d", table({{"x-message-ttl", std::int32_t{0}}})));
    c.declare_queue(1, "b", dead_letters_to("c", table({{"x-max-length", std::int32_t{1}}})));
    c.declare_queue(1, "a", dead_letters_to("b", table({{"x-delivery-limit", std::int32_t{0}}})));
    c.publish(1, "", "b", "old");
    c.publish(1, "", "a", "new");
    c.get(1, "a");
    auto taken = c.deliveries();
    REQUIRE(taken.size() == 1);
    c.consume(1, "d", "end");
    c.frames();

    c.nack(1, taken[0].delivery_tag(), false, true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "old");
    CHECK(got[0].consumer_tag() == "end");
    CHECK(x_death_queues(got[0]) == std::vector<std::string>{"c", "b"});
    REQUIRE(b.queue("b")->message_count() == 1);
    c.get(1, "b", true);
    auto in_b = c.deliveries();
    REQUIRE(in_b.size() == 1);
    CHECK(in_b[0].body == "new");
    CHECK(x_death_queues(in_b[0]) == std::vector<std::string>{"a"});
}

// A long chain: each hop used to be a level of recursion (enqueue -> expire -> dead-letter ->
// enqueue ...); now each is one item of the work list.
TEST_CASE("a dead letter runs down a chain of forty TTL-0 queues", "[cascade][dlx][ttl]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    constexpr int hops = 40;
    c.declare_queue(1, "end");
    for (int i = hops - 1; i >= 0; --i) {
        std::string next = i == hops - 1 ? "end" : "hop" + std::to_string(i + 1);
        c.declare_queue(1, "hop" + std::to_string(i),
                        dead_letters_to(next, table({{"x-message-ttl", std::int32_t{0}}})));
    }
    c.consume(1, "end", "end");
    c.frames();
    c.publish(1, "", "hop0", "far");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "far");
    auto queues = x_death_queues(got[0]);
    REQUIRE(queues.size() == hops);
    CHECK(queues.front() == "hop" + std::to_string(hops - 1));
    CHECK(queues.back() == "hop0");
    CHECK(b.broker->pending_dead_letters() == 0);
}

// The dead letters of a channel's requeues are routed after the channel let go of its
// consumers, when an auto-delete queue may be gone: they keep the names they need.
TEST_CASE("requeues at channel close dead-letter even when their auto-delete queue goes with the channel",
          "[cascade][dlx][delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(2, "dlq");
    c.declare_queue(1, "ad", dead_letters_to("dlq", table({{"x-delivery-limit", std::int32_t{0}}})), false, false,
                    true);
    c.publish(2, "", "ad", "m");
    c.consume(1, "ad", "t");
    REQUIRE(c.deliveries().size() == 1);
    c.close_channel(1);
    CHECK(b.queue("ad") == nullptr);
    c.get(2, "dlq", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(x_death_queues(got[0]) == std::vector<std::string>{"ad"});
}

// A delivery that throws (here the transport fails to take the output, as it would out of
// memory) used to leave the queue's dispatching flag set, so it never delivered again, and lost
// the message. Now that consumer's connection alone is closed (541), the message stays in the
// queue, and the queue delivers to the next consumer.
TEST_CASE("a delivery that throws closes only its connection; the message stays and the queue goes on",
          "[cascade][consume]") {
    TestBroker b;
    TestClient failing(b), publisher(b), other(b);
    failing.open_channel(1);
    failing.declare_queue(1, "q");
    failing.consume(1, "q", "f");
    failing.frames();
    publisher.open_channel(1);
    failing.fail_next_output_ready();
    as_the_loop([&] { publisher.publish(1, "", "q", "m1"); });
    b.settle();
    CHECK(b.queue("q")->message_count() == 1);
    auto close = failing.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 541);
    CHECK(failing.deliveries().empty());

    other.open_channel(1);
    other.consume(1, "q", "o");
    auto got = other.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "m1");
    CHECK_FALSE(got[0].redelivered());
    publisher.publish(1, "", "q", "m2");
    CHECK(other.deliveries().size() == 1);
}

// The same for basic.get: get-ok is all or nothing.
TEST_CASE("a basic.get whose reply throws leaves the message in the queue", "[cascade][get]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "m");
    c.frames();
    c.fail_next_output_ready();
    CHECK_THROWS(c.get(1, "q"));
    CHECK(b.queue("q")->message_count() == 1);
    CHECK(c.connection().channel(1)->unacked_count() == 0);
    CHECK(c.frames().empty());
}

// A direct reply-to delivery that throws is the requester's failure, not the publisher's.
TEST_CASE("a direct reply-to delivery that throws closes the requester, not the publisher", "[cascade][reply-to]") {
    TestBroker b;
    TestClient requester(b), server(b);
    requester.open_channel(1);
    requester.declare_queue(1, "rpc");
    requester.consume(1, "amq.rabbitmq.reply-to", "replies", true);
    BasicProperties props;
    props.reply_to = "amq.rabbitmq.reply-to";
    props.set_flag(property_flag::reply_to);
    requester.publish(1, "", "rpc", "request", props);
    requester.frames();
    server.open_channel(1);
    server.get(1, "rpc", true);
    const std::string reply_to(server.deliveries().at(0).properties().reply_to);

    requester.fail_next_output_ready();
    server.publish(1, "", reply_to, "reply", {}, true);
    CHECK(server.take<BasicReturn>().size() == 1);
    CHECK_FALSE(server.channel_close(1));
    CHECK_FALSE(server.transport_closed());
    auto close = requester.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 541);
}
