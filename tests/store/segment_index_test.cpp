// Sealed segments' indexes (.idx): written once a segment is sealed and whole, read after a crash
// instead of the segment's records, with the same answer; refused (logged, the segment read
// whole) when torn, corrupt or not matching the segment; rewritten by the recovery that read the
// segment; deleted with their segment. A clean stop indexes the head segment too, and appends
// after the restart never extend an indexed segment. The loop does not write them: the sync
// service's extender does, and a deletion, close or checkpoint that meets one pending deals with it.
#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const std::string dir = "/data/vhost";
std::string path_of(std::uint32_t number, const char* ext) {
    char name[16];
    std::snprintf(name, sizeof name, "%08x.%s", number, ext);
    return dir + "/" + name;
}

std::unique_ptr<FaultFileSystem> copy_of(const FaultFileSystem& from, bool with_indexes = true) {
    auto fs = std::make_unique<FaultFileSystem>();
    REQUIRE(fs->make_directories(dir));
    for (const auto& path : from.paths())
        if (with_indexes || !path.ends_with(".idx")) fs->set_contents(path, from.contents(path));
    return fs;
}

LogOptions small_segments() {
    LogOptions o;
    o.segment_size = 4096;
    return o;
}

// Four segments of messages for queues 1 and 2 (some to both), with deliveries, returns, holds
// and acks, all synced; the log was not closed cleanly (no checkpoint): a crash.
struct Crashed {
    FaultFileSystem fs;
    // `q` shifts the queue ids: the same files, record for record the same sizes, other contents.
    explicit Crashed(std::uint32_t q = 0) {
        Syncer s;
        auto log = fresh_log(fs, s.service, small_segments());
        std::vector<Location> at;
        for (int i = 1; i <= 100; ++i) {
            auto m = message(std::string(100 + i, 'a'), {{1 + q, std::uint64_t(i)}});
            if (i % 3 == 0) m.queues.push_back({2 + q, std::uint64_t(i)});
            m.ttl_ms = i % 5 == 0 ? 60000 : no_ttl;
            m.priority = static_cast<std::uint8_t>(i % 4);
            m.publish_ms += static_cast<std::uint64_t>(i);
            at.push_back(log->append(m.record()));
            if (i % 10 == 0) REQUIRE(log->flush());
        }
        REQUIRE(log->flush());
        for (int i = 0; i < 100; ++i) {
            if (i % 4 == 0) log->ack(at[i], 1 + q);
            if (i % 4 == 1) log->deliver(at[i], 1 + q);
            if (i % 4 == 2) log->ret(at[i], 1 + q, 2);
            if (i % 7 == 0) log->hold(at[i], 1 + q, 3, 1'700'000'500'000 + i);
        }
        REQUIRE(log->flush());
        REQUIRE_FALSE(s.sync().error);
    }
};

struct Outcome {
    Recovered r;
    std::vector<std::string> lines;
};

Outcome recover_from(FaultFileSystem& fs) {
    Outcome out;
    Syncer s;
    LogOptions o = small_segments();
    o.warn = [&](std::string_view line) { out.lines.emplace_back(line); };
    auto log = open_log(fs, s.service, o);
    out.r = recover(*log);
    for (const auto& e : out.r.entries) {
        auto view = log->read(e.location);
        REQUIRE(view);
        CHECK(view->body.size() == e.body_size);
    }
    Location l = log->append(message("after", {{1, 1000}}).record());  // the log goes on
    REQUIRE(log->flush());
    CHECK(body_at(*log, l) == "after");
    return out;
}

// `from_checkpoint`: `a` came from a checkpoint, which keeps no record size and a deadline in
// place of the publish time and TTL.
void require_same(const std::vector<RecoveredEntry>& a, const std::vector<RecoveredEntry>& b,
                  bool from_checkpoint = false) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("entry " << i);
        CHECK(a[i].queue_id == b[i].queue_id);
        CHECK(a[i].queue_seq == b[i].queue_seq);
        CHECK(a[i].location == b[i].location);
        CHECK(a[i].body_size == b[i].body_size);
        if (!from_checkpoint) {
            CHECK(a[i].record_size == b[i].record_size);
            CHECK(a[i].publish_ms == b[i].publish_ms);
            CHECK(a[i].ttl_ms == b[i].ttl_ms);
        }
        CHECK(a[i].priority == b[i].priority);
        CHECK(a[i].flags == b[i].flags);
        CHECK(a[i].delivery_count == b[i].delivery_count);
        CHECK(a[i].delivered == b[i].delivered);
        CHECK(a[i].hold_until_ms == b[i].hold_until_ms);
    }
}

// Opens the log in `fs` and recovers it; `log` keeps it open for more.
Recovered reopen(FaultFileSystem& fs, Syncer& s, std::unique_ptr<MessageLog>& log, LogOptions o = small_segments()) {
    log = open_log(fs, s.service, std::move(o));
    return recover(*log);
}

// Passes everything to a FaultFileSystem, but the creation of an .idx waits while the gate is
// shut: a test holds the extender inside an index write, the loop's flush having returned.
class GatedIndexes final : public ForwardingFileSystem {
public:
    explicit GatedIndexes(FileSystem& fs) : ForwardingFileSystem(fs) {}
    Result<std::shared_ptr<File>> open(const std::string& path, OpenMode mode) override {
        if (path.ends_with(".idx") && mode == OpenMode::CreateTruncate) {
            std::unique_lock lock(mutex_);
            ++waiting_;
            cv_.notify_all();
            cv_.wait(lock, [&] { return open_; });
            --waiting_;
        }
        return fs_.open(path, mode);
    }

    void shut() {
        std::lock_guard lock(mutex_);
        open_ = false;
    }
    void open_gate() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    // Until an index write waits at the gate.
    void wait_for_writer() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return waiting_ > 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = true;
    int waiting_ = 0;
};

// Messages of 200 bytes for queue 1 until `segments` segments are sealed; their locations.
std::vector<Location> fill_segments(MessageLog& log, std::uint32_t segments) {
    std::vector<Location> at;
    std::uint64_t seq = 1;
    while (at.empty() || location_segment(at.back()) <= segments)
        at.push_back(log.append(message(std::string(200, 'g'), {{1, seq++}}).record()));
    return at;
}

void ack_segment(MessageLog& log, const std::vector<Location>& at, std::uint32_t segment) {
    for (Location l : at)
        if (location_segment(l) == segment) log.ack(l, 1);
}

}  // namespace

TEST_CASE("an index is written by the extender, not the flush, and recovery uses it once written", "[store][index]") {
    FaultFileSystem faults;
    GatedIndexes fs(faults);
    Syncer s;
    auto log = fresh_log(fs, s.service, small_segments());
    fs.shut();
    fill_segments(*log, 2);
    REQUIRE(log->flush());  // returns with both index writes still to do
    fs.wait_for_writer();   // the extender is in the first one
    CHECK_FALSE(faults.exists(path_of(1, "idx")));
    CHECK(log->stats().index_writes_pending == 2);
    CHECK(log->stats().indexes_written == 0);
    fs.open_gate();
    s.settle_indexes(*log);
    CHECK(faults.exists(path_of(1, "idx")));
    CHECK(faults.exists(path_of(2, "idx")));
    CHECK(log->stats().indexes_written == 2);
    CHECK(log->stats().index_writes_pending == 0);
    REQUIRE_FALSE(s.sync().error);
    Outcome r = recover_from(*copy_of(faults));  // killed: the page cache survives
    CHECK(r.r.stats.segments == 3);
    CHECK(r.r.stats.indexed_segments == 2);
    CHECK(r.r.stats.bad_indexes == 0);
}

TEST_CASE("a segment deleted while its index write is pending leaves no .idx", "[store][index]") {
    FaultFileSystem faults;
    GatedIndexes fs(faults);
    Syncer s;
    std::vector<std::string> lines;
    LogOptions o = small_segments();
    o.warn = [&](std::string_view line) { lines.emplace_back(line); };
    auto log = fresh_log(fs, s.service, o);
    SECTION("one in the middle of its write, one not begun") {
        fs.shut();
        auto at = fill_segments(*log, 2);
        REQUIRE(log->flush());
        fs.wait_for_writer();  // segment 1's index is being written, segment 2's waits for it
        ack_segment(*log, at, 1);
        ack_segment(*log, at, 2);
        REQUIRE(log->flush());  // deletes both segments
        CHECK_FALSE(faults.exists(path_of(1, "seg")));
        CHECK_FALSE(faults.exists(path_of(2, "seg")));
        fs.open_gate();
        s.settle_indexes(*log);
    }
    SECTION("written, its completion not processed yet") {
        auto at = fill_segments(*log, 1);
        REQUIRE(log->flush());
        s.service.wait_for_extender();
        REQUIRE(faults.exists(path_of(1, "idx")));
        REQUIRE(log->stats().index_writes_pending == 1);
        ack_segment(*log, at, 1);
        REQUIRE(log->flush());
        CHECK_FALSE(faults.exists(path_of(1, "idx")));
        s.settle_indexes(*log);
    }
    for (const auto& path : faults.paths()) CHECK_FALSE(path.ends_with(".idx"));
    CHECK(lines.empty());
    log.reset();
    Outcome r = recover_from(faults);
    CHECK(r.r.stats.problems.empty());
}

TEST_CASE("a close or a checkpoint waits for the index writes still pending", "[store][index][checkpoint]") {
    FaultFileSystem faults;
    GatedIndexes fs(faults);
    Syncer s;
    auto log = fresh_log(fs, s.service, small_segments());
    fs.shut();
    auto at = fill_segments(*log, 2);
    REQUIRE(log->flush());
    REQUIRE_FALSE(s.sync().error);
    fs.wait_for_writer();
    CHECK_FALSE(faults.exists(path_of(1, "idx")));
    std::vector<RecoveredEntry> pairs;  // what the queue holds: every message
    std::string refused;                // by the checkpoint (Catch assertions stay on this thread)
    // What the closing thread finds as soon as the close or checkpoint returns, before this
    // thread can look: a close that did not wait would find the files missing.
    std::atomic<bool> started{false};
    bool indexed_at_return = false;
    auto indexed = [&] { return faults.exists(path_of(1, "idx")) && faults.exists(path_of(2, "idx")); };
    std::thread closer;
    SECTION("closed") {
        closer = std::thread([&] {
            started = true;
            log.reset();
            indexed_at_return = indexed();
        });
    }
    SECTION("a checkpoint, which indexes the head too") {
        std::uint64_t seq = 1;
        for (Location l : at) {
            RecoveredEntry e;
            e.queue_id = 1;
            e.queue_seq = seq++;
            e.location = l;
            e.body_size = 200;
            e.flags = message_flags::persistent;
            pairs.push_back(e);
        }
        closer = std::thread([&] {
            started = true;
            if (auto st = log->write_checkpoint(pairs); !st) refused = st.error().message;
            indexed_at_return = indexed() && faults.exists(path_of(3, "idx"));  // the sealed head's too
        });
    }
    while (!started) std::this_thread::yield();
    fs.open_gate();
    closer.join();
    CHECK(refused.empty());
    CHECK(indexed_at_return);
}

TEST_CASE("after a crash the sealed segments are read from their indexes, with the answer of a full scan",
          "[store][index]") {
    Crashed c;
    auto with = copy_of(c.fs);
    auto without = copy_of(c.fs, false);
    Outcome a = recover_from(*with);
    Outcome b = recover_from(*without);
    CHECK(a.r.stats.segments >= 4);
    CHECK(a.r.stats.indexed_segments == a.r.stats.segments - 1);  // all but the head
    CHECK(a.r.stats.bad_indexes == 0);
    CHECK(b.r.stats.indexed_segments == 0);
    CHECK(a.r.stats.records == b.r.stats.records);
    CHECK(a.r.stats.live == b.r.stats.live);
    require_same(a.r.entries, b.r.entries);
    // The scan wrote the indexes it lacked, the former head's too: the next start reads no record.
    CHECK(b.r.stats.indexes_written == b.r.stats.segments);
    Outcome again = recover_from(*without);
    // All but the segment of the message recover_from() appended.
    CHECK(again.r.stats.indexed_segments == again.r.stats.segments - 1);
    std::erase_if(again.r.entries, [](const RecoveredEntry& e) { return e.queue_seq == 1000; });
    require_same(again.r.entries, b.r.entries);
}

TEST_CASE("a torn, corrupt or mismatched index is refused, said so, and its segment read", "[store][index]") {
    Crashed c;
    const std::string idx = path_of(2, "idx");
    REQUIRE(c.fs.exists(idx));
    const std::string good = c.fs.contents(idx);
    auto damaged = [&](const std::string& what, const std::function<void(FaultFileSystem&)>& damage) {
        DYNAMIC_SECTION(what) {
            auto fs = copy_of(c.fs);
            damage(*fs);
            Outcome reference = recover_from(*copy_of(*fs, false));
            Outcome r = recover_from(*fs);
            CHECK(r.r.stats.bad_indexes == 1);
            CHECK(r.r.stats.indexed_segments == r.r.stats.segments - 2);
            bool said = false;
            for (const auto& line : r.lines)
                said = said || (line.find(idx) != std::string::npos &&
                                line.find("reading the segment instead") != std::string::npos);
            CHECK(said);
            require_same(r.r.entries, reference.r.entries);
            // Written again from the segment: the next start uses it.
            Outcome next = recover_from(*fs);
            CHECK(next.r.stats.bad_indexes == 0);
            CHECK(next.r.stats.indexed_segments == next.r.stats.segments - 1);
        }
    };
    damaged("torn", [&](FaultFileSystem& fs) { fs.set_contents(idx, good.substr(0, good.size() - 7)); });
    damaged("a flipped byte", [&](FaultFileSystem& fs) {
        std::string bad = good;
        bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x10);
        fs.set_contents(idx, bad);
    });
    damaged("a bad header", [&](FaultFileSystem& fs) {
        std::string bad = good;
        bad[5] = 9;
        fs.set_contents(idx, bad);
    });
    damaged("another segment's", [&](FaultFileSystem& fs) { fs.set_contents(idx, c.fs.contents(path_of(3, "idx"))); });
    damaged("a segment of the same number and size with other records", [&](FaultFileSystem& fs) {
        // An index that outlived its segment (a broker that knows no indexes deleted it, and
        // later wrote another segment of that number) stands for nothing.
        Crashed other(10);
        const std::string seg = path_of(2, "seg");
        REQUIRE(other.fs.contents(seg).size() == c.fs.contents(seg).size());
        fs.set_contents(seg, other.fs.contents(seg));
    });
    damaged("a segment of another size", [&](FaultFileSystem& fs) {
        // A crash kept the index and lost the segment's last write (files are not ordered).
        const std::string seg = path_of(2, "seg");
        std::string bytes = c.fs.contents(seg);
        fs.set_contents(seg, bytes.substr(0, bytes.size() - 50));
    });
}

TEST_CASE("a failed index write costs only a full read of its segment", "[store][index]") {
    FaultFileSystem fs;
    std::vector<std::string> lines;
    {
        Syncer s;
        LogOptions o = small_segments();
        o.warn = [&](std::string_view line) { lines.emplace_back(line); };
        auto log = fresh_log(fs, s.service, o);
        for (int i = 1; i <= 30; ++i) log->append(message(std::string(200, 'b'), {{1, std::uint64_t(i)}}).record());
        // The first index write puts 20 bytes in the file and fails (a full disk).
        fs.inject({FaultFileSystem::Op::Write, 1, std::errc::no_space_on_device, 20, ".idx"});
        REQUIRE(log->flush());  // the messages are stored all the same
        REQUIRE_FALSE(s.sync().error);
        s.settle_indexes(*log);  // the failure is reported on the loop, by the completion
        CHECK(log->stats().index_write_failures == 1);
        CHECK(log->stats().indexes_written == 1);
    }
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains(path_of(1, "idx")) && Catch::Contains("cannot write"));
    CHECK_FALSE(fs.exists(path_of(1, "idx")));  // the torn one is removed
    CHECK(fs.exists(path_of(2, "idx")));
    SECTION("killed: the files as written") {
        Outcome r = recover_from(fs);
        CHECK(r.r.entries.size() == 30);
        CHECK(r.r.stats.bad_indexes == 0);
        CHECK(r.r.stats.indexed_segments == r.r.stats.segments - 2);  // segment 1 and the head read whole
    }
    SECTION("a power cut: indexes are not synced, so what is left of them is refused") {
        Outcome r = recover_from(*fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced));
        CHECK(r.r.entries.size() == 30);
        CHECK(r.r.stats.indexed_segments == 0);
    }
}

TEST_CASE("a segment whose flush failed gets no index", "[store][index]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, small_segments());
    for (int i = 1; i <= 5; ++i) log->append(message(std::string(200, 'c'), {{1, std::uint64_t(i)}}).record());
    REQUIRE(log->flush());
    for (int i = 6; i <= 8; ++i) log->append(message(std::string(200, 'c'), {{1, std::uint64_t(i)}}).record());
    fs.inject({FaultFileSystem::Op::Write, 1, std::errc::no_space_on_device, 100, ".seg"});
    REQUIRE_FALSE(log->flush());  // 6..8 dropped, segment 1 sealed
    for (int i = 9; i <= 30; ++i) log->append(message(std::string(200, 'c'), {{1, std::uint64_t(i)}}).record());
    REQUIRE(log->flush());
    REQUIRE_FALSE(s.sync().error);
    s.settle_indexes(*log);
    CHECK_FALSE(fs.exists(path_of(1, "idx")));
    CHECK(fs.exists(path_of(2, "idx")));
    Outcome r = recover_from(*fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced));
    CHECK(r.r.entries.size() == 27);
    for (const auto& e : r.r.entries) CHECK((e.queue_seq <= 5 || e.queue_seq >= 9));
}

TEST_CASE("an index goes with its segment, and one left without a segment is deleted", "[store][index]") {
    FaultFileSystem fs;
    {
        Syncer s;
        auto log = fresh_log(fs, s.service, small_segments());
        std::vector<Location> at;
        for (int i = 1; i <= 30; ++i)
            at.push_back(log->append(message(std::string(200, 'd'), {{1, std::uint64_t(i)}}).record()));
        REQUIRE(log->flush());
        s.settle_indexes(*log);
        REQUIRE(fs.exists(path_of(1, "idx")));
        for (Location l : at)
            if (location_segment(l) == 1) log->ack(l, 1);
        REQUIRE(log->flush());
        CHECK_FALSE(fs.exists(path_of(1, "seg")));
        CHECK_FALSE(fs.exists(path_of(1, "idx")));
    }
    // A crash between the unlinks of a settled segment and of its index.
    fs.set_contents(path_of(7, "idx"), fs.contents(path_of(2, "idx")));
    Outcome r = recover_from(fs);
    CHECK_FALSE(fs.exists(path_of(7, "idx")));
    CHECK(r.r.stats.bad_indexes == 0);
}

// A log stopped cleanly with its head segment taking appends: 60 messages in segments of 4 KiB,
// the checkpoint written. `pairs` are what the queues held (as the broker hands them over).
struct CleanlyStopped {
    FaultFileSystem fs;
    std::vector<RecoveredEntry> pairs;
    std::uint32_t head = 0;
    CleanlyStopped() {
        Syncer s;
        auto log = fresh_log(fs, s.service, small_segments());
        for (int i = 1; i <= 60; ++i) {
            RecoveredEntry e;
            e.queue_id = 1;
            e.queue_seq = std::uint64_t(i);
            e.body_size = 100;
            e.flags = message_flags::persistent;
            e.location = log->append(message(std::string(100, 'c'), {{1, e.queue_seq}}).record());
            pairs.push_back(e);
            if (i % 7 == 0) REQUIRE(log->flush());
        }
        REQUIRE(log->flush());
        REQUIRE_FALSE(s.sync().error);
        head = location_segment(pairs.back().location);
        REQUIRE(head >= 3);
        REQUIRE_FALSE(fs.exists(path_of(head, "idx")));
        REQUIRE(log->write_checkpoint(pairs));
        REQUIRE(fs.exists(path_of(head, "idx")));  // it waited for the write
    }
};

TEST_CASE("a clean stop indexes the head segment: no later start reads a record of it", "[store][index][checkpoint]") {
    CleanlyStopped c;
    CHECK(c.fs.exists(path_of(c.head, "idx")));
    auto without_checkpoint = copy_of(c.fs);
    REQUIRE(without_checkpoint->unlink("/data/vhost/checkpoint"));

    SECTION("the start after it reads the checkpoint, and the one after a crash that follows, indexes only") {
        {
            Syncer s;
            std::unique_ptr<MessageLog> log;
            Recovered r = reopen(c.fs, s, log);
            CHECK(r.stats.checkpoint);
            CHECK(r.stats.records == 0);
            require_same(r.entries, c.pairs, true);
        }  // no checkpoint: a crash
        Syncer s;
        std::unique_ptr<MessageLog> log;
        Recovered r = reopen(c.fs, s, log);
        CHECK_FALSE(r.stats.checkpoint);
        CHECK(r.stats.segments == c.head);
        CHECK(r.stats.indexed_segments == r.stats.segments);  // nothing read record by record
        CHECK(r.stats.bad_indexes == 0);
        require_same(r.entries, c.pairs, true);
    }
    SECTION("a start whose checkpoint is gone reads indexes only") {
        Syncer s;
        std::unique_ptr<MessageLog> log;
        Recovered r = reopen(*without_checkpoint, s, log);
        CHECK(r.stats.indexed_segments == r.stats.segments);
        CHECK(r.stats.bad_indexes == 0);
        require_same(r.entries, c.pairs, true);
        for (const auto& e : r.entries) CHECK(body_at(*log, e.location) == std::string(100, 'c'));
    }
}

TEST_CASE("appends after a restart from a clean stop go to a new segment, and a crash then loses nothing",
          "[store][index][checkpoint]") {
    CleanlyStopped c;
    const std::string head_index = c.fs.contents(path_of(c.head, "idx"));
    const std::string head_bytes = c.fs.contents(path_of(c.head, "seg"));
    Syncer s;
    std::unique_ptr<MessageLog> log;
    REQUIRE(reopen(c.fs, s, log).stats.checkpoint);
    std::vector<Location> added;
    for (int i = 1; i <= 5; ++i)
        added.push_back(log->append(message(std::string(50, 'n'), {{1, std::uint64_t(1000 + i)}}).record()));
    REQUIRE(log->flush());
    REQUIRE_FALSE(s.sync().error);
    for (Location l : added) CHECK(location_segment(l) > c.head);
    // The indexed segment and its index are as the clean stop left them.
    CHECK(c.fs.contents(path_of(c.head, "seg")) == head_bytes);
    CHECK(c.fs.contents(path_of(c.head, "idx")) == head_index);

    // Seed 20: killed (the page cache survives); the others: power cuts, which may lose indexes
    // (never synced), so that their segments are read, never their messages.
    for (std::uint64_t seed = 0; seed <= 20; ++seed) {
        INFO("seed " << seed);
        auto image = seed == 20  ? copy_of(c.fs)
                     : seed == 0 ? c.fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced)
                                 : c.fs.crash_image(FaultFileSystem::CrashMode::KeepPrefix, seed);
        Syncer s2;
        std::unique_ptr<MessageLog> again;
        Recovered r = reopen(*image, s2, again);
        CHECK(r.stats.bad_records == 0);
        REQUIRE(r.entries.size() == c.pairs.size() + added.size());  // all synced
        std::vector<RecoveredEntry> old(r.entries.begin(), r.entries.begin() + std::ptrdiff_t(c.pairs.size()));
        require_same(old, c.pairs, true);
        for (std::size_t k = 0; k < added.size(); ++k) {
            CHECK(r.entries[c.pairs.size() + k].location == added[k]);
            CHECK(body_at(*again, added[k]) == std::string(50, 'n'));
        }
        if (seed == 20) {
            CHECK(r.stats.indexed_segments == r.stats.segments - 1);  // all but the new head
            CHECK(r.stats.bad_indexes == 0);
        }
    }
}

TEST_CASE("a crash at any point of a clean stop of a zero-filled log loses nothing", "[store][index][checkpoint]") {
    LogOptions o = small_segments();
    o.segment_size = 64 << 10;
    o.preallocate = 16 << 10;
    FaultFileSystem fs;
    std::vector<RecoveredEntry> pairs;
    std::vector<std::unique_ptr<FaultFileSystem>> images;
    {
        Syncer s;
        auto log = fresh_log(fs, s.service, o);
        for (int i = 1; i <= 100; ++i) {
            log->append(message(std::string(1000, 'z'), {{1, std::uint64_t(i)}}).record());
            if (i % 10 == 0) {
                REQUIRE(log->flush());
                s.service.wait_for_extender();
            }
        }
        REQUIRE_FALSE(s.sync().error);
        REQUIRE(fs.contents(path_of(2, "seg")).back() == '\0');  // the head, zero-filled ahead
        // The pairs as the queues hold them: all 100, from a recovery of a copy.
        auto copy = copy_of(fs);
        Syncer s2;
        std::unique_ptr<MessageLog> other;
        pairs = reopen(*copy, s2, other, o).entries;
        REQUIRE(pairs.size() == 100);
        for (std::uint64_t seed = 0; seed < 30; ++seed)
            images.push_back(fs.crash_image(FaultFileSystem::CrashMode::KeepPrefix, seed));
        REQUIRE(log->write_checkpoint(pairs));
        // Its cut of the zeros and the head's index are not synced: each is kept or not. Without
        // the checkpoint, as if the crash came before its rename.
        for (std::uint64_t seed = 0; seed < 30; ++seed) {
            images.push_back(fs.crash_image(FaultFileSystem::CrashMode::KeepPrefix, seed));
            REQUIRE(images.back()->unlink("/data/vhost/checkpoint"));
        }
    }
    CHECK(fs.exists(path_of(2, "idx")));
    images.push_back(copy_of(fs));  // the clean stop, whole
    int indexed = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
        INFO("image " << i);
        Syncer s;
        std::unique_ptr<MessageLog> log;
        Recovered r = reopen(*images[i], s, log, o);
        CHECK(r.stats.bad_records == 0);
        require_same(r.entries, pairs, r.stats.checkpoint);
        if (!r.stats.checkpoint && r.stats.indexed_segments == r.stats.segments) ++indexed;
    }
    CHECK(indexed > 0);  // some crash kept the cut and the head's index
}

}  // namespace warren::store
