// MessageLog with its head segment zero-filled ahead of its writes (LogOptions::preallocate):
// records overwrite the zeros, which never pass the segment size; a crash between a zero-fill and
// its use loses nothing and reports nothing; the checkpoint sees logical sizes; a failed zero-fill
// leaves plain appends, and a failed sync of one fails the storage (earlier writes' tickets too).
// A sealed segment's zeros are cut before its index is written (both by the extender, after its
// zero-fills of that segment), so that the index is usable.
#include <catch2/catch.hpp>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const std::string seg1 = "/data/vhost/00000001.seg";
const std::string idx1 = "/data/vhost/00000001.idx";
constexpr std::uint64_t segment_size = 64 << 10;
constexpr std::uint64_t step = 16 << 10;

LogOptions preallocating(std::vector<std::string>* lines = nullptr) {
    LogOptions o;
    o.segment_size = segment_size;
    o.preallocate = step;
    if (lines) o.warn = [lines](std::string_view l) { lines->emplace_back(l); };
    return o;
}

bool zeros_from(const std::string& bytes, std::uint64_t from) {
    return bytes.find_first_not_of('\0', from) == std::string::npos;
}

// Appends `count` messages (queue 1, seqs from `first`) and flushes them; the extender's work
// lands before it returns.
std::vector<Location> append_flushed(MessageLog& log, Syncer& s, std::uint64_t first, int count,
                                     std::size_t body = 1000) {
    std::vector<Location> out;
    for (int i = 0; i < count; ++i)
        out.push_back(log.append(message(std::string(body, 'b'), {{1, first + std::uint64_t(i)}}).record()));
    REQUIRE(log.flush());
    s.service.wait_for_extender();
    return out;
}

Recovered recover_image(FaultFileSystem& image, std::vector<std::string>* lines = nullptr) {
    Syncer s;
    LogOptions o;
    if (lines) o.warn = [lines](std::string_view l) { lines->emplace_back(l); };
    auto log = open_log(image, s.service, o);
    return recover(*log);
}

TEST_CASE("records overwrite the zeros kept ahead of them, which never pass the segment size", "[store][preallocate]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, preallocating());
    auto first = append_flushed(*log, s, 1, 1);
    const std::uint64_t written = log->stats().bytes_on_disk;  // logical: the zeros are not counted
    std::string bytes = fs.contents(seg1);
    CHECK(bytes.size() == written + step);
    CHECK(zeros_from(bytes, written));
    CHECK(log->stats().preallocated_bytes == step);
    CHECK(fs.zero_syncs() == 1);

    std::uint64_t seq = 2;
    while (log->stats().segments == 1) {
        const std::uint64_t before = log->stats().bytes_on_disk;
        append_flushed(*log, s, seq++, 1);
        if (log->stats().segments != 1) break;
        const std::uint64_t end = log->stats().bytes_on_disk;
        bytes = fs.contents(seg1);
        INFO("written " << end);
        CHECK(bytes.size() <= segment_size);
        CHECK(bytes.size() >= std::min(segment_size, end + step / 2));  // asked for more in time
        CHECK(zeros_from(bytes, end));
        CHECK(before < end);
    }
    // Segment 1 was cut to its last record when it was sealed (its index describes that size).
    bytes = fs.contents(seg1);
    CHECK(bytes.size() <= segment_size);
    CHECK(bytes.find_last_not_of('\0') > bytes.size() - 64);
    CHECK(s.sync().error == std::error_code{});
    CHECK(body_at(*log, first[0]) == std::string(1000, 'b'));

    // Everything synced comes back after a power cut, with no bad record or torn tail: zeros are
    // unused space. The only problem it may leave is segment 1's index, which is never synced.
    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    std::vector<std::string> lines;
    Recovered r = recover_image(*image, &lines);
    CHECK(r.entries.size() == seq - 1);
    CHECK(r.stats.bad_records == 0);
    CHECK(r.stats.torn_tails == 0);
    CHECK(r.stats.problems.size() == r.stats.bad_indexes);
    CHECK(r.stats.unused_bytes > 0);  // the head's zeros
    CHECK(image->contents(seg1) == bytes);
}

TEST_CASE("a crash between a zero-fill and its use loses nothing and reports nothing", "[store][preallocate]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, preallocating());
    append_flushed(*log, s, 1, 3);
    REQUIRE_FALSE(s.sync().error);
    const std::uint64_t written = log->stats().bytes_on_disk;
    REQUIRE(fs.contents(seg1).size() == written + step);  // the zeros are synced too

    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    REQUIRE(image->contents(seg1).size() == written + step);
    Recovered r = recover_image(*image);
    CHECK(r.entries.size() == 3);
    CHECK(r.stats.problems.empty());
    CHECK(r.stats.unused_bytes == step);
    CHECK(image->contents(seg1).size() == written);
    // That recovery cut the zeros, then indexed the segment it read: the next start reads no record.
    CHECK(r.stats.indexes_written == 1);
    Recovered again = recover_image(*image);
    CHECK(again.stats.indexed_segments == 1);
    CHECK(again.stats.bad_indexes == 0);
    CHECK(again.entries.size() == 3);
}

TEST_CASE("a record written into the zeros and torn by a crash is a torn tail, never a bad record",
          "[store][preallocate]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, preallocating());
    append_flushed(*log, s, 1, 3);
    REQUIRE_FALSE(s.sync().error);
    append_flushed(*log, s, 4, 2);  // written over the zeros, not synced
    int torn = 0;
    for (std::uint64_t seed = 0; seed < 60; ++seed) {
        INFO("seed " << seed);
        auto image = fs.crash_image(FaultFileSystem::CrashMode::KeepPrefix, seed);
        Recovered r = recover_image(*image);
        CHECK(r.entries.size() >= 3);  // the synced ones, and maybe the others
        CHECK(r.entries.size() <= 5);
        CHECK(r.stats.bad_records == 0);
        CHECK(r.stats.torn_tails <= 1);
        torn += static_cast<int>(r.stats.torn_tails);
    }
    CHECK(torn > 0);  // some crash tore a record in the zeros
}

TEST_CASE("a checkpoint cuts the zeros off first, so that the next start can use it", "[store][preallocate]") {
    FaultFileSystem fs;
    {
        Syncer s;
        auto log = fresh_log(fs, s.service, preallocating());
        auto at = append_flushed(*log, s, 1, 3);
        REQUIRE(fs.contents(seg1).size() > log->stats().bytes_on_disk);
        std::vector<RecoveredEntry> pairs;
        for (std::size_t i = 0; i < at.size(); ++i) {
            RecoveredEntry e;
            e.queue_id = 1;
            e.queue_seq = i + 1;
            e.location = at[i];
            e.body_size = 1000;
            pairs.push_back(e);
        }
        REQUIRE(log->write_checkpoint(pairs));
        CHECK(fs.contents(seg1).size() == log->stats().bytes_on_disk);
    }
    Syncer s;
    auto log = open_log(fs, s.service, preallocating());
    Recovered r = recover(*log);
    CHECK(r.stats.checkpoint);
    CHECK(r.entries.size() == 3);
}

TEST_CASE("a failed zero-fill leaves the segment to plain appends, warned once, and loses nothing",
          "[store][preallocate][faults]") {
    FaultFileSystem fs;
    Syncer s;
    std::vector<std::string> lines;
    auto log = fresh_log(fs, s.service, preallocating(&lines));
    fs.inject({FaultFileSystem::Op::Extend, 1, std::errc::no_space_on_device, 100, ".seg"});
    append_flushed(*log, s, 1, 2);  // asks for zeros, which fail after 100 of them
    CHECK(s.service.stats().preallocation_failures == 1);
    std::uint64_t seq = 3;
    for (int i = 0; i < 20; ++i, ++seq) append_flushed(*log, s, seq, 1);
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("cannot zero-fill") && Catch::Contains(seg1));
    CHECK(s.service.stats().preallocations == 0);  // not asked again for this segment
    CHECK_FALSE(s.sync().error);

    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    Recovered r = recover_image(*image);
    CHECK(r.entries.size() == seq - 1);
    CHECK(r.stats.problems.empty());
}

TEST_CASE("a failed sync of the zeros fails the storage: tickets for records written before it fail too",
          "[store][preallocate][faults]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, preallocating());
    fs.inject({FaultFileSystem::Op::ExtendSync, 1, std::errc::io_error, 0, ".seg"});
    append_flushed(*log, s, 1, 2);  // written, not synced; the zero-fill's fdatasync fails
    CHECK(s.service.stats().preallocation_failures == 1);
    SyncResult result = s.sync();
    CHECK(result.error == std::errc::io_error);
    CHECK_THAT(result.message, Catch::Contains("fdatasync (zeros)") && Catch::Contains(seg1));
    CHECK(s.service.failure() == std::errc::io_error);
    append_flushed(*log, s, 3, 1);
    CHECK(s.sync().error == std::errc::io_error);  // and every later one
}

TEST_CASE("a segment sealed with zeros after its last record is cut to it, so that its index is used",
          "[store][preallocate][index]") {
    FaultFileSystem fs;
    Syncer s;
    std::vector<std::string> lines;
    auto log = fresh_log(fs, s.service, preallocating(&lines));
    append_flushed(*log, s, 1, 1);
    std::uint64_t seq = 2;
    std::uint64_t last_written = 0;
    while (log->stats().segments == 1) {
        last_written = log->stats().bytes_on_disk;
        append_flushed(*log, s, seq++, 1);
    }
    s.settle_indexes(*log);  // a failed cut would be reported by the completion
    CHECK(lines.empty());
    REQUIRE(fs.exists(idx1));
    CHECK(fs.contents(seg1).size() == last_written);  // its records, and no zeros after them
    CHECK(fs.contents(seg1).find_last_not_of('\0') > fs.contents(seg1).size() - 64);

    auto image = killed(fs);
    Recovered r = recover_image(*image);
    CHECK(r.entries.size() == seq - 1);
    CHECK(r.stats.indexed_segments == 1);
    CHECK(r.stats.bad_indexes == 0);
    CHECK(r.stats.problems.empty());
}

TEST_CASE("a segment sealed while the extender still zero-fills it gets its index once that is done, cut to size",
          "[store][preallocate][index]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service, preallocating());
    fs.hold_zero_syncs(true);
    log->append(message(std::string(1000, 'b'), {{1, 1}}).record());
    REQUIRE(log->flush());  // asks for zeros; the extender stalls in their fdatasync
    fs.wait_for_held_zero_syncs(1);
    std::uint64_t seq = 2;
    while (log->stats().segments == 1) log->append(message(std::string(1000, 'b'), {{1, seq++}}).record());
    REQUIRE(log->flush());  // seals segment 1 while the extender holds it
    const std::uint64_t written = log->stats().bytes_on_disk - fs.contents("/data/vhost/00000002.seg").size();
    CHECK_FALSE(fs.exists(idx1));
    fs.hold_zero_syncs(false);
    s.service.wait_for_extender();  // the zero-fill, then the index write queued after it: no flush needed
    CHECK(fs.exists(idx1));
    CHECK(fs.contents(seg1).size() == written);  // the zeros cut after the zero-fill, not before
    append_flushed(*log, s, seq++, 1);

    auto image = killed(fs);
    Recovered r = recover_image(*image);
    CHECK(r.entries.size() == seq - 1);
    CHECK(r.stats.indexed_segments == 1);
    CHECK(r.stats.bad_indexes == 0);
}

}  // namespace
}  // namespace warren::store
