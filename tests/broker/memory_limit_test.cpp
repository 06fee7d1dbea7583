// Where the memory high watermark's fraction comes from: MemTotal, or a lower cgroup limit.
// Read from files the test writes, in the formats Linux uses.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "broker/broker.hpp"

using warren::broker::total_memory_bytes;

namespace {

// A file in a fresh temporary directory, removed when the test ends.
struct TempFile {
    std::string path;
    TempFile(const std::string& name, const std::string& content) {
        char dir[] = "/tmp/warren-memtest-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        path = std::string(dir) + "/" + name;
        std::ofstream(path) << content;
    }
    ~TempFile() {
        std::remove(path.c_str());
        ::rmdir(path.substr(0, path.rfind('/')).c_str());
    }
};

const std::string meminfo_text =
    "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n";
constexpr std::uint64_t mem_total = 16384000ull * 1024;

}  // namespace

TEST_CASE("memory limit: MemTotal when there is no cgroup limit file") {
    TempFile meminfo("meminfo", meminfo_text);
    CHECK(total_memory_bytes(meminfo.path, {"/nonexistent/memory.max"}) == mem_total);
}

TEST_CASE("memory limit: a cgroup v2 limit below MemTotal wins") {
    TempFile meminfo("meminfo", meminfo_text);
    TempFile max("memory.max", "2147483648\n");
    CHECK(total_memory_bytes(meminfo.path, {max.path}) == 2147483648ull);
}

TEST_CASE("memory limit: cgroup v2 'max' means no limit") {
    TempFile meminfo("meminfo", meminfo_text);
    TempFile max("memory.max", "max\n");
    TempFile v1("memory.limit_in_bytes", "1073741824\n");
    // "max" is skipped; the next source (v1) still counts.
    CHECK(total_memory_bytes(meminfo.path, {max.path}) == mem_total);
    CHECK(total_memory_bytes(meminfo.path, {max.path, v1.path}) == 1073741824ull);
}

TEST_CASE("memory limit: a cgroup v1 'unlimited' value above MemTotal is ignored") {
    TempFile meminfo("meminfo", meminfo_text);
    TempFile v1("memory.limit_in_bytes", "9223372036854771712\n");
    CHECK(total_memory_bytes(meminfo.path, {v1.path}) == mem_total);
}

TEST_CASE("memory limit: without /proc/meminfo, 8 GiB is assumed") {
    CHECK(total_memory_bytes("/nonexistent/meminfo", {}) == 8ull << 30);
}
