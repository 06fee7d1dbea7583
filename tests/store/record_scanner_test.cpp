// RecordScanner: good records in order; every torn-tail length; a flipped byte anywhere in a
// record; garbage; lengths that lie; records larger than the read window; read errors.
#include "store/record_scanner.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "text.hpp"

namespace warren::store {
namespace {

using test::as_string;

std::string record(std::uint64_t seq, const std::string& payload, RecordType type = RecordType::Entry) {
    std::string out(record_header_size + payload.size(), '\0');
    std::memcpy(out.data() + record_header_size, payload.data(), payload.size());
    RecordHeader h;
    h.payload_size = static_cast<std::uint32_t>(payload.size());
    h.epoch = 3;
    h.seq = seq;
    h.type = type;
    seal_record(reinterpret_cast<std::byte*>(out.data()), h);
    return out;
}

std::string file_header() {
    std::string out(file_header_size, '\0');
    encode_file_header(reinterpret_cast<std::byte*>(out.data()), {FileKind::MetaLog, 1, 3});
    return out;
}

struct Scan {
    std::vector<std::pair<std::uint64_t, std::string>> records;  // offset, payload
    std::vector<std::pair<std::uint64_t, std::uint64_t>> bad;    // offset, length
    RecordScanner::Tail tail;
    bool read_error = false;
};

Scan scan(FaultFileSystem& fs, const std::string& path, std::size_t window = 1 << 20, std::uint32_t max = 1 << 20) {
    auto file = fs.open(path, OpenMode::Read);
    REQUIRE(file);
    Buffer buffer;
    RecordScanner scanner(**file, *(*file)->size(), file_header_size, max, buffer, window);
    Scan out;
    for (;;) {
        auto item = scanner.next();
        if (item.step == RecordScanner::Step::Record)
            out.records.emplace_back(item.offset, as_string(item.payload));
        else if (item.step == RecordScanner::Step::Bad)
            out.bad.emplace_back(item.offset, item.length);
        else if (item.step == RecordScanner::Step::ReadError)
            out.read_error = true;
        if (item.step == RecordScanner::Step::End || item.step == RecordScanner::Step::ReadError) break;
    }
    out.tail = scanner.tail();
    return out;
}

// Five records of different sizes after a file header; offsets of each.
struct Fixture {
    std::string bytes = file_header();
    std::vector<std::uint64_t> offsets;
    std::vector<std::string> payloads = {"first", std::string(300, 'b'), "", "fourth record", std::string(77, 'e')};
    Fixture() {
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            offsets.push_back(bytes.size());
            bytes += record(i + 1, payloads[i]);
        }
    }
};

TEST_CASE("file headers round trip and any flipped byte is caught", "[store][format]") {
    std::byte bytes[file_header_size];
    encode_file_header(bytes, {FileKind::Sidecar, 0x1234567, 9});
    auto h = decode_file_header(bytes);
    REQUIRE(h);
    CHECK(h->kind == FileKind::Sidecar);
    CHECK(h->number == 0x1234567);
    CHECK(h->epoch == 9);
    CHECK(h->version == format_version_of(FileKind::Sidecar));
    for (std::size_t i = 0; i < file_header_size; ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            std::byte copy[file_header_size];
            std::memcpy(copy, bytes, sizeof copy);
            copy[i] ^= std::byte(1 << bit);
            CHECK_FALSE(decode_file_header(copy));
        }
    }
    CHECK_FALSE(decode_file_header(std::span<const std::byte>(bytes, 31)));
}

TEST_CASE("a segment's header is version 1 unless its file is reused, and records carry their segment",
          "[store][format]") {
    std::byte bytes[file_header_size];
    encode_file_header(bytes, {FileKind::Segment, 7, 1});
    auto h = decode_file_header(bytes);
    REQUIRE(h);
    CHECK(h->version == 1);  // readable by a broker that knows only version 1
    encode_file_header(bytes, {FileKind::Segment, 7, 1, 3});
    h = decode_file_header(bytes);
    REQUIRE(h);
    CHECK(h->version == 3);
    CHECK(format_version_of(FileKind::Segment) == 3);

    std::string payload = "payload";
    std::vector<std::byte> record(record_header_size + payload.size());
    std::memcpy(record.data() + record_header_size, payload.data(), payload.size());
    RecordHeader rh;
    rh.payload_size = static_cast<std::uint32_t>(payload.size());
    rh.seq = 5;
    rh.segment = 0xabcdef01;
    seal_record(record.data(), rh);
    CHECK(peek_record_header(record.data()).segment == 0xabcdef01);
    CHECK(record_checksum_ok(record.data(), payload.size()));
    record[27] ^= std::byte{1};  // the segment field is under the checksum
    CHECK_FALSE(record_checksum_ok(record.data(), payload.size()));
}

TEST_CASE("the scanner returns every good record in order", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    fs.set_contents("/d/file", f.bytes);
    for (std::size_t window : {std::size_t{1} << 20, std::size_t{64}, std::size_t{100}}) {
        INFO("window " << window);
        auto s = scan(fs, "/d/file", window);
        REQUIRE(s.records.size() == f.payloads.size());
        for (std::size_t i = 0; i < f.payloads.size(); ++i) {
            CHECK(s.records[i].first == f.offsets[i]);
            CHECK(s.records[i].second == f.payloads[i]);
        }
        CHECK(s.bad.empty());
        CHECK(s.tail.length == 0);
        CHECK(s.tail.offset == f.bytes.size());
    }
}

TEST_CASE("every torn-tail length of the last record is cut at the last whole record", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    std::uint64_t last = f.offsets.back();
    for (std::size_t cut = 1; cut < f.bytes.size() - last; ++cut) {
        INFO("bytes of the last record kept: " << cut);
        fs.set_contents("/d/file", f.bytes.substr(0, last + cut));
        auto s = scan(fs, "/d/file");
        CHECK(s.records.size() == f.payloads.size() - 1);
        CHECK(s.bad.empty());
        CHECK(s.tail.offset == last);
        CHECK(s.tail.length == cut);
        CHECK(s.tail.torn);
    }
}

TEST_CASE("zeros after the last record are the tail, unused and not torn, however long", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    // Shorter than a record header, one window, several windows (the scan reads them backwards).
    for (std::size_t zeros : {std::size_t{5}, std::size_t{4096}, std::size_t{70000}}) {
        INFO("zeros: " << zeros);
        fs.set_contents("/d/file", f.bytes + std::string(zeros, '\0'));
        auto s = scan(fs, "/d/file", 16384);
        CHECK(s.records.size() == f.payloads.size());
        CHECK(s.bad.empty());
        CHECK(s.tail.offset == f.bytes.size());
        CHECK(s.tail.length == zeros);
        CHECK(s.tail.zeros == zeros);
        CHECK(s.tail.data() == 0);
        CHECK_FALSE(s.tail.torn);
    }
}

TEST_CASE("every torn-tail length of the last record followed by zeros is torn", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    std::uint64_t last = f.offsets.back();
    for (std::size_t cut = 1; cut < f.bytes.size() - last; ++cut) {
        INFO("bytes of the last record kept: " << cut);
        fs.set_contents("/d/file", f.bytes.substr(0, last + cut) + std::string(5000, '\0'));
        auto s = scan(fs, "/d/file", 1024);
        CHECK(s.records.size() == f.payloads.size() - 1);
        CHECK(s.bad.empty());
        CHECK(s.tail.offset == last);
        CHECK(s.tail.length == cut + 5000);
        CHECK(s.tail.torn);
    }
}

TEST_CASE("zeros between records are a bad region, not the end", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    std::uint64_t second = f.offsets[1];
    std::string bytes = f.bytes.substr(0, second) + std::string(3000, '\0') + f.bytes.substr(second);
    fs.set_contents("/d/file", bytes);
    auto s = scan(fs, "/d/file", 1024);
    CHECK(s.records.size() == f.payloads.size());
    REQUIRE(s.bad.size() == 1);
    CHECK(s.bad[0] == std::pair<std::uint64_t, std::uint64_t>{second, 3000});
    CHECK(s.tail.length == 0);
}

TEST_CASE("a flipped bit anywhere in a record skips that record alone", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    const std::size_t victim = 1;  // the 300-byte record, between two others
    std::uint64_t start = f.offsets[victim], end = f.offsets[victim + 1];
    for (std::uint64_t at = start; at < end; ++at) {
        for (int bit : {0, 7}) {
            INFO("byte " << at - start << " of the record, bit " << bit);
            std::string bytes = f.bytes;
            bytes[at] = static_cast<char>(bytes[at] ^ (1 << bit));
            fs.set_contents("/d/file", bytes);
            auto s = scan(fs, "/d/file");
            REQUIRE(s.records.size() == f.payloads.size() - 1);
            CHECK(s.records[victim].first == end);
            REQUIRE(s.bad.size() == 1);
            CHECK(s.bad[0].first == start);
            CHECK(s.bad[0].second == end - start);
            CHECK(s.tail.length == 0);
        }
    }
}

TEST_CASE("a flipped bit in the last record makes it the tail, never a crash", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    std::uint64_t last = f.offsets.back();
    for (std::uint64_t at = last; at < f.bytes.size(); ++at) {
        INFO("byte " << at - last);
        std::string bytes = f.bytes;
        bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
        fs.set_contents("/d/file", bytes);
        auto s = scan(fs, "/d/file");
        CHECK(s.records.size() == f.payloads.size() - 1);
        CHECK(s.bad.empty());
        CHECK(s.tail.offset == last);
        CHECK(s.tail.length == f.bytes.size() - last);
    }
}

TEST_CASE("garbage between records is skipped up to the next good record", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    std::string garbage(5000, '\0');
    for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 7 + 3);
    garbage.replace(100, 4, "WREC");  // a false magic: its record does not check out
    std::string bytes = f.bytes.substr(0, f.offsets[2]) + garbage + f.bytes.substr(f.offsets[2]);
    fs.set_contents("/d/file", bytes);
    for (std::size_t window : {std::size_t{1} << 20, std::size_t{256}}) {
        auto s = scan(fs, "/d/file", window);
        CHECK(s.records.size() == f.payloads.size());
        REQUIRE(s.bad.size() == 1);
        CHECK(s.bad[0].first == f.offsets[2]);
        CHECK(s.bad[0].second == garbage.size());
        CHECK(s.tail.length == 0);
    }
}

TEST_CASE("a length over the maximum or past the file end is not trusted", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    // The 300-byte record is over a maximum of 200: it is bad, the others are read.
    fs.set_contents("/d/file", f.bytes);
    auto s = scan(fs, "/d/file", 1 << 20, 200);
    CHECK(s.records.size() == f.payloads.size() - 1);
    CHECK(s.bad.size() == 1);
    // Trailing zeros (a preallocated or half-written page) are garbage, not a torn record.
    fs.set_contents("/d/file", f.bytes + std::string(100, '\0'));
    s = scan(fs, "/d/file");
    CHECK(s.records.size() == f.payloads.size());
    CHECK(s.tail.length == 100);
    CHECK_FALSE(s.tail.torn);
}

TEST_CASE("a file shorter than its header or empty has no records", "[store][scanner]") {
    FaultFileSystem fs;
    fs.set_contents("/d/file", file_header().substr(0, 10));
    auto s = scan(fs, "/d/file");
    CHECK(s.records.empty());
    CHECK(s.tail.length == 0);
    fs.set_contents("/d/file", "");
    s = scan(fs, "/d/file");
    CHECK(s.records.empty());
}

TEST_CASE("a read error ends the scan as a read error", "[store][scanner]") {
    Fixture f;
    FaultFileSystem fs;
    fs.set_contents("/d/file", f.bytes);
    fs.set_unreadable("/d/file", true);
    auto s = scan(fs, "/d/file");
    CHECK(s.read_error);
    CHECK(s.records.empty());
}

}  // namespace
}  // namespace warren::store
