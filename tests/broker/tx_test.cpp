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
