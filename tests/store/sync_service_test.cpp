// SyncService: tickets settle in order, requests during a round join the next one (group
// commit), the sync order is meta, segments, sidecars, directories, and a failed sync is
// reported with its ticket and makes every later ticket fail; zero-fills append and sync, and a
// failed one's fdatasync fails the storage, the round in flight included; other work on the
// extender (index writes) runs in order after the zero-fills, and even at a stop.
#include "store/sync_service.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <mutex>
#include <thread>

#include "store/fault_file_system.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using test::Syncer;

std::shared_ptr<File> file_with(FaultFileSystem& fs, const std::string& path, std::string_view text) {
    auto f = *fs.open(path, OpenMode::CreateTruncate);
    iovec part{const_cast<char*>(text.data()), text.size()};
    REQUIRE(write_fully(*f, {&part, 1}, 0));
    return f;
}

// A file that only records when it is synced.
class RecordingFile final : public File {
public:
    RecordingFile(std::string name, std::vector<std::string>& log, std::mutex& m)
        : name_(std::move(name)), log_(log), m_(m) {}
    Result<std::size_t> pwritev(std::span<const iovec>, std::uint64_t) override { return std::size_t{0}; }
    Result<std::size_t> pread(std::span<std::byte>, std::uint64_t) override { return std::size_t{0}; }
    std::error_code sync() override {
        std::lock_guard lock(m_);
        log_.push_back(name_);
        return {};
    }
    std::error_code truncate(std::uint64_t) override { return {}; }
    Result<std::uint64_t> size() override { return std::uint64_t{0}; }
    Result<std::uint64_t> append_zeros(std::uint64_t size, std::uint64_t) override { return size; }
    std::error_code sync_zeros() override { return {}; }
    const std::string& path() const override { return name_; }

private:
    std::string name_;
    std::vector<std::string>& log_;
    std::mutex& m_;
};

TEST_CASE("sync tickets settle in order and a result covers every earlier ticket", "[store][sync]") {
    Syncer s;
    std::uint64_t t1 = s.service.request_sync();
    std::uint64_t t2 = s.service.request_sync();
    std::uint64_t t3 = s.service.request_sync();
    CHECK(t1 < t2);
    CHECK(t2 < t3);
    s.loop.run_until([&] { return !s.results.empty() && s.results.back().ticket == t3; });
    for (std::size_t i = 1; i < s.results.size(); ++i) CHECK(s.results[i - 1].ticket < s.results[i].ticket);
    for (const auto& r : s.results) CHECK_FALSE(r.error);
    CHECK_FALSE(s.service.wait(t2));
}

TEST_CASE("requests made while a sync is in flight join the next round", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    auto a = file_with(fs, "/d/a", "first");
    auto b = file_with(fs, "/d/b", "");
    REQUIRE_FALSE((*fs.open_directory("/d"))->sync());
    s.service.mark_dirty(a, SyncClass::Segment);
    fs.hold_syncs(true);
    std::uint64_t t1 = s.service.request_sync();
    fs.wait_for_held_syncs(1);  // round 1 is in fdatasync
    iovec part{const_cast<char*>("second"), 6};
    REQUIRE(write_fully(*b, {&part, 1}, 0));
    s.service.mark_dirty(b, SyncClass::Segment);
    s.service.mark_dirty(a, SyncClass::Segment);
    std::uint64_t t2 = s.service.request_sync();
    std::uint64_t t3 = s.service.request_sync();
    fs.hold_syncs(false);
    s.loop.run_until([&] { return !s.results.empty() && s.results.back().ticket == t3; });
    REQUIRE(s.results.size() == 2);
    CHECK(s.results[0].ticket == t1);
    CHECK(s.results[1].ticket == t3);  // t2 and t3: one round
    CHECK(t2 < t3);
    CHECK(s.service.stats().rounds == 2);
    CHECK(s.service.stats().files_synced == 3);  // a; then a and b, once each
    // Each fdatasync is timed: three in the histogram (round 1's, held, took some time).
    const SyncLatency& took = s.service.stats().fdatasync;
    std::uint64_t timed = 0;
    for (std::uint64_t n : took.counts) timed += n;
    CHECK(timed == 3);
    CHECK(took.sum > 0);
    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    CHECK(image->contents("/d/a") == "first");
    CHECK(image->contents("/d/b") == "second");
}

TEST_CASE("a round syncs meta, then segments, then sidecars, then directories", "[store][sync]") {
    std::vector<std::string> order;
    std::mutex m;
    auto file = [&](const char* name) { return std::make_shared<RecordingFile>(name, order, m); };
    Syncer s;
    auto meta = file("meta"), seg = file("seg"), evt = file("evt"), dir = file("dir");
    s.service.mark_dirty(dir, SyncClass::Directory);
    s.service.mark_dirty(evt, SyncClass::Sidecar);
    s.service.mark_dirty(seg, SyncClass::Segment);
    s.service.mark_dirty(meta, SyncClass::Meta);
    s.service.mark_dirty(seg, SyncClass::Segment);
    s.sync();
    std::lock_guard lock(m);
    CHECK(order == std::vector<std::string>{"meta", "seg", "evt", "dir"});
}

TEST_CASE("a round for tickets that need no events leaves the sidecars to a later full round", "[store][sync]") {
    std::vector<std::string> order;
    std::mutex m;
    auto file = [&](const char* name) { return std::make_shared<RecordingFile>(name, order, m); };
    Syncer s;
    auto seg = file("seg"), evt = file("evt");
    s.service.mark_dirty(seg, SyncClass::Segment);
    s.service.mark_dirty(evt, SyncClass::Sidecar);
    std::uint64_t confirm = s.service.request_sync(false);
    s.loop.run_until([&] { return !s.results.empty() && s.results.back().ticket >= confirm; });
    {
        std::lock_guard lock(m);
        CHECK(order == std::vector<std::string>{"seg"});
    }
    CHECK(s.service.stats().partial_rounds == 1);
    s.sync();  // a full round (the periodic one): the sidecar left behind is synced now
    std::lock_guard lock(m);
    CHECK(order == std::vector<std::string>{"seg", "evt"});
}

TEST_CASE("a failed fdatasync is reported with its ticket, and every later ticket fails", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    auto a = file_with(fs, "/d/a.seg", "x");
    s.service.mark_dirty(a, SyncClass::Segment);
    auto good = s.sync();
    CHECK_FALSE(good.error);
    fs.inject({FaultFileSystem::Op::Sync, 1, std::errc::io_error});
    s.service.mark_dirty(a, SyncClass::Segment);
    auto bad = s.sync();
    CHECK(bad.error == std::errc::io_error);
    CHECK_THAT(bad.message, Catch::Contains("fdatasync /d/a.seg"));
    // The next sync of the same file would succeed, but what the failed one covered is not
    // known to be on disk: the failure sticks.
    s.service.mark_dirty(a, SyncClass::Segment);
    auto later = s.sync();
    CHECK(later.error == std::errc::io_error);
    CHECK(s.service.failure() == std::errc::io_error);
    CHECK_FALSE(s.service.wait(good.ticket));
    CHECK(s.service.wait(later.ticket) == std::errc::io_error);
}

TEST_CASE("a zero-fill that fails its fdatasync during a round fails that round's tickets too", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    auto a = file_with(fs, "/d/a.seg", "x");
    s.service.mark_dirty(a, SyncClass::Segment);
    fs.hold_syncs(true);
    std::uint64_t t = s.service.request_sync();
    fs.wait_for_held_syncs(1);  // the round is in fdatasync of a
    fs.inject({FaultFileSystem::Op::ExtendSync, 1, std::errc::io_error});
    auto state = std::make_shared<Preallocation>();
    state->busy = true;
    s.service.preallocate(a, 4096, 0, state);
    s.service.wait_for_extender();  // zero-fills do not wait for held syncs
    CHECK_FALSE(state->busy);
    CHECK(state->failed);
    CHECK(state->end == 0);
    fs.hold_syncs(false);
    s.loop.run_until([&] { return !s.results.empty() && s.results.back().ticket == t; });
    // That round's fdatasync of a succeeded, but the same file's write-back failed meanwhile.
    CHECK(s.results.back().error == std::errc::io_error);
    CHECK_THAT(s.results.back().message, Catch::Contains("fdatasync (zeros) /d/a.seg"));
    CHECK(s.service.wait(t) == std::errc::io_error);
}

TEST_CASE("a zero-fill appends after what was written, syncs it, and reports where it ends", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    auto a = file_with(fs, "/d/a.seg", "records");
    REQUIRE_FALSE((*fs.open_directory("/d"))->sync());  // its name
    auto state = std::make_shared<Preallocation>();
    state->busy = true;
    s.service.preallocate(a, 100, 0, state);
    s.service.wait_for_extender();
    CHECK_FALSE(state->busy);
    CHECK_FALSE(state->failed);
    CHECK(state->end == 100);
    CHECK(fs.contents("/d/a.seg") == "records" + std::string(93, '\0'));
    CHECK(fs.zero_syncs() == 1);
    CHECK(s.service.stats().preallocations == 1);
    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    CHECK(image->contents("/d/a.seg") == fs.contents("/d/a.seg"));  // synced, the records too
}

TEST_CASE("work handed to the extender runs after the zero-fills asked before it, and its completion on the loop",
          "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    auto a = file_with(fs, "/d/a.seg", "records");
    auto state = std::make_shared<Preallocation>();
    state->busy = true;
    fs.hold_zero_syncs(true);
    s.service.preallocate(a, 100, 0, state);
    fs.wait_for_held_zero_syncs(1);  // the extender is in the zero-fill's fdatasync
    std::atomic<bool> ran{false};
    std::uint64_t seen_end = 0;
    std::thread::id worked_on, completed_on;
    s.service.run_on_extender(
        [&] {
            seen_end = state->end;
            worked_on = std::this_thread::get_id();
            ran = true;
        },
        [&] { completed_on = std::this_thread::get_id(); });
    CHECK_FALSE(ran);
    fs.hold_zero_syncs(false);
    s.loop.run_until([&] { return completed_on != std::thread::id{}; });
    CHECK(ran);
    CHECK(seen_end == 100);  // the zero-fill was done first
    CHECK(worked_on != std::this_thread::get_id());
    CHECK(completed_on == std::this_thread::get_id());
}

TEST_CASE("a stop drops queued zero-fills but runs queued work; work asked after it runs at once", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    auto a = file_with(fs, "/d/a.seg", "records");
    auto first = std::make_shared<Preallocation>();
    auto second = std::make_shared<Preallocation>();
    first->busy = second->busy = true;
    fs.hold_zero_syncs(true);
    s.service.preallocate(a, 100, 0, first);
    fs.wait_for_held_zero_syncs(1);
    std::atomic<int> ran{0};
    s.service.run_on_extender([&] { ++ran; }, {});
    s.service.preallocate(a, 200, 0, second);
    std::thread stopper([&] { s.service.stop(); });
    fs.hold_zero_syncs(false);
    stopper.join();
    CHECK(ran == 1);
    CHECK_FALSE(second->busy);      // dropped, or done: never left busy
    s.service.wait_for_extender();  // returns: nothing is left queued
    std::thread::id here;
    s.service.run_on_extender([&] { here = std::this_thread::get_id(); }, {});
    CHECK(here == std::this_thread::get_id());
}

TEST_CASE("a file deleted while its sync is pending is still synced, from the handle", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    Syncer s;
    {
        auto a = file_with(fs, "/d/a.seg", "x");
        s.service.mark_dirty(a, SyncClass::Segment);
        REQUIRE(fs.unlink("/d/a.seg"));
    }  // the log's reference is gone; the service holds the other
    CHECK_FALSE(s.sync().error);
    CHECK(s.service.stats().files_synced == 1);
}

TEST_CASE("a retired file is closed by the sync thread without waiting for a sync request", "[store][sync]") {
    Syncer s;
    std::promise<std::thread::id> closed;
    auto closed_on = closed.get_future();
    std::mutex m;
    std::vector<std::string> log;
    auto file = std::shared_ptr<File>(new RecordingFile("a.seg", log, m), [&](File* f) {
        delete f;
        closed.set_value(std::this_thread::get_id());
    });
    s.service.retire(std::move(file));
    CHECK(closed_on.get() != std::this_thread::get_id());  // waits for the close
    CHECK(s.service.stats().rounds == 0);
    CHECK(log.empty());  // closed, not synced
}

TEST_CASE("fdatasync times fall in the histogram bucket of their upper bound", "[store][sync]") {
    SyncLatency t;
    t.observe(0.0001);  // on a bound: that bucket
    t.observe(0.0002);
    t.observe(0.3);
    t.observe(5.0);  // past the last bound: +Inf
    CHECK(t.counts[0] == 1);
    CHECK(t.counts[1] == 1);
    CHECK(t.counts[11] == 1);
    CHECK(t.counts[12] == 1);
    SyncLatency sum;
    sum.add(t);
    sum.add(t);
    CHECK(sum.counts[12] == 2);
    CHECK(sum.sum == Approx(2 * 5.3003));
}

TEST_CASE("a round with nothing to sync costs no I/O", "[store][sync]") {
    FaultFileSystem fs;
    Syncer s;
    CHECK_FALSE(s.sync().error);
    CHECK(fs.syncs() == 0);
    CHECK(s.service.stats().files_synced == 0);
}

TEST_CASE("destroying the service finishes the rounds already requested", "[store][sync]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto a = file_with(fs, "/d/a", "x");
    std::vector<SyncResult> results;
    {
        SyncService service({}, [&](const SyncResult& r) { results.push_back(r); });  // completes on its thread
        service.mark_dirty(a, SyncClass::Segment);
        service.request_sync();
    }
    REQUIRE_FALSE(results.empty());
    CHECK(results.back().ticket == 1);
    CHECK(fs.syncs() == 1);
}

}  // namespace
}  // namespace warren::store
