// The clean-shutdown checkpoint: used when the files are as it describes them, ignored (with a
// full scan giving the same answer) when anything changed or it is damaged, read only once, and
// refused when the pairs it is given do not match what the log counts.
#include <catch2/catch.hpp>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store/message_log.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const std::string checkpoint_path = "/data/vhost/checkpoint";

// Two segments' worth of messages for queues 1 and 2; some acked, one delivered.
struct Base {
    FaultFileSystem fs;
    std::vector<RecoveredEntry> live;  // what a broker would hand to write_checkpoint
    Base() {
        Syncer s;
        LogOptions o;
        o.segment_size = 4096;
        auto log = fresh_log(fs, s.service, o);
        std::vector<Location> at;
        for (int i = 1; i <= 60; ++i)
            at.push_back(log->append(message(std::string(100, 'a'), {{1, std::uint64_t(i)}, {2, std::uint64_t(i)}}).record()));
        REQUIRE(log->flush());
        for (int i = 0; i < 60; ++i) {
            if (i % 3 == 0) log->ack(at[i], 1);
            if (i % 4 == 0) log->ack(at[i], 2);
        }
        REQUIRE(log->flush());
        for (int i = 0; i < 60; ++i)
            for (std::uint32_t q : {1u, 2u}) {
                if ((q == 1 && i % 3 == 0) || (q == 2 && i % 4 == 0)) continue;
                RecoveredEntry e;
                e.queue_id = q;
                e.queue_seq = static_cast<std::uint64_t>(i + 1);
                e.location = at[i];
                e.body_size = 100;
                e.delivery_count = q == 1 && i == 1 ? 3 : 0;
                e.has_deadline = true;
                e.deadline_ms = i == 2 ? 1'700'000'999'000 : -1;
                e.hold_until_ms = q == 2 && i == 5 ? 1'700'000'123'000 : -1;
                live.push_back(e);
            }
    }
};

std::vector<std::pair<std::uint32_t, std::uint64_t>> keys(const std::vector<RecoveredEntry>& entries) {
    std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
    for (const auto& e : entries) out.emplace_back(e.queue_id, e.queue_seq);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("a checkpoint written at shutdown replaces reading the segments at the next start (once)",
          "[store][checkpoint]") {
    Base b;
    {
        Syncer s;
        auto log = open_log(b.fs, s.service);
        recover(*log);
        REQUIRE(log->write_checkpoint(b.live));
    }
    REQUIRE(b.fs.exists(checkpoint_path));
    Syncer s;
    std::vector<std::string> lines;
    LogOptions o;
    o.warn = [&](std::string_view l) { lines.emplace_back(l); };
    auto log = open_log(b.fs, s.service, o);
    Recovered r = recover(*log);
    for (const auto& l : lines) UNSCOPED_INFO(l);
    CHECK(r.stats.checkpoint);
    CHECK(r.stats.records == 0);  // no segment was read
    CHECK(keys(r.entries) == keys(b.live));
    for (const auto& e : r.entries) {
        CHECK(e.has_deadline);
        if (e.queue_id == 1 && e.queue_seq == 2) CHECK(e.delivery_count == 3);
        if (e.queue_seq == 3) CHECK(e.deadline_ms == 1'700'000'999'000);
        CHECK(e.hold_until_ms == (e.queue_id == 2 && e.queue_seq == 6 ? 1'700'000'123'000 : -1));
        CHECK(body_at(*log, e.location) == std::string(100, 'a'));
    }
    CHECK_FALSE(b.fs.exists(checkpoint_path));  // read once
    // The log goes on from it: settling everything deletes the segments.
    for (const auto& e : r.entries) log->ack(e.location, e.queue_id);
    log->append(message("next", {{1, 100}}).record());
    REQUIRE(log->flush());
    CHECK(log->stats().live_pairs == 1);
}

TEST_CASE("a checkpoint is ignored when a file changed after it, and the scan gives the same answer",
          "[store][checkpoint]") {
    Base b;
    {
        Syncer s;
        auto log = open_log(b.fs, s.service);
        recover(*log);
        REQUIRE(log->write_checkpoint(b.live));
    }
    // Something written after the checkpoint (as a crash after a restart that used nothing).
    std::string seg;
    for (const auto& p : b.fs.paths())
        if (p.ends_with(".evt")) seg = p;
    REQUIRE(!seg.empty());
    b.fs.set_contents(seg, b.fs.contents(seg) + "x");
    std::vector<std::string> lines;
    LogOptions o;
    o.warn = [&](std::string_view l) { lines.emplace_back(l); };
    Syncer s;
    auto log = open_log(b.fs, s.service, o);
    Recovered r = recover(*log);
    CHECK_FALSE(r.stats.checkpoint);
    CHECK(keys(r.entries) == keys(b.live));
    CHECK_FALSE(b.fs.exists(checkpoint_path));
    bool said = false;
    for (const auto& l : lines) said = said || l.find("changed since the checkpoint") != std::string::npos;
    CHECK(said);
}

TEST_CASE("a damaged checkpoint is ignored", "[store][checkpoint]") {
    Base b;
    {
        Syncer s;
        auto log = open_log(b.fs, s.service);
        recover(*log);
        REQUIRE(log->write_checkpoint(b.live));
    }
    std::string bytes = b.fs.contents(checkpoint_path);
    for (std::size_t at : {std::size_t{3}, std::size_t{40}, bytes.size() / 2, bytes.size() - 1}) {
        FaultFileSystem copy;
        REQUIRE(copy.make_directories("/data/vhost"));
        for (const auto& p : b.fs.paths()) copy.set_contents(p, b.fs.contents(p));
        std::string damaged = bytes;
        damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
        copy.set_contents(checkpoint_path, damaged);
        Syncer s;
        auto log = open_log(copy, s.service);
        Recovered r = recover(*log);
        INFO("flipped byte " << at);
        CHECK_FALSE(r.stats.checkpoint);
        CHECK(keys(r.entries) == keys(b.live));
    }
}

TEST_CASE("a checkpoint whose pairs do not add up to the log's counts is refused", "[store][checkpoint]") {
    Base b;
    Syncer s;
    auto log = open_log(b.fs, s.service);
    recover(*log);
    auto missing = b.live;
    missing.pop_back();
    CHECK_FALSE(log->write_checkpoint(missing));
    auto extra = b.live;
    extra.push_back(extra.front());
    CHECK_FALSE(log->write_checkpoint(extra));
    CHECK_FALSE(b.fs.exists(checkpoint_path));
    log->append(message("unflushed", {{1, 99}}).record());
    CHECK_FALSE(log->write_checkpoint(b.live));
}

}  // namespace warren::store

namespace warren::store {

TEST_CASE("a checkpoint of another format version is not read: the segments are", "[store][checkpoint]") {
    Base b;
    {
        Syncer s;
        auto log = open_log(b.fs, s.service);
        recover(*log);
        REQUIRE(log->write_checkpoint(b.live));
    }
    // Rewrite the header as format version 1 wrote it (48-byte pairs): the layout differs.
    std::string bytes = b.fs.contents(checkpoint_path);
    std::byte header[file_header_size];
    encode_file_header(header, {FileKind::Checkpoint, 0, 0, 1});
    bytes.replace(0, file_header_size, reinterpret_cast<const char*>(header), file_header_size);
    b.fs.set_contents(checkpoint_path, bytes);
    Syncer s;
    std::vector<std::string> lines;
    LogOptions o;
    o.warn = [&](std::string_view l) { lines.emplace_back(l); };
    auto log = open_log(b.fs, s.service, o);
    Recovered r = recover(*log);
    CHECK_FALSE(r.stats.checkpoint);
    CHECK(keys(r.entries) == keys(b.live));
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("format version 1"));
}

}  // namespace warren::store
