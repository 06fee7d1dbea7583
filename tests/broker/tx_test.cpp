// Transactions through the connection: publishes and acks held until tx.commit, dropped or
// restored by tx.rollback, and the errors for a channel that is not transactional.
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

void select(TestClient& c) {
    c.open_channel(1);
    c.tx_select(1);
    REQUIRE(c.take<TxSelectOk>().size() == 1);
}

std::vector<std::string> bodies(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (auto& d : ds) out.push_back(d.body);
    return out;
}

}  // namespace

TEST_CASE("publishes in a transaction reach the queue at commit", "[tx]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    CHECK(b.queue("q")->message_count() == 0);
    c.tx_commit(1);
    CHECK(c.take<TxCommitOk>().size() == 1);
    CHECK(b.queue("q")->message_count() == 3);
    c.get(1, "q", true);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"m1"});
}

TEST_CASE("tx.rollback drops the publishes", "[tx]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.tx_rollback(1);
    CHECK(c.take<TxRollbackOk>().size() == 1);
    c.tx_commit(1);
    CHECK(c.take<TxCommitOk>().size() == 1);
    CHECK(b.queue("q")->message_count() == 0);
}

TEST_CASE("a transaction goes on after commit: the next publishes wait for the next commit", "[tx]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "a");
    c.tx_commit(1);
    c.publish(1, "", "q", "b");
    CHECK(b.queue("q")->message_count() == 1);
    c.tx_commit(1);
    CHECK(b.queue("q")->message_count() == 2);
}

TEST_CASE("acks in a transaction settle at commit", "[tx][ack]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.tx_commit(1);
    c.consume(1, "q", "t");
    auto got = c.deliveries();
    REQUIRE(got.size() == 2);
    c.ack(1, 0, true);
    c.close_channel(1);  // no commit: the acks are void, both messages come back
    CHECK(b.queue("q")->message_count() == 2);

    select(c);
    c.consume(1, "q", "t");
    got = c.deliveries();
    REQUIRE(got.size() == 2);
    c.ack(1, got[0].delivery_tag());
    c.tx_commit(1);
    c.close_channel(1);
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("tx.rollback restores acked deliveries to the unacked ledger", "[tx][ack]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.tx_commit(1);
    c.consume(1, "q", "t");
    auto got = c.deliveries();
    REQUIRE(got.size() == 3);
    c.ack(1, 2, true);
    CHECK(c.connection().channel(1)->unacked_count() == 1);
    c.tx_rollback(1);
    CHECK(c.connection().channel(1)->unacked_count() == 3);
    // The rolled-back tags are live again: acking them works.
    c.ack(1, 1);
    c.ack(1, 2);
    c.tx_commit(1);
    CHECK(c.connection().channel(1)->unacked_count() == 1);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("a nack with requeue in a transaction requeues at commit", "[tx][ack]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 1);
    c.tx_commit(1);
    c.get(1, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.nack(1, got[0].delivery_tag(), false, true);
    CHECK(b.queue("q")->message_count() == 0);
    c.tx_commit(1);
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a mandatory return in a transaction comes at commit, before commit-ok", "[tx][routing]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.publish(1, "amq.direct", "nowhere", "x", {}, true);
    CHECK(c.take<BasicReturn>().empty());
    c.tx_commit(1);
    std::vector<std::string> seen;
    for (auto& f : c.frames()) {
        if (f.as<BasicReturn>()) seen.push_back("return");
        if (f.as<TxCommitOk>()) seen.push_back("commit-ok");
    }
    CHECK(seen == std::vector<std::string>{"return", "commit-ok"});
}

TEST_CASE("tx.commit and tx.rollback on a channel that is not transactional get 406", "[tx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    SECTION("commit") {
        c.tx_commit(1);
        auto close = c.channel_close(1);
        REQUIRE(close);
        CHECK(close->reply_code == 406);
        CHECK(text_of(*close) == "PRECONDITION_FAILED - channel is not transactional");
        CHECK(close->class_id == 90);
        CHECK(close->method_id == 20);
    }
    SECTION("rollback") {
        c.tx_rollback(1);
        auto close = c.channel_close(1);
        REQUIRE(close);
        CHECK(close->reply_code == 406);
        CHECK(text_of(*close) == "PRECONDITION_FAILED - channel is not transactional");
        CHECK(close->class_id == 90);
        CHECK(close->method_id == 30);
    }
}

TEST_CASE("tx.select twice is fine", "[tx]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.tx_select(1);
    CHECK(c.take<TxSelectOk>().size() == 1);
    CHECK_FALSE(c.channel_close(1));
}

TEST_CASE("uncommitted publishes are dropped when the channel closes", "[tx]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.close_channel(1);
    CHECK(b.queue("q")->message_count() == 0);
}

// RabbitMQ frees prefetch credit for acks in a transaction only at commit (rabbit_channel
// acks the limiter in ack/2, which tx.commit calls), and so does Warren.
TEST_CASE("an ack in a transaction frees prefetch credit only at commit", "[tx][prefetch]") {
    TestBroker b;
    TestClient c(b);
    select(c);
    c.qos(1, 1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.tx_commit(1);
    c.consume(1, "q", "t");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.ack(1, got[0].delivery_tag());
    c.publish_n(1, "", "q", 1);
    c.tx_commit(1);
    got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.ack(1, got[0].delivery_tag());
    // A publish outside the transaction's commit wakes the queue: still no credit.
    TestClient other(b);
    other.open_channel(1);
    other.publish(1, "", "q", "wake");
    CHECK(c.deliveries().empty());
    c.tx_commit(1);
    CHECK(c.deliveries().size() == 1);
}

namespace {

// probe-tx-q, probe-tx-q2 and a fanout exchange x bound to probe-tx-q2, as in the probe's
// tx scenarios (tools/conformance/probe.py, docs/rabbitmq-reference.md).
void tx_topology(TestClient& c, const FieldTable& q_args = {}) {
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(1, "q", q_args);
    c.declare_queue(1, "q2");
    c.declare_exchange(1, "x", "fanout");
    c.bind_queue(1, "q2", "x", "");
    c.frames();
}

}  // namespace

// The pika scenario, and the probe's tx-commit-after-exchange-deleted: RabbitMQ routes
// a publish when it comes, so deleting the exchange before the commit changes nothing, and
// the requeue queued after the publish is applied.
TEST_CASE("tx.commit after the exchange was deleted commits the routed publish and the requeue after it", "[tx][ack]") {
    TestBroker b;
    TestClient c(b);
    tx_topology(c);
    c.publish(1, "", "q", "job");
    c.get(1, "q");
    REQUIRE(c.deliveries().size() == 1);
    c.tx_select(1);
    c.publish(1, "x", "", "out");
    c.reject(1, 1, true);
    c.send(2, ExchangeDelete{0, "x", false, false});
    REQUIRE(c.take<ExchangeDeleteOk>().size() == 1);
    c.tx_commit(1);
    CHECK(c.take<TxCommitOk>().size() == 1);
    CHECK_FALSE(c.channel_close(1));
    CHECK(b.queue("q")->message_count() == 1);
    CHECK(b.queue("q2")->message_count() == 1);
}

// probe: tx-commit-after-queue-deleted. The queues are looked up at commit; none left means
// basic.return for a mandatory publish, before commit-ok.
TEST_CASE("tx.commit returns a mandatory publish whose queues were deleted since, before commit-ok", "[tx][routing]") {
    TestBroker b;
    TestClient c(b);
    tx_topology(c);
    c.tx_select(1);
    c.publish(1, "", "q2", "direct", {}, true);
    c.publish(1, "x", "", "fanout", {}, true);
    c.delete_queue(2, "q2");
    c.tx_commit(1);
    std::vector<std::string> seen;
    for (auto& d : c.deliveries()) seen.push_back(d.is_return() ? "return " + d.body : "?");
    for (auto& f : c.frames())
        if (f.as<TxCommitOk>()) seen.push_back("commit-ok");
    CHECK(seen == std::vector<std::string>{"return direct", "return fanout", "commit-ok"});
}

// probe: tx-commit-queue-declared-after-publish. The default exchange names its queue by the
// key whether or not it exists yet; the commit finds it.
TEST_CASE("tx.commit delivers to a queue declared after a publish to the default exchange", "[tx][routing]") {
    TestBroker b;
    TestClient c(b);
    tx_topology(c);
    c.tx_select(1);
    c.publish(1, "", "late", "late", {}, true);
    c.declare_queue(2, "late");
    c.tx_commit(1);
    CHECK(c.take<BasicReturn>().empty());
    CHECK(b.queue("late")->message_count() == 1);
}

// probe: tx-commit-binding-added-after-publish. Routing happened at publish.
TEST_CASE("tx.commit does not deliver to a queue bound after the publish", "[tx][routing]") {
    TestBroker b;
    TestClient c(b);
    tx_topology(c);
    c.tx_select(1);
    c.publish(1, "x", "", "fanout");
    c.bind_queue(2, "q", "x", "");
    c.tx_commit(1);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(b.queue("q2")->message_count() == 1);
}

// probe: tx-publish-internal-exchange. Every check of basic.publish is made when it comes.
TEST_CASE("a publish in a transaction to an internal exchange is refused when it comes", "[tx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    ExchangeDeclare d;
    d.exchange = "internal";
    d.type = "fanout";
    d.internal = true;
    c.send(1, d);
    c.tx_select(1);
    c.frames();
    c.publish(1, "internal", "", "x");
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 403);
    CHECK(text_of(*close) == "ACCESS_REFUSED - cannot publish to internal exchange 'internal' in vhost '/'");
    CHECK(close->class_id == 60);
    CHECK(close->method_id == 40);
}

// probe: tx-commit-order-publish-and-dead-letter. rabbit_channel's tx.commit delivers the
// publishes, then applies the acks and rejects.
TEST_CASE("tx.commit applies the publishes before the rejects", "[tx][dlx]") {
    TestBroker b;
    TestClient c(b);
    tx_topology(c,
                table({{"x-dead-letter-exchange", std::string("")}, {"x-dead-letter-routing-key", std::string("q2")}}));
    c.publish(1, "", "q", "job");
    c.get(1, "q");
    REQUIRE(c.deliveries().size() == 1);
    c.tx_select(1);
    c.reject(1, 1, false);
    c.publish(1, "", "q2", "pub");
    c.tx_commit(1);
    c.frames();
    c.get(1, "q2", true);
    c.get(1, "q2", true);
    CHECK(bodies(c.deliveries()) == std::vector<std::string>{"pub", "job"});
}
