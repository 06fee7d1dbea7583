// MessageLog under write and sync errors (a full disk, an I/O error): flush reports the error,
// nothing is half applied (the files are cut back), the records of the failed flush are never
// reported as stored, buffered events survive for the next flush, and a later recovery sees a
// consistent log.
#include <catch2/catch.hpp>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;
using Op = FaultFileSystem::Op;

const std::string seg1 = "/data/vhost/00000001.seg";
const std::string evt1 = "/data/vhost/00000001.evt";

std::vector<std::uint64_t> recovered_seqs(FaultFileSystem& fs) {
    Syncer s;
    auto log = open_log(fs, s.service);
    auto r = recover(*log);
    CHECK(r.stats.bad_records == 0);
    std::vector<std::uint64_t> out;
    for (const auto& e : r.entries) {
        out.push_back(e.queue_seq);
        CHECK(body_at(*log, e.location) == std::to_string(e.queue_seq));
    }
    return out;
}

TEST_CASE("a full disk on a segment write: flush fails, the file is cut back, the records are dropped",
          "[store][faults]") {
    for (std::size_t partial : {std::size_t{0}, std::size_t{1}, std::size_t{50}}) {
        INFO("bytes that landed before the error: " << partial);
        FaultFileSystem fs;
        Syncer s;
        auto log = fresh_log(fs, s.service);
        Location l1 = log->append(message("1", {{1, 1}}).record());
        REQUIRE(log->flush());
        REQUIRE_FALSE(s.sync().error);
        std::size_t good_size = fs.contents(seg1).size();

        Location l2 = log->append(message("2", {{1, 2}}).record());
        Location l3 = log->append(message("3", {{1, 3}}).record());
        log->deliver(l2, 1);
        log->deliver(l1, 1);
        fs.inject({Op::Write, 1, std::errc::no_space_on_device, partial, ".seg"});
        Status st = log->flush();
        REQUIRE_FALSE(st);
        CHECK(st.code() == std::errc::no_space_on_device);
        CHECK(fs.contents(seg1).size() == good_size);
        CHECK_FALSE(log->contains(l2));
        CHECK_FALSE(log->contains(l3));
        CHECK_FALSE(log->read(l3));
        CHECK(log->contains(l1));
        CHECK(log->stats().write_errors == 1);
        CHECK(log->stats().live_pairs == 1);
        CHECK(log->has_unflushed());  // the deliver of l1 waits for the next flush
        log->ack(l2, 1);              // the broker settles what it held: ignored
        CHECK(log->stats().stale_events == 1);

        // Space again: the next record goes to a new segment; the kept event is written.
        Location l4 = log->append(message("4", {{1, 4}}).record());
        CHECK(location_segment(l4) == 2);
        REQUIRE(log->flush());
        REQUIRE_FALSE(s.sync().error);
        log.reset();
        CHECK(recovered_seqs(fs) == std::vector<std::uint64_t>{1, 4});
    }
}

TEST_CASE("an I/O error on a sidecar write undoes the segment write of the same flush", "[store][faults]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    Location l1 = log->append(message("1", {{1, 1}}).record());
    REQUIRE(log->flush());
    std::size_t seg_size = fs.contents(seg1).size();
    Location l2 = log->append(message("2", {{1, 2}}).record());
    log->ack(l1, 1);
    fs.inject({Op::Write, 1, std::errc::io_error, 7, ".evt"});
    REQUIRE_FALSE(log->flush());
    CHECK(fs.contents(seg1).size() == seg_size);
    CHECK(fs.contents(evt1).size() == 0);  // created by this flush, cut back to nothing
    CHECK_FALSE(log->contains(l2));
    // The ack was not lost: the next flush writes it (with a file header, the sidecar is new).
    REQUIRE(log->flush());
    log.reset();
    CHECK(recovered_seqs(fs).empty());
}

TEST_CASE("a segment file that cannot be created fails the flush, and the next one works", "[store][faults]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    fs.inject({Op::Open, 1, std::errc::too_many_files_open, 0, ".seg"});
    Location l1 = log->append(message("1", {{1, 1}}).record());
    REQUIRE_FALSE(log->flush());
    CHECK_FALSE(log->contains(l1));
    Location l2 = log->append(message("2", {{1, 2}}).record());
    REQUIRE(log->flush());
    CHECK(log->contains(l2));
    log.reset();
    CHECK(recovered_seqs(fs) == std::vector<std::uint64_t>{2});
}

TEST_CASE("short writes are completed, not mistaken for errors", "[store][faults]") {
    FaultFileSystem fs;
    fs.set_short_writes(true);
    Syncer s;
    auto log = fresh_log(fs, s.service);
    Location l1 = log->append(message("1", {{1, 1}}).record());
    log->append(message("2", {{1, 2}}).record());
    log->ack(l1, 1);
    REQUIRE(log->flush());
    log.reset();
    CHECK(recovered_seqs(fs) == std::vector<std::uint64_t>{2});
}

TEST_CASE("a failed fdatasync reaches the sync result, naming the file", "[store][faults]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    log->append(message("1", {{1, 1}}).record());
    REQUIRE(log->flush());
    fs.inject({Op::Sync, 1, std::errc::io_error, 0, ".seg"});
    auto result = s.sync();
    CHECK(result.error == std::errc::io_error);
    CHECK_THAT(result.message, Catch::Contains(seg1));
    // Sticky: the next sync succeeds on disk, but what the failed one covered is not known
    // to be there, so it fails too.
    log->append(message("2", {{1, 2}}).record());
    REQUIRE(log->flush());
    CHECK(s.sync().error == std::errc::io_error);
}

TEST_CASE("a failed write whose cut-back fails too is reported, and recovery stays consistent", "[store][faults]") {
    FaultFileSystem fs;
    Syncer s;
    std::vector<std::string> lines;
    LogOptions options;
    options.warn = [&](std::string_view line) { lines.emplace_back(line); };
    auto log = fresh_log(fs, s.service, options);
    log->append(message("1", {{1, 1}}).record());
    REQUIRE(log->flush());
    log->append(message(std::string(200, '2'), {{1, 2}}).record());
    fs.inject({Op::Write, 1, std::errc::io_error, 100, ".seg"});
    fs.inject({Op::Truncate, 1, std::errc::io_error});
    REQUIRE_FALSE(log->flush());
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("cannot cut") && Catch::Contains(seg1));
    log.reset();
    Syncer s2;
    auto again = open_log(fs, s2.service);
    auto r = recover(*again);
    REQUIRE(r.entries.size() == 1);  // the half record is a torn tail
    CHECK(r.entries[0].queue_seq == 1);
    CHECK(r.stats.torn_tails == 1);
}

}  // namespace
}  // namespace warren::store
