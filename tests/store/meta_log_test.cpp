// MetaLog: records and snapshots in order, compaction into a new generation, torn tails and
// flipped bytes, write errors, and a crash at every step of a compaction.
#include "store/meta_log.hpp"

#include <catch2/catch.hpp>
#include <random>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const std::string dir = "/data/meta";

std::unique_ptr<MetaLog> open_meta(FileSystem& fs, SyncService& sync, std::vector<std::string>* lines = nullptr) {
    MetaOptions options;
    if (lines) options.warn = [lines](std::string_view line) { lines->emplace_back(line); };
    auto log = MetaLog::open(fs, dir, options, sync);
    if (!log) FAIL(log.error().message);
    return std::move(*log);
}

// The definitions as the broker would rebuild them: a snapshot is the records joined by '|'.
struct State {
    std::vector<std::string> records;
    RecoveryStats stats;
};

State recover_meta(MetaLog& log) {
    State s;
    auto stats = log.recover([&](MetaLog::Kind kind, std::span<const std::byte> bytes) {
        std::string text = as_string(bytes);
        if (kind == MetaLog::Kind::Snapshot) {
            s.records.clear();
            for (std::size_t pos = 0; !text.empty();) {
                std::size_t bar = text.find('|', pos);
                s.records.push_back(text.substr(pos, bar - pos));
                if (bar == std::string::npos) break;
                pos = bar + 1;
            }
        } else {
            s.records.push_back(text);
        }
    });
    if (!stats) FAIL(stats.error().message);
    s.stats = std::move(*stats);
    return s;
}

using Records = std::vector<std::string>;

TEST_CASE("meta log records come back in order after a restart", "[store][meta]") {
    FaultFileSystem fs;
    Syncer s;
    {
        auto log = open_meta(fs, s.service);
        CHECK(recover_meta(*log).records.empty());
        log->append(as_bytes("declare q1"));
        log->append(as_bytes("bind q1"));
        CHECK(log->has_unflushed());
        REQUIRE(log->flush());
        log->append(as_bytes(""));
        log->append(as_bytes("declare q2"));
        REQUIRE(log->flush());
        CHECK_FALSE(s.sync().error);
    }
    auto log = open_meta(fs, s.service);
    auto state = recover_meta(*log);
    CHECK(state.records == Records{"declare q1", "bind q1", "", "declare q2"});
    CHECK(state.stats.problems.empty());
    log->append(as_bytes("delete q1"));
    REQUIRE(log->flush());
    log.reset();
    log = open_meta(fs, s.service);
    CHECK(recover_meta(*log).records == Records{"declare q1", "bind q1", "", "declare q2", "delete q1"});
}

TEST_CASE("compaction starts a generation from a snapshot and removes the old one", "[store][meta]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = open_meta(fs, s.service);
    recover_meta(*log);
    log->append(as_bytes("a"));
    log->append(as_bytes("b"));
    REQUIRE(log->flush());
    log->append(as_bytes("c"));  // buffered: the snapshot has it
    REQUIRE(log->compact(as_bytes("a|b|c")));
    CHECK(log->generation() == 1);
    CHECK_FALSE(log->has_unflushed());
    CHECK(fs.exists(dir + "/00000001.snap"));
    CHECK(fs.exists(dir + "/00000001.log"));
    CHECK_FALSE(fs.exists(dir + "/00000000.log"));
    CHECK_FALSE(fs.exists(dir + "/snapshot.tmp"));
    log->append(as_bytes("d"));
    REQUIRE(log->flush());
    REQUIRE(log->compact(as_bytes("a|b|c|d")));
    log->append(as_bytes("e"));
    REQUIRE(log->flush());
    CHECK_FALSE(fs.exists(dir + "/00000001.snap"));
    log.reset();
    log = open_meta(fs, s.service);
    auto state = recover_meta(*log);
    CHECK(state.records == Records{"a", "b", "c", "d", "e"});
    CHECK(log->generation() == 2);
    CHECK(state.stats.problems.empty());
}

TEST_CASE("every torn-tail length of the last meta record is cut", "[store][meta]") {
    FaultFileSystem base;
    {
        Syncer s;
        auto log = open_meta(base, s.service);
        recover_meta(*log);
        log->append(as_bytes("one"));
        log->append(as_bytes("two"));
        log->append(as_bytes("three, the last"));
        REQUIRE(log->flush());
    }
    std::string full = base.contents(dir + "/00000000.log");
    std::size_t last = full.size() - record_header_size - 15;
    for (std::size_t keep = 1; keep < full.size() - last; ++keep) {
        INFO("bytes of the last record kept: " << keep);
        FaultFileSystem fs;
        fs.set_contents(dir + "/00000000.log", full.substr(0, last + keep));
        Syncer s;
        auto log = open_meta(fs, s.service);
        auto state = recover_meta(*log);
        CHECK(state.records == Records{"one", "two"});
        CHECK(state.stats.torn_tails == 1);
        log->append(as_bytes("four"));
        REQUIRE(log->flush());
        log.reset();
        log = open_meta(fs, s.service);
        CHECK(recover_meta(*log).records == Records{"one", "two", "four"});
    }
}

TEST_CASE("a flipped byte anywhere in a meta record skips it alone, reported with file and offset", "[store][meta]") {
    FaultFileSystem base;
    {
        Syncer s;
        auto log = open_meta(base, s.service);
        recover_meta(*log);
        for (const char* r : {"one", "two", "three"}) log->append(as_bytes(r));
        REQUIRE(log->flush());
    }
    std::string path = dir + "/00000000.log";
    std::string full = base.contents(path);
    std::size_t start = file_header_size + record_header_size + 3, end = start + record_header_size + 3;
    for (std::size_t at = start; at < end; ++at) {
        INFO("byte " << at - start);
        FaultFileSystem fs;
        std::string bytes = full;
        bytes[at] ^= 0x20;
        fs.set_contents(path, bytes);
        Syncer s;
        std::vector<std::string> lines;
        auto log = open_meta(fs, s.service, &lines);
        auto state = recover_meta(*log);
        CHECK(state.records == Records{"one", "three"});
        CHECK(state.stats.bad_records == 1);
        REQUIRE(lines.size() == 1);
        CHECK_THAT(lines[0], Catch::Contains(path) && Catch::Contains("offset " + std::to_string(start)));
    }
}

TEST_CASE("a damaged snapshot is reported and an older generation used if it is still there", "[store][meta]") {
    FaultFileSystem fs;
    Syncer s;
    {
        auto log = open_meta(fs, s.service);
        recover_meta(*log);
        log->append(as_bytes("a"));
        REQUIRE(log->flush());
        REQUIRE(log->compact(as_bytes("a")));
    }
    std::string snap = dir + "/00000001.snap";
    std::string bytes = fs.contents(snap);
    for (std::size_t at = 0; at < bytes.size(); ++at) {
        INFO("byte " << at);
        FaultFileSystem copy;
        std::string damaged = bytes;
        damaged[at] ^= 0x01;
        copy.set_contents(snap, damaged);
        copy.set_contents(dir + "/00000001.log", fs.contents(dir + "/00000001.log"));
        copy.set_contents(dir + "/00000000.log", std::string());  // an older, empty generation
        auto log = open_meta(copy, s.service);
        auto state = recover_meta(*log);
        CHECK(state.records.empty());
        CHECK(state.stats.problems.size() >= 1);
        CHECK(copy.exists(snap));  // kept for the operator
    }
}

TEST_CASE("a meta write error keeps the records for the next flush", "[store][meta]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = open_meta(fs, s.service);
    recover_meta(*log);
    log->append(as_bytes("a"));
    REQUIRE(log->flush());
    log->append(as_bytes("b"));
    fs.inject({FaultFileSystem::Op::Write, 1, std::errc::no_space_on_device, 10});
    REQUIRE_FALSE(log->flush());
    CHECK(log->has_unflushed());
    REQUIRE(log->flush());
    log.reset();
    log = open_meta(fs, s.service);
    CHECK(recover_meta(*log).records == Records{"a", "b"});
}

TEST_CASE("an unreadable meta log refuses appends until a compaction", "[store][meta]") {
    FaultFileSystem fs;
    Syncer s;
    {
        auto log = open_meta(fs, s.service);
        recover_meta(*log);
        log->append(as_bytes("a"));
        REQUIRE(log->flush());
    }
    fs.set_unreadable(dir + "/00000000.log", true);
    auto log = open_meta(fs, s.service);
    auto state = recover_meta(*log);
    CHECK(state.stats.unreadable_files == 1);
    CHECK(log->needs_compaction());
    log->append(as_bytes("b"));
    CHECK_FALSE(log->flush());
    REQUIRE(log->compact(as_bytes("b")));
    log->append(as_bytes("c"));
    REQUIRE(log->flush());
    log.reset();
    log = open_meta(fs, s.service);
    CHECK(recover_meta(*log).records == Records{"b", "c"});
}

TEST_CASE("a crash at every step of a compaction recovers the definitions whole", "[store][meta]") {
    // How many file operations a compaction takes, counted on a run without a crash.
    std::uint64_t steps;
    {
        FaultFileSystem fs;
        Syncer s;
        auto log = open_meta(fs, s.service);
        recover_meta(*log);
        REQUIRE(log->compact(as_bytes("")));  // generation 1, as below: then a snapshot to remove too
        std::uint64_t before = fs.mutating_ops();
        REQUIRE(log->compact(as_bytes("")));
        steps = fs.mutating_ops() - before;
    }
    REQUIRE(steps == 10);  // create, write, sync (x2), rename, sync dir, unlink (x2)
    for (std::uint64_t cut = 0; cut <= steps; ++cut) {
        for (auto mode : {FaultFileSystem::CrashMode::LoseUnsynced, FaultFileSystem::CrashMode::KeepPrefix}) {
            for (std::uint64_t seed = 0; seed < (mode == FaultFileSystem::CrashMode::KeepPrefix ? 8 : 1); ++seed) {
                INFO("crash after " << cut << " of " << steps << " operations, seed " << seed);
                FaultFileSystem fs;
                Records expected;
                {
                    Syncer s;
                    auto log = open_meta(fs, s.service);
                    recover_meta(*log);
                    for (const char* r : {"a", "b"}) log->append(as_bytes(r));
                    REQUIRE(log->flush());
                    REQUIRE(log->compact(as_bytes("a|b")));  // generation 1
                    log->append(as_bytes("c"));
                    REQUIRE(log->flush());
                    REQUIRE_FALSE(s.sync().error);
                    expected = {"a", "b", "c"};
                    log->append(as_bytes("d"));  // in the snapshot only
                    fs.freeze_after(cut);
                    Status st = log->compact(as_bytes("a|b|c|d"));
                    if (st) expected.push_back("d");
                    // What compact() reported done is done; "d" may be there either way.
                }
                auto image = fs.crash_image(mode, seed);
                Syncer s;
                auto log = open_meta(*image, s.service);
                auto state = recover_meta(*log);
                if (state.records.size() == 4) expected = {"a", "b", "c", "d"};
                CHECK(state.records == expected);
                CHECK(state.stats.bad_records == 0);
                // And the log goes on from there.
                log->append(as_bytes("e"));
                REQUIRE(log->flush());
                REQUIRE_FALSE(s.sync().error);
                log.reset();
                log = open_meta(*image, s.service);
                expected.push_back("e");
                CHECK(recover_meta(*log).records == expected);
            }
        }
    }
}

}  // namespace
}  // namespace warren::store
