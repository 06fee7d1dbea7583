// MessageLog recovery from damaged files: every torn-tail length of a segment (at its end, or
// followed by the zeros of a preallocated segment) and of a sidecar, a flipped byte in every byte
// of a message record, an events record and the file headers, an unreadable or unopenable file,
// orphan and empty files. Never a crash; the rest is recovered. Zeros at the end are no problem.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const std::string seg1 = "/data/vhost/00000001.seg";
const std::string evt1 = "/data/vhost/00000001.evt";

std::unique_ptr<FaultFileSystem> clone(const FaultFileSystem& from) {
    auto fs = std::make_unique<FaultFileSystem>();
    REQUIRE(fs->make_directories("/data/vhost"));
    for (const auto& path : from.paths()) fs->set_contents(path, from.contents(path));
    return fs;
}

// Three messages in segment 1 (queue 1, seqs 1..3); the first delivered in one events record,
// the second acked in a second one.
struct Base {
    FaultFileSystem fs;
    std::vector<Location> locations;
    std::vector<std::uint64_t> evt_records;  // offsets of the events records
    Base() {
        Syncer s;
        auto log = fresh_log(fs, s.service);
        for (int i = 1; i <= 3; ++i)
            locations.push_back(log->append(message("body " + std::to_string(i), {{1, std::uint64_t(i)}}).record()));
        log->deliver(locations[0], 1);
        REQUIRE(log->flush());
        evt_records.push_back(file_header_size);
        log->ack(locations[1], 1);
        REQUIRE(log->flush());
        evt_records.push_back(file_header_size + record_header_size + event_size);
    }
    std::uint64_t record_end(std::size_t i) const {
        return i + 1 < locations.size() ? location_offset(locations[i + 1]) : fs.contents(seg1).size();
    }
};

struct Run {
    Recovered r;
    std::vector<std::string> lines;
    std::vector<std::uint64_t> seqs() const {
        std::vector<std::uint64_t> out;
        for (const auto& e : r.entries) out.push_back(e.queue_seq);
        return out;
    }
};

Run recover_from(FaultFileSystem& fs) {
    Run run;
    Syncer s;
    LogOptions options;
    options.warn = [&](std::string_view line) { run.lines.emplace_back(line); };
    auto log = open_log(fs, s.service, options);
    run.r = recover(*log);
    // The log still works afterwards.
    Location l = log->append(message("after", {{1, 99}}).record());
    REQUIRE(log->flush());
    CHECK(body_at(*log, l) == "after");
    for (const auto& e : run.r.entries) CHECK(body_at(*log, e.location) == "body " + std::to_string(e.queue_seq));
    return run;
}

TEST_CASE("an undamaged log recovers exactly", "[store][recovery]") {
    Base base;
    auto fs = clone(base.fs);
    auto run = recover_from(*fs);
    CHECK(run.seqs() == std::vector<std::uint64_t>{1, 3});
    CHECK(run.r.entries[0].delivered);
    CHECK(run.r.stats.problems.empty());
    CHECK(run.lines.empty());
}

// A preallocated segment: zeros after the records, up to where the sync thread zero-filled it.
const std::string zero_tail(3000, '\0');

TEST_CASE("zeros after the last record are unused space: no problem, cut off", "[store][recovery]") {
    Base base;
    std::string full = base.fs.contents(seg1);
    auto fs = clone(base.fs);
    fs->set_contents(seg1, full + zero_tail);
    auto run = recover_from(*fs);
    CHECK(run.seqs() == std::vector<std::uint64_t>{1, 3});
    CHECK(run.r.stats.problems.empty());
    CHECK(run.lines.empty());
    CHECK(run.r.stats.unused_bytes == zero_tail.size());
    CHECK(run.r.stats.truncated_bytes == 0);
    CHECK(fs->contents(seg1).size() == full.size());  // cut (the "after" record goes to a new segment)
}

TEST_CASE("a whole last record with a flipped body byte, zeros after it, is bad bytes, not a torn tail",
          "[store][recovery]") {
    Base base;
    std::string full = base.fs.contents(seg1);
    std::uint64_t last = location_offset(base.locations[2]);
    for (std::uint64_t at = full.size() - std::string("body 3").size(); at < full.size(); ++at) {
        INFO("byte " << at);
        auto fs = clone(base.fs);
        std::string bytes = full + zero_tail;
        bytes[at] ^= 0x40;
        fs->set_contents(seg1, bytes);
        auto run = recover_from(*fs);
        CHECK(run.seqs() == std::vector<std::uint64_t>{1});
        CHECK(run.r.stats.bad_records == 1);
        CHECK(run.r.stats.torn_tails == 0);
        REQUIRE(run.r.stats.problems.size() == 1);
        CHECK(run.r.stats.problems[0].offset == last);
        CHECK(fs->contents(seg1).size() == last);
    }
}

TEST_CASE("every torn-tail length of the last message record is cut at the last whole record", "[store][recovery]") {
    Base base;
    std::string full = base.fs.contents(seg1);
    std::uint64_t last = location_offset(base.locations[2]);
    // Torn at the end of the file (appended), or with the zeros it was written into after it.
    const std::string zeros = GENERATE(std::string(), zero_tail);
    for (std::uint64_t keep = 1; keep < full.size() - last; ++keep) {
        INFO("bytes of the last record kept: " << keep << ", then zeros: " << zeros.size());
        auto fs = clone(base.fs);
        fs->set_contents(seg1, full.substr(0, last + keep) + zeros);
        auto run = recover_from(*fs);
        CHECK(run.seqs() == std::vector<std::uint64_t>{1});
        CHECK(run.r.stats.torn_tails == 1);
        CHECK(run.r.stats.bad_records == 0);
        CHECK(run.r.stats.truncated_bytes == keep + zeros.size());
        REQUIRE(run.r.stats.problems.size() == 1);
        CHECK(run.r.stats.problems[0].file == seg1);
        CHECK(run.r.stats.problems[0].offset == last);
        CHECK(fs->contents(seg1).size() == last);  // cut
    }
}

TEST_CASE("every torn-tail length of the last events record is cut, losing its events and no others",
          "[store][recovery]") {
    Base base;
    std::string full = base.fs.contents(evt1);
    std::uint64_t last = base.evt_records[1];
    for (std::uint64_t keep = 1; keep < full.size() - last; ++keep) {
        INFO("bytes of the last events record kept: " << keep);
        auto fs = clone(base.fs);
        fs->set_contents(evt1, full.substr(0, last + keep));
        auto run = recover_from(*fs);
        CHECK(run.seqs() == std::vector<std::uint64_t>{1, 2, 3});  // the ack of 2 is gone
        CHECK(run.r.entries[0].delivered);                         // the first record's event is kept
        CHECK(run.r.stats.torn_tails == 1);
        CHECK(run.r.stats.bad_records == 0);
    }
}

TEST_CASE("a torn segment or sidecar header leaves no records and no crash", "[store][recovery]") {
    Base base;
    for (std::uint64_t keep = 0; keep < file_header_size; ++keep) {
        INFO("header bytes kept: " << keep);
        auto fs = clone(base.fs);
        fs->set_contents(evt1, base.fs.contents(evt1).substr(0, keep));
        auto run = recover_from(*fs);
        CHECK(run.seqs() == std::vector<std::uint64_t>{1, 2, 3});
        fs = clone(base.fs);
        fs->set_contents(seg1, base.fs.contents(seg1).substr(0, keep));
        run = recover_from(*fs);
        CHECK(run.r.entries.empty());
    }
}

TEST_CASE("a flipped byte anywhere in a message record skips it alone, reported with file and offset",
          "[store][recovery]") {
    Base base;
    std::string full = base.fs.contents(seg1);
    std::uint64_t start = location_offset(base.locations[0]), end = base.record_end(0);
    const std::string zeros = GENERATE(std::string(), zero_tail);
    for (std::uint64_t at = start; at < end; ++at) {
        INFO("byte " << at - start << " of the record, then zeros: " << zeros.size());
        auto fs = clone(base.fs);
        std::string bytes = full + zeros;
        bytes[at] ^= 0x40;
        fs->set_contents(seg1, bytes);
        auto run = recover_from(*fs);
        CHECK(run.seqs() == std::vector<std::uint64_t>{3});
        CHECK(run.r.stats.bad_records == 1);
        CHECK(run.r.stats.stale_events == 1);  // the deliver event of the lost record
        REQUIRE(run.r.stats.problems.size() == 1);
        CHECK(run.r.stats.problems[0].file == seg1);
        CHECK(run.r.stats.problems[0].offset == start);
        REQUIRE(run.lines.size() == 1);
        CHECK_THAT(run.lines[0], Catch::Contains(seg1) && Catch::Contains(fmt::format("offset {}", start)));
    }
}

TEST_CASE("a flipped byte anywhere in an events record skips that record's events alone", "[store][recovery]") {
    Base base;
    std::string full = base.fs.contents(evt1);
    std::uint64_t start = base.evt_records[0], end = base.evt_records[1];
    for (std::uint64_t at = start; at < end; ++at) {
        INFO("byte " << at - start << " of the events record");
        auto fs = clone(base.fs);
        std::string bytes = full;
        bytes[at] ^= 0x02;
        fs->set_contents(evt1, bytes);
        auto run = recover_from(*fs);
        CHECK(run.seqs() == std::vector<std::uint64_t>{1, 3});  // the ack in the next record still holds
        CHECK_FALSE(run.r.entries[0].delivered);                // the deliver was in the bad record
        CHECK(run.r.stats.bad_records == 1);
        REQUIRE(run.r.stats.problems.size() == 1);
        CHECK(run.r.stats.problems[0].file == evt1);
        CHECK(run.r.stats.problems[0].offset == start);
    }
}

TEST_CASE("a flipped byte in a file header is reported and the records still count", "[store][recovery]") {
    Base base;
    for (const std::string& path : {seg1, evt1}) {
        for (std::uint64_t at = 0; at < file_header_size; ++at) {
            INFO(path << " header byte " << at);
            auto fs = clone(base.fs);
            std::string bytes = base.fs.contents(path);
            bytes[at] ^= 0x08;
            fs->set_contents(path, bytes);
            auto run = recover_from(*fs);
            CHECK(run.seqs() == std::vector<std::uint64_t>{1, 3});
            CHECK(run.r.stats.bad_headers == 1);
        }
    }
}

TEST_CASE("an unreadable segment is reported and left alone while the other segments recover", "[store][recovery]") {
    FaultFileSystem fs;
    LogOptions options;
    options.segment_size = 4096;
    {
        Syncer s;
        auto log = fresh_log(fs, s.service, options);
        for (int i = 1; i <= 3; ++i)
            log->append(message("body " + std::to_string(i), {{1, std::uint64_t(i)}}).record());
        log->append(message(std::string(4000, 'x'), {{1, 4}}).record());  // segment 2
        REQUIRE(log->flush());
    }
    std::string before = fs.contents(seg1);
    fs.set_unreadable(seg1, true);
    Syncer s;
    std::vector<std::string> lines;
    options.warn = [&](std::string_view line) { lines.emplace_back(line); };
    auto log = open_log(fs, s.service, options);
    auto r = recover(*log);
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].queue_seq == 4);
    CHECK(r.stats.unreadable_files == 1);
    REQUIRE_FALSE(lines.empty());
    CHECK_THAT(lines[0], Catch::Contains(seg1) && Catch::Contains("unreadable"));
    CHECK(fs.contents(seg1) == before);  // untouched
    Location l = log->append(message("new", {{1, 5}}).record());
    CHECK(location_segment(l) == 3);
    REQUIRE(log->flush());
}

TEST_CASE("a segment that cannot be opened is reported and recovery goes on", "[store][recovery]") {
    Base base;
    auto fs = clone(base.fs);
    fs->inject({FaultFileSystem::Op::Open, 1, std::errc::permission_denied, 0, ".seg"});
    Syncer s;
    auto log = open_log(*fs, s.service);
    auto r = recover(*log);
    CHECK(r.entries.empty());
    CHECK(r.stats.unreadable_files == 1);
    CHECK(fs->exists(seg1));
    CHECK(fs->exists(evt1));
}

TEST_CASE("an unreadable sidecar: its messages are kept as delivered and the file set aside", "[store][recovery]") {
    Base base;
    auto fs = clone(base.fs);
    fs->set_unreadable(evt1, true);
    Syncer s;
    auto log = open_log(*fs, s.service);
    auto r = recover(*log);
    CHECK(r.entries.size() == 3);  // the ack of 2 is unknown: at least once
    for (const auto& e : r.entries) CHECK(e.delivered);
    CHECK(r.stats.unreadable_files == 1);
    CHECK(fs->exists(evt1 + ".unreadable"));
    CHECK_FALSE(fs->exists(evt1));
    log->ack(r.entries[1].location, 1);  // a fresh sidecar takes new events
    REQUIRE(log->flush());
    log.reset();
    log = open_log(*fs, s.service);
    CHECK(recover(*log).entries.size() == 2);
}

TEST_CASE("an orphan sidecar is deleted and its number never reused", "[store][recovery]") {
    Base base;
    auto fs = clone(base.fs);
    fs->set_contents("/data/vhost/00000007.evt", base.fs.contents(evt1));
    Syncer s;
    auto log = open_log(*fs, s.service);
    auto r = recover(*log);
    CHECK(r.entries.size() == 2);
    CHECK(r.stats.deleted_files == 1);
    CHECK_FALSE(fs->exists("/data/vhost/00000007.evt"));
    CHECK(location_segment(log->append(message("x", {{1, 9}}).record())) == 8);
}

TEST_CASE("recovering twice gives the same result and no new problems", "[store][recovery]") {
    Base base;
    auto fs = clone(base.fs);
    std::string bytes = fs->contents(seg1);
    bytes.resize(bytes.size() - 5);  // a torn tail
    fs->set_contents(seg1, bytes);
    Syncer s;
    auto log = open_log(*fs, s.service);
    auto first = recover(*log);
    log.reset();
    log = open_log(*fs, s.service);
    auto second = recover(*log);
    CHECK(first.stats.torn_tails == 1);
    CHECK(second.stats.problems.empty());
    REQUIRE(first.entries.size() == second.entries.size());
    for (std::size_t i = 0; i < first.entries.size(); ++i)
        CHECK(first.entries[i].location == second.entries[i].location);
}

}  // namespace
}  // namespace warren::store
