// What a confirm, a tx.commit-ok and a durable declare-ok promise: they wait for the storage
// ticket (fdatasync with fsync_confirms, the write without), transient messages are not held
// behind stored ones, and a write or sync that fails says so (basic.nack, 541) instead.
#include <catch2/catch.hpp>

#include "broker/durability.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;
using warren::store::FaultFileSystem;

namespace {

std::vector<std::string> confirm_events(TestClient& c) {
    std::vector<std::string> out;
    for (auto& f : c.frames()) {
        if (f.channel != 1) continue;
        if (auto a = f.as<BasicAck>())
            out.push_back("ack " + std::to_string(a->delivery_tag) + (a->multiple ? "+" : ""));
        else if (auto n = f.as<BasicNack>())
            out.push_back("nack " + std::to_string(n->delivery_tag));
    }
    return out;
}

struct Setup {
    std::shared_ptr<FaultFileSystem> fs = std::make_shared<FaultFileSystem>();
    TestBroker b;
    TestClient c;
    explicit Setup(bool fsync = true) : b(storage_config(fsync), fs), c(b) {
        c.open_channel(1);
        c.declare_queue(1, "durable", {}, true);
        c.declare_queue(1, "transient", {}, false);
        c.take<QueueDeclareOk>();
        c.confirm_select(1);
        c.take<ConfirmSelectOk>();
    }
};

}  // namespace

TEST_CASE("with fsync_confirms a stored publish is confirmed only after its fdatasync", "[storage][confirm]") {
    Setup s;
    s.b.block_on_syncs = false;
    s.fs->hold_syncs(true);
    s.c.publish(1, "", "durable", "p1", persistent());
    s.c.publish(1, "", "durable", "p2", persistent());
    s.fs->wait_for_held_syncs(1);
    CHECK(confirm_events(s.c).empty());  // written, not yet synced
    s.fs->hold_syncs(false);
    s.b.block_on_syncs = true;
    s.b.settle();
    // One sync was in flight for the first; the second joined the next round.
    CHECK(confirm_events(s.c) == std::vector<std::string>{"ack 1+", "ack 2+"});
    // Both waits are in the confirm-wait histogram, once per waited-for turn.
    const auto& waits = s.b.broker->durability()->commit_latency();
    std::uint64_t n = 0;
    for (std::uint64_t k : waits.counts) n += k;
    CHECK(n >= 2);
    CHECK(waits.sum > 0);
}

TEST_CASE("a transient publish is confirmed at once, not held behind a stored one", "[storage][confirm]") {
    Setup s;
    s.b.block_on_syncs = false;
    s.fs->hold_syncs(true);
    s.c.publish(1, "", "durable", "stored", persistent());            // 1: waits for the sync
    s.c.publish(1, "", "transient", "not stored", persistent());      // 2: a transient queue
    s.c.publish(1, "", "durable", "transient message");               // 3: not persistent
    s.fs->wait_for_held_syncs(1);
    // Alone, each: a multiple ack would confirm 1 too early.
    CHECK(confirm_events(s.c) == std::vector<std::string>{"ack 2", "ack 3"});
    s.fs->hold_syncs(false);
    s.b.block_on_syncs = true;
    s.b.settle();
    CHECK(confirm_events(s.c) == std::vector<std::string>{"ack 1+"});
}

TEST_CASE("without fsync_confirms a stored publish is confirmed once written, before any sync", "[storage][confirm]") {
    Setup s(false);
    s.b.block_on_syncs = false;
    s.fs->hold_syncs(true);
    s.c.publish(1, "", "durable", "p1", persistent());
    CHECK(confirm_events(s.c) == std::vector<std::string>{"ack 1+"});
    // Written to the file (what a kill -9 keeps) before the confirm went out.
    bool written = false;
    for (const auto& p : s.fs->paths())
        if (p.ends_with(".seg")) written = written || s.fs->contents(p).find("p1") != std::string::npos;
    CHECK(written);
    s.fs->hold_syncs(false);
    s.b.block_on_syncs = true;
}

TEST_CASE("a failed write nacks the publishes it carried; the next ones are confirmed", "[storage][confirm][fault]") {
    Setup s;
    s.fs->inject({FaultFileSystem::Op::Write, 1, std::errc::no_space_on_device, 0, ".seg"});
    s.c.publish(1, "", "durable", "lost", persistent());
    CHECK(confirm_events(s.c) == std::vector<std::string>{"nack 1"});
    s.c.publish(1, "", "durable", "kept", persistent());
    CHECK(confirm_events(s.c) == std::vector<std::string>{"ack 2+"});
    CHECK(s.b.broker->durability()->write_failures() == 1);
}

TEST_CASE("a failed fdatasync nacks, and nothing is confirmed as stored afterwards", "[storage][confirm][fault]") {
    Setup s;
    s.fs->inject({FaultFileSystem::Op::Sync, 1, std::errc::io_error, 0, ".seg"});
    s.c.publish(1, "", "durable", "p1", persistent());
    CHECK(confirm_events(s.c) == std::vector<std::string>{"nack 1"});
    CHECK_FALSE(s.b.broker->durability()->healthy());
    s.c.publish(1, "", "durable", "p2", persistent());
    CHECK(confirm_events(s.c) == std::vector<std::string>{"nack 2"});
    // Transient messages are still confirmed: nothing about them needs the disk.
    s.c.publish(1, "", "transient", "t3");
    CHECK(confirm_events(s.c) == std::vector<std::string>{"ack 3"});
}

TEST_CASE("tx.commit-ok waits for the sync of what the commit wrote", "[storage][tx]") {
    auto fs = std::make_shared<FaultFileSystem>();
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "durable", {}, true);
    c.take<QueueDeclareOk>();
    c.tx_select(1);
    c.take<TxSelectOk>();
    c.publish(1, "", "durable", "in a transaction", persistent());
    b.block_on_syncs = false;
    fs->hold_syncs(true);
    c.tx_commit(1);
    fs->wait_for_held_syncs(1);
    CHECK(c.take<TxCommitOk>().empty());
    fs->hold_syncs(false);
    b.block_on_syncs = true;
    b.settle();
    CHECK(c.take<TxCommitOk>().size() == 1);
}

TEST_CASE("a durable declare whose record cannot be written closes the connection with 541 and sends no declare-ok",
          "[storage][fault]") {
    auto fs = std::make_shared<FaultFileSystem>();
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    TestClient other(b);
    c.open_channel(1);
    other.open_channel(1);
    fs->inject({FaultFileSystem::Op::Sync, 1, std::errc::io_error, 0, "meta"});
    c.declare_queue(1, "durable", {}, true);
    CHECK(c.take<QueueDeclareOk>().empty());
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 541);
    // Everyone else carries on with what needs no disk.
    other.declare_queue(1, "light", {}, false);
    CHECK(other.take<QueueDeclareOk>().size() == 1);
}

TEST_CASE("a confirm waits for its message's fdatasync only; the acks' sidecar follows with the periodic sync",
          "[storage][confirm]") {
    Setup s;
    s.c.publish(1, "", "durable", "p0", persistent());  // creates the segment (and syncs its directory)
    REQUIRE(confirm_events(s.c).size() == 1);
    s.c.consume(1, "durable", "c", false);
    s.c.frames();
    s.b.broker->durability()->finish_writes();  // syncs everything (the sidecar the delivery created)
    s.b.settle();
    const auto syncs_before = s.fs->syncs();
    s.c.publish(1, "", "durable", "p1", persistent());  // written, delivered (a sidecar event), synced
    bool acked = false, delivered = false;
    for (auto& f : s.c.frames()) {
        acked = acked || f.as<BasicAck>().has_value();
        delivered = delivered || f.as<BasicDeliver>().has_value();
    }
    REQUIRE(acked);
    REQUIRE(delivered);
    // The round behind the confirm synced the segment and nothing else.
    CHECK(s.fs->syncs() - syncs_before == 1);
    CHECK(s.b.broker->durability()->sync_stats().partial_rounds >= 1);
    // A power cut now keeps the confirmed message.
    {
        TestBroker after(storage_config(), crashed(*s.fs));
        TestClient c2(after);
        c2.open_channel(1);
        CHECK(drain_bodies(c2, 1, "durable") == std::vector<std::string>{"p0", "p1"});
    }
}

TEST_CASE("tx.commit-ok after an ack waits for the sidecar that holds the ack", "[storage][tx]") {
    Setup s;
    s.c.publish(1, "", "durable", "job", persistent());
    REQUIRE(confirm_events(s.c).size() == 1);
    s.c.open_channel(2);
    s.c.tx_select(2);
    s.c.take<TxSelectOk>();
    s.c.get(2, "durable", false);
    auto d = s.c.deliveries();
    REQUIRE(d.size() == 1);
    s.c.ack(2, d.front().delivery_tag());
    s.c.tx_commit(2);
    REQUIRE(s.c.take<TxCommitOk>().size() == 1);
    // A power cut right after commit-ok: the acknowledged job does not come back.
    TestBroker after(storage_config(), crashed(*s.fs));
    TestClient c2(after);
    c2.open_channel(1);
    CHECK(drain_bodies(c2, 1, "durable").empty());
}
