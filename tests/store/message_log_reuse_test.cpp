// MessageLog writing new segments into settled segments' files (LogOptions::reuse_segments): a
// settled segment's file is renamed *.spare and the next segment is written over it; recovery
// takes none of the file's earlier records back (every record names its segment), treats that
// earlier content as unused space, cuts a torn record of the new segment like any torn tail, and
// deletes spares at the next start. A sealed reused segment is cut to its last record before its
// index is written.
#include <catch2/catch.hpp>

#include <algorithm>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const std::string dir = "/data/vhost";
const std::string seg1 = dir + "/00000001.seg";
const std::string spare1 = dir + "/00000001.spare";
const std::string seg3 = dir + "/00000003.seg";
constexpr std::uint64_t segment_size = 64 << 10;
constexpr std::uint64_t later = 1000;  // queue seqs of the messages written after segment 1 settled

LogOptions reusing() {
    LogOptions o;
    o.segment_size = segment_size;
    o.reuse_segments = 1;
    return o;
}

std::uint32_t segment_of(Location l) { return static_cast<std::uint32_t>(l >> 32); }

// Appends and flushes one message at a time (queue 1, queue seq `seq`, body of `fill`) until
// `until` says stop; returns the locations.
std::vector<Location> append_until(MessageLog& log, std::uint64_t& seq, char fill,
                                   const std::function<bool(Location)>& until) {
    std::vector<Location> out;
    for (;;) {
        out.push_back(log.append(message(std::string(1000, fill), {{1, seq++}}).record()));
        REQUIRE(log.flush());
        if (until(out.back())) return out;
    }
}

// Segment 1 filled with 'a' messages and settled (its file kept as a spare); segment 2 holds
// 'b' messages; segment 3, written into segment 1's file, gets `count` 'c' messages, synced.
struct Reused {
    FaultFileSystem fs;
    Syncer s;
    std::unique_ptr<MessageLog> log = fresh_log(fs, s.service, reusing());
    std::vector<Location> first, second, third;
    std::uint64_t seq = 1;

    explicit Reused(int count) {
        first = append_until(*log, seq, 'a', [](Location l) { return segment_of(l) == 2; });
        second.push_back(first.back());
        first.pop_back();
        s.settle_indexes(*log);  // a file the extender may still cut is not reused
        for (Location l : first) log->ack(l, 1);
        REQUIRE(log->flush());
        REQUIRE(fs.exists(spare1));
        REQUIRE_FALSE(fs.exists(seg1));
        seq = later;
        auto more = append_until(*log, seq, 'b', [](Location l) { return segment_of(l) == 3; });
        third.push_back(more.back());
        more.pop_back();
        second.insert(second.end(), more.begin(), more.end());
        while (third.size() < static_cast<std::size_t>(count))
            third.push_back(log->append(message(std::string(1000, 'c'), {{1, seq++}}).record()));
        REQUIRE(log->flush());
        REQUIRE_FALSE(s.sync().error);
    }
};

Recovered recover_image(FaultFileSystem& image, std::vector<std::string>* lines = nullptr) {
    Syncer s;
    LogOptions o = reusing();
    if (lines) o.warn = [lines](std::string_view l) { lines->emplace_back(l); };
    auto log = open_log(image, s.service, o);
    Recovered r = recover(*log);
    s.settle_indexes(*log);
    return r;
}

// Whether any message of segment 1 (queue seqs below `settled_below`, all acked) came back.
bool any_settled(const Recovered& r, std::uint64_t settled_below) {
    return std::any_of(r.entries.begin(), r.entries.end(),
                       [&](const RecoveredEntry& e) { return e.queue_seq < settled_below; });
}

// Problems other than indexes lost in the crash (they are not synced: reading the segment is the answer).
std::size_t problems_besides_indexes(const Recovered& r) { return r.stats.problems.size() - r.stats.bad_indexes; }

TEST_CASE("a settled segment's file is the next segment's, and none of its earlier records come back",
          "[store][reuse]") {
    for (int count : {1, 2, 3, 7, 20, 40}) {
        INFO(count << " records in the reused segment");
        Reused r(count);
        CHECK(r.log->stats().segments_reused == 1);
        CHECK_FALSE(r.fs.exists(spare1));
        const std::string bytes = r.fs.contents(seg3);
        // Written over segment 1's records: the file is as long as segment 1 was.
        CHECK(bytes.size() > r.log->stats().bytes_on_disk / 2);
        auto header = decode_file_header(as_bytes(bytes).first(file_header_size));
        REQUIRE(header);
        CHECK(header->number == 3);
        CHECK(header->version == 3);
        for (std::size_t i = 1; i < r.third.size(); ++i) CHECK(body_at(*r.log, r.third[i]) == std::string(1000, 'c'));
        // Each write went on with zeros to the end of its last page (no page is read to be patched).
        const std::size_t last = static_cast<std::uint32_t>(r.third.back());
        const std::size_t end = last + record_header_size + peek_record_header(as_bytes(bytes).data() + last).payload_size;
        const std::size_t page_end = (end + 4095) / 4096 * 4096;
        CHECK(bytes.find_first_not_of('\0', end) >= page_end);

        auto image = r.fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
        Recovered got = recover_image(*image);
        CHECK(got.entries.size() == r.second.size() + r.third.size());
        CHECK_FALSE(any_settled(got, r.first.size() + 1));
        CHECK(got.stats.bad_records == 0);
        CHECK(got.stats.torn_tails == 0);
        CHECK(problems_besides_indexes(got) == 0);
        CHECK(got.stats.unused_bytes > 0);  // segment 1's records after segment 3's
    }
}

TEST_CASE("a record of a reused segment torn by a crash is a torn tail, and the earlier content is unused",
          "[store][reuse]") {
    Reused r(3);
    for (int i = 0; i < 4; ++i) r.third.push_back(r.log->append(message(std::string(1000, 'c'), {{1, r.seq++}}).record()));
    REQUIRE(r.log->flush());  // not synced
    int torn = 0;
    for (std::uint64_t seed = 0; seed < 60; ++seed) {
        INFO("seed " << seed);
        auto image = r.fs.crash_image(FaultFileSystem::CrashMode::KeepPrefix, seed);
        Recovered got = recover_image(*image);
        CHECK(got.entries.size() >= r.second.size() + 3);
        CHECK(got.entries.size() <= r.second.size() + 7);
        CHECK_FALSE(any_settled(got, r.first.size() + 1));
        CHECK(got.stats.bad_records == 0);
        CHECK(got.stats.torn_tails <= 1);
        torn += static_cast<int>(got.stats.torn_tails);
    }
    CHECK(torn > 0);
}

TEST_CASE("a crash between a spare's rename and its first write leaves a segment with nothing of its own",
          "[store][reuse]") {
    Reused r(2);
    auto image = r.fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    // Segment 3 as the rename left it: segment 1's file, header and records, under 3's name.
    std::string earlier;
    {
        FaultFileSystem fs;
        Syncer s;
        auto log = fresh_log(fs, s.service, reusing());
        std::uint64_t seq = 1;
        append_until(*log, seq, 'a', [](Location l) { return segment_of(l) == 2; });
        earlier = fs.contents(seg1);
    }
    image->set_contents(seg3, earlier);
    Recovered got = recover_image(*image);
    CHECK(got.entries.size() == r.second.size());
    CHECK_FALSE(any_settled(got, r.first.size() + 1));
    CHECK(got.stats.bad_records == 0);
    CHECK(got.stats.torn_tails == 0);
    CHECK(problems_besides_indexes(got) == 0);
    CHECK_FALSE(image->exists(seg3));  // nothing live: deleted
}

TEST_CASE("spares are deleted at the next start", "[store][reuse]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, reusing());
    std::uint64_t seq = 1;
    auto first = append_until(*log, seq, 'a', [](Location l) { return segment_of(l) == 2; });
    first.pop_back();
    s.settle_indexes(*log);
    for (Location l : first) log->ack(l, 1);
    REQUIRE(log->flush());
    REQUIRE_FALSE(s.sync().error);
    REQUIRE(fs.exists(spare1));
    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    REQUIRE(image->exists(spare1));
    Recovered got = recover_image(*image);
    CHECK_FALSE(image->exists(spare1));
    CHECK(got.stats.deleted_files >= 1);
    CHECK(got.entries.size() == 1);
}

TEST_CASE("without reuse_segments a settled segment's file is deleted", "[store][reuse]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, [] {
        LogOptions o = reusing();
        o.reuse_segments = 0;
        return o;
    }());
    std::uint64_t seq = 1;
    auto first = append_until(*log, seq, 'a', [](Location l) { return segment_of(l) == 2; });
    first.pop_back();
    for (Location l : first) log->ack(l, 1);
    REQUIRE(log->flush());
    CHECK_FALSE(fs.exists(spare1));
    CHECK_FALSE(fs.exists(seg1));
}

TEST_CASE("a sealed reused segment is cut to its last record and indexed",
          "[store][reuse]") {
    Reused r(1);
    auto more = append_until(*r.log, r.seq, 'c', [](Location l) { return segment_of(l) == 4; });
    r.third.insert(r.third.end(), more.begin(), more.end() - 1);
    REQUIRE_FALSE(r.s.sync().error);
    r.s.settle_indexes(*r.log);
    CHECK(r.log->stats().indexes_written >= 1);
    CHECK(r.fs.exists(dir + "/00000003.idx"));
    const std::string bytes = r.fs.contents(seg3);
    auto image = killed(r.fs);
    Recovered got = recover_image(*image);
    CHECK(got.stats.indexed_segments >= 1);
    CHECK(got.stats.bad_indexes == 0);
    CHECK(got.entries.size() == r.second.size() + r.third.size() + 1);
    CHECK_FALSE(any_settled(got, r.first.size() + 1));
    // The index describes the segment up to its last record: nothing of segment 1 is left after it.
    CHECK(bytes.size() < segment_size);
    CHECK(bytes.find(std::string(1000, 'a')) == std::string::npos);
}

TEST_CASE("a checkpoint cuts a reused head to its last record, so that the next start can use it", "[store][reuse]") {
    FaultFileSystem fs;
    std::size_t live = 0;
    {
        Reused r(5);
        std::vector<RecoveredEntry> pairs;
        std::uint64_t seq = later;
        for (const auto* batch : {&r.second, &r.third})
            for (Location l : *batch) {
                RecoveredEntry e;
                e.queue_id = 1;
                e.queue_seq = seq++;
                e.location = l;
                e.body_size = 1000;
                pairs.push_back(e);
            }
        live = pairs.size();
        REQUIRE(r.fs.contents(seg3).size() > r.fs.contents(seg3).find(std::string(1000, 'a')));
        REQUIRE(r.log->write_checkpoint(pairs));
        CHECK(r.fs.contents(seg3).find(std::string(1000, 'a')) == std::string::npos);
        for (const auto& path : r.fs.paths()) fs.set_contents(path, r.fs.contents(path));
    }
    Syncer s;
    auto log = open_log(fs, s.service, reusing());
    Recovered got = recover(*log);
    CHECK(got.stats.checkpoint);
    CHECK(got.entries.size() == live);
}

}  // namespace
}  // namespace warren::store
