// PosixFileSystem on a real directory: the calls the store makes, errors that name the file,
// and the lock that names the pid holding it.
#include "store/posix_file_system.hpp"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

namespace warren::store {
namespace {

TEST_CASE("posix fs: zeros are appended after whatever is written, through a handle that outlives the name",
          "[store][posix]") {
    warren::testing::TempDir tmp;
    PosixFileSystem fs;
    auto f = fs.open(tmp.path() + "/z.seg", OpenMode::CreateTruncate);
    REQUIRE(f);
    std::string a(1000, 'a');
    iovec part{a.data(), a.size()};
    REQUIRE(write_fully(**f, {&part, 1}, 0));
    auto end = (*f)->append_zeros(200000, 0);  // several 64 KiB chunks
    REQUIRE(end);
    CHECK(*end == 200000);
    CHECK(*(*f)->size() == 200000);
    CHECK_FALSE((*f)->sync_zeros());
    // The writer goes on over the zeros and past them; zeros asked for later land after it.
    std::string b(250000, 'b');
    part = {b.data(), b.size()};
    REQUIRE(write_fully(**f, {&part, 1}, 1000));
    end = (*f)->append_zeros(300000, 0);
    REQUIRE(end);
    CHECK(*end == 300000);
    CHECK(*(*f)->append_zeros(100, 0) == 300000);  // long enough already: nothing appended
    std::string back(300000, 'x');
    REQUIRE(*read_fully(**f, {reinterpret_cast<std::byte*>(back.data()), back.size()}, 0) == 300000);
    CHECK(back == a + b + std::string(300000 - 251000, '\0'));
    // Unlinked (a settled segment) while a zero-fill was queued: still the same inode.
    REQUIRE(fs.unlink(tmp.path() + "/z.seg"));
    end = (*f)->append_zeros(310000, 0);
    REQUIRE(end);
    CHECK(*end == 310000);
    CHECK_FALSE((*f)->sync_zeros());
    // Not if it would leave less than asked free: an error, and nothing appended.
    auto refused = (*f)->append_zeros(320000, std::uint64_t{1} << 62);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == std::errc::no_space_on_device);
    CHECK(*(*f)->size() == 310000);
}

TEST_CASE("posix fs: write, read, size, truncate, sync, rename, unlink, list", "[store][posix]") {
    warren::testing::TempDir tmp;
    PosixFileSystem fs;
    std::string dir = tmp.path() + "/a/b";
    REQUIRE(fs.make_directories(dir));
    REQUIRE(fs.make_directories(dir));  // again: fine
    auto f = fs.open(dir + "/x.seg", OpenMode::CreateTruncate);
    REQUIRE(f);
    std::string a = "hello ", b = "world";
    iovec parts[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    REQUIRE(write_fully(**f, parts, 0));
    CHECK(*(*f)->size() == 11);
    std::string back(11, '\0');
    CHECK(*read_fully(**f, {reinterpret_cast<std::byte*>(back.data()), back.size()}, 0) == 11);
    CHECK(back == "hello world");
    CHECK(*read_fully(**f, {reinterpret_cast<std::byte*>(back.data()), back.size()}, 6) == 5);
    CHECK_FALSE((*f)->truncate(5));
    CHECK(*(*f)->size() == 5);
    CHECK_FALSE((*f)->sync());
    auto d = fs.open_directory(dir);
    REQUIRE(d);
    CHECK_FALSE((*d)->sync());
    REQUIRE(fs.rename(dir + "/x.seg", dir + "/y.seg"));
    auto names = fs.list(dir);
    REQUIRE(names);
    CHECK(*names == std::vector<std::string>{"y.seg"});
    REQUIRE(fs.unlink(dir + "/y.seg"));
    CHECK(fs.list(dir)->empty());
}

TEST_CASE("posix fs: errors name the call and the path", "[store][posix]") {
    warren::testing::TempDir tmp;
    PosixFileSystem fs;
    auto f = fs.open(tmp.path() + "/missing", OpenMode::Read);
    REQUIRE_FALSE(f);
    CHECK(f.error().code == std::errc::no_such_file_or_directory);
    CHECK_THAT(f.error().message, Catch::Contains("open " + tmp.path() + "/missing"));
    Status s = fs.unlink(tmp.path() + "/missing");
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message, Catch::Contains("unlink"));
    auto file = fs.open(tmp.path() + "/plain", OpenMode::CreateTruncate);
    REQUIRE(file);
    CHECK_FALSE(fs.make_directories(tmp.path() + "/plain"));
}

TEST_CASE("posix fs: the lock is exclusive and says who holds it", "[store][posix]") {
    warren::testing::TempDir tmp;
    PosixFileSystem fs;
    auto first = fs.lock(tmp.path() + "/LOCK");
    REQUIRE(first);
    auto second = fs.lock(tmp.path() + "/LOCK");  // flock: a second open file conflicts, same process or not
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error().message, Catch::Contains("in use by pid " + std::to_string(::getpid())));
    first->reset();
    CHECK(fs.lock(tmp.path() + "/LOCK"));
}

}  // namespace
}  // namespace warren::store
