// A redrive of persistent dead letters across a restart, a crash and a failed write: the copy
// is stored before the original is settled, so whatever happens one of them comes back.
#include <catch2/catch.hpp>
#include <set>

#include "broker/durability.hpp"
#include "broker/workbench_redrive.hpp"
#include "support/delayed_test.hpp"

using namespace warren::testing;
using warren::store::FaultFileSystem;
namespace wb = warren::broker::workbench;

namespace {

void setup(TestClient& c, int messages) {
    c.open_channel(1);
    declare_dead_lettering(c, "work", "dead", {}, true);
    for (int i = 0; i < messages; ++i) {
        c.publish(1, "", "work", "job-" + std::to_string(i), persistent());
        c.get(1, "work");
        auto d = c.deliveries();
        REQUIRE(d.size() == 1);
        c.reject(1, d[0].delivery_tag(), false);
    }
    // A durable declare-ok waits for a sync, which covers the dead letters written before it.
    declare_queue_ok(c, "sync-point", {}, true);
}

}  // namespace

TEST_CASE("a crash before the redriven copies are stored brings back the originals, in the dead-letter queue only",
          "[workbench][redrive][storage][crash]") {
    auto fs = std::make_shared<FaultFileSystem>();
    std::shared_ptr<FaultFileSystem> image;
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        setup(c, 3);
        b.settle();
        b.block_on_syncs = false;
        fs->hold_syncs(true);
        auto r = wb::redrive(*b.queue("dead"), {}, {});
        CHECK(r.done == 3);
        CHECK(r.ticket != 0);
        b.settle();  // the copies are written, not synced; the originals wait for them
        CHECK(b.queue("work")->message_count() == 3);
        image = crashed(*fs, FaultFileSystem::CrashMode::LoseUnsynced);
        fs->hold_syncs(false);
    }
    TestBroker b(storage_config(), image);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "work").empty());
    CHECK(drain_bodies(c, 1, "dead") == std::vector<std::string>{"job-0", "job-1", "job-2"});
}

TEST_CASE("after a redrive is stored, a restart finds the copies where they were sent and not the originals",
          "[workbench][redrive][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        setup(c, 3);
        bool stored = false;
        auto r = wb::redrive(*b.queue("dead"), {}, {});
        REQUIRE(r.ticket != 0);
        b.broker->durability()->when_stored(r.ticket, [&](bool ok) { stored = ok; });
        b.settle();
        CHECK(stored);
    }
    // As after kill -9: what was written survives.
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "dead").empty());
    c.get(1, "work", true);
    auto d = c.deliveries();
    REQUIRE(d.size() == 1);
    CHECK(d[0].body == "job-0");
    FieldTable h = d[0].headers();
    REQUIRE(h.find("x-first-death-reason"));
    CHECK(*h.find("x-first-death-reason")->as_string() == "rejected");
    CHECK(drain_bodies(c, 1, "work") == std::vector<std::string>{"job-1", "job-2"});
}

TEST_CASE("deleting a stored dead letter settles it: it does not come back", "[workbench][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        setup(c, 2);
        wb::ActionRequest first;
        first.max_messages = 1;
        CHECK(wb::delete_messages(*b.queue("dead"), first).done == 1);
        b.settle();
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "dead") == std::vector<std::string>{"job-1"});
}

TEST_CASE("a power cut at any point of a redrive loses no message", "[workbench][redrive][storage][crash]") {
    // The copies' records and the originals' settlements go to different files, synced one by
    // one: the originals are settled only once the copies are synced, so a cut between the two
    // syncs cannot leave a settled original without its copy.
    for (std::uint64_t ops = 0; ops <= 24; ++ops) {
        auto fs = std::make_shared<FaultFileSystem>();
        std::shared_ptr<FaultFileSystem> image;
        {
            TestBroker b(storage_config(), fs);
            TestClient c(b);
            setup(c, 3);
            b.settle();
            fs->freeze_after(ops);
            auto r = wb::redrive(*b.queue("dead"), {}, {});
            CHECK(r.done == 3);
            b.settle();
            b.advance(std::chrono::milliseconds(1000));  // periodic syncs, had the power stayed on
            image = crashed(*fs, FaultFileSystem::CrashMode::LoseUnsynced);
            fs->clear_faults();
        }
        TestBroker b(storage_config(), image);
        TestClient c(b);
        c.open_channel(1);
        auto left = drain_bodies(c, 1, "dead");
        auto moved = drain_bodies(c, 1, "work");
        std::multiset<std::string> present(left.begin(), left.end());
        present.insert(moved.begin(), moved.end());
        INFO("power cut after " << ops << " operations");
        for (const char* job : {"job-0", "job-1", "job-2"}) CHECK(present.count(job) >= 1);
    }
}

TEST_CASE("a redrive whose copies cannot be written keeps the originals stored", "[workbench][redrive][storage]") {
    // A failed write drops the records appended since the last flush (the copies) but keeps the
    // events: had the originals been settled at once, both would be gone after a restart.
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        setup(c, 3);
        b.settle();
        fs->inject({FaultFileSystem::Op::Write, 1, std::errc::no_space_on_device, 0, ".seg"});
        bool stored = true;
        auto r = wb::redrive(*b.queue("dead"), {}, {});
        REQUIRE(r.ticket != 0);
        b.broker->durability()->when_stored(r.ticket, [&](bool ok) { stored = ok; });
        b.settle();
        CHECK_FALSE(stored);
        fs->clear_faults();
        c.publish(1, "", "sync-point", "later", persistent());  // later writes succeed again
        b.settle();
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    auto left = drain_bodies(c, 1, "dead");
    auto moved = drain_bodies(c, 1, "work");
    std::multiset<std::string> present(left.begin(), left.end());
    present.insert(moved.begin(), moved.end());
    for (const char* job : {"job-0", "job-1", "job-2"}) CHECK(present.count(job) == 1);
}

TEST_CASE("after a crash the oldest dead letter's age counts from when it was stored", "[workbench][health][storage]") {
    auto fs = std::make_shared<FaultFileSystem>();
    std::shared_ptr<FaultFileSystem> image;
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        setup(c, 1);
        b.settle();
        image = crashed(*fs, FaultFileSystem::CrashMode::LoseUnsynced);  // no clean shutdown
    }
    // Started again 100 s later on the wall clock.
    TestBroker b(storage_config(), image, 1'700'000'100);
    auto age = b.queue("dead")->oldest_age(b.clock.now());
    REQUIRE(age);
    CHECK(*age >= std::chrono::seconds(100));
    CHECK(*age < std::chrono::seconds(101));
}
