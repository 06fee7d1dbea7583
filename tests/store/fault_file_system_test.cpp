// The fault-injecting file system itself: the crash model keeps what was synced, and a crash may
// keep a prefix of the rest; directory changes need a directory sync; faults fire when told.
#include "store/fault_file_system.hpp"

#include <catch2/catch.hpp>
#include <set>

#include "text.hpp"

namespace warren::store {
namespace {

void write(File& f, std::string_view text, std::uint64_t offset) {
    iovec part{const_cast<char*>(text.data()), text.size()};
    REQUIRE(write_fully(f, {&part, 1}, offset));
}

std::string read_all(File& f) {
    std::string out(*f.size(), '\0');
    auto got = read_fully(f, {reinterpret_cast<std::byte*>(out.data()), out.size()}, 0);
    REQUIRE(got);
    return out;
}

TEST_CASE("fault fs: a crash keeps what was synced and loses what was not", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto dir = *fs.open_directory("/d");
    auto f = *fs.open("/d/a", OpenMode::CreateTruncate);
    write(*f, "synced", 0);
    REQUIRE_FALSE(f->sync());
    REQUIRE_FALSE(dir->sync());
    write(*f, "+unsynced", 6);
    CHECK(fs.contents("/d/a") == "synced+unsynced");
    auto image = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    CHECK(image->contents("/d/a") == "synced");
}

TEST_CASE("fault fs: a file whose directory entry was never synced is gone after a crash", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto f = *fs.open("/d/new", OpenMode::CreateTruncate);
    write(*f, "data", 0);
    REQUIRE_FALSE(f->sync());  // fdatasync of the file does not make its name durable
    CHECK_FALSE(fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced)->exists("/d/new"));
    REQUIRE_FALSE((*fs.open_directory("/d"))->sync());
    CHECK(fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced)->contents("/d/new") == "data");
}

TEST_CASE("fault fs: a crash may keep any prefix of the unsynced writes, the last one torn", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto f = *fs.open("/d/a", OpenMode::CreateTruncate);
    REQUIRE_FALSE((*fs.open_directory("/d"))->sync());
    write(*f, "aaaa", 0);
    write(*f, "bbbb", 4);
    write(*f, "cccc", 8);
    std::set<std::string> seen;
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
        std::string c = fs.crash_image(FaultFileSystem::CrashMode::KeepPrefix, seed)->contents("/d/a");
        CHECK(std::string("aaaabbbbcccc").substr(0, c.size()) == c);
        seen.insert(c);
    }
    CHECK(seen.count(""));
    CHECK(seen.count("aaaabbbbcccc"));
    CHECK(seen.size() > 6);  // torn lengths in between too
}

TEST_CASE("fault fs: rename and unlink are directory changes a crash may undo", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto dir = *fs.open_directory("/d");
    auto f = *fs.open("/d/tmp", OpenMode::CreateTruncate);
    write(*f, "snapshot", 0);
    REQUIRE_FALSE(f->sync());
    REQUIRE_FALSE(dir->sync());
    REQUIRE(fs.rename("/d/tmp", "/d/final"));
    auto lost = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    CHECK(lost->exists("/d/tmp"));
    CHECK_FALSE(lost->exists("/d/final"));
    REQUIRE_FALSE(dir->sync());
    auto kept = fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced);
    CHECK(kept->contents("/d/final") == "snapshot");
    CHECK_FALSE(kept->exists("/d/tmp"));
    REQUIRE(fs.unlink("/d/final"));
    CHECK(fs.crash_image(FaultFileSystem::CrashMode::LoseUnsynced)->exists("/d/final"));
}

TEST_CASE("fault fs: injected faults fire on the nth matching operation", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto f = *fs.open("/d/a.seg", OpenMode::CreateTruncate);
    fs.inject({FaultFileSystem::Op::Write, 2, std::errc::no_space_on_device, 3, ".seg"});
    write(*f, "one", 0);
    iovec part{const_cast<char*>("twotwo"), 6};
    auto second = f->pwritev({&part, 1}, 3);
    REQUIRE_FALSE(second);
    CHECK(second.error().code == std::errc::no_space_on_device);
    CHECK(fs.contents("/d/a.seg") == "onetwo");  // 3 bytes landed before the error
    write(*f, "3", 6);
    fs.inject({FaultFileSystem::Op::Sync, 1, std::errc::io_error});
    CHECK(f->sync() == std::errc::io_error);
    CHECK_FALSE(f->sync());
    fs.set_unreadable("/d/a.seg", true);
    std::byte buf[4];
    CHECK_FALSE(f->pread(buf, 0));
}

TEST_CASE("fault fs: short writes are completed by write_fully", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    fs.set_short_writes(true);
    auto f = *fs.open("/d/a", OpenMode::CreateTruncate);
    std::string a = "0123456789", b = "abcdefghijklmnopqrstuvwxyz";
    iovec parts[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    REQUIRE(write_fully(*f, parts, 5));
    CHECK(fs.contents("/d/a") == std::string(5, '\0') + a + b);
    CHECK(read_all(*f) == std::string(5, '\0') + a + b);
}

TEST_CASE("fault fs: after a power cut nothing changes", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto f = *fs.open("/d/a", OpenMode::CreateTruncate);
    fs.freeze_after(1);
    write(*f, "kept", 0);
    iovec part{const_cast<char*>("lost"), 4};
    CHECK_FALSE(f->pwritev({&part, 1}, 4));
    CHECK(f->sync());
    CHECK_FALSE(fs.unlink("/d/a"));
    CHECK(fs.contents("/d/a") == "kept");
}

TEST_CASE("fault fs: a second lock on the same path names the holder", "[store][faultfs]") {
    FaultFileSystem fs;
    REQUIRE(fs.make_directories("/d"));
    auto first = fs.lock("/d/LOCK");
    REQUIRE(first);
    auto second = fs.lock("/d/LOCK");
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error().message, Catch::Contains("in use by pid"));
    first->reset();
    CHECK(fs.lock("/d/LOCK"));
}

}  // namespace
}  // namespace warren::store
