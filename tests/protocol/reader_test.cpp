// Reader: big-endian primitives, bounds checks, and the latched error that lets decoders read
// straight through and check ok() and at_end() once.
#include "protocol/reader.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

TEST_CASE("reader decodes big-endian integers of every width", "[codec]") {
    auto bytes = unhex("ab | 12 34 | de ad be ef | 01 02 03 04 05 06 07 08 | ff ff | ff ff ff ff");
    Reader r(bytes);
    CHECK(r.u8() == 0xab);
    CHECK(r.u16() == 0x1234);
    CHECK(r.u32() == 0xdeadbeefu);
    CHECK(r.u64() == 0x0102030405060708ull);
    CHECK(r.u16() == 0xffff);
    CHECK(r.u32() == 0xffffffffu);
    CHECK(r.ok());
    CHECK(r.at_end());
    CHECK(r.remaining() == 0);
}

TEST_CASE("reader decodes IEEE 754 floats and doubles bit for bit", "[codec]") {
    auto bytes = unhex("3f c0 00 00 | c0 04 00 00 00 00 00 00 | 7f 80 00 00 | 7f f8 00 00 00 00 00 00");
    Reader r(bytes);
    CHECK(r.f32() == 1.5f);
    CHECK(r.f64() == -2.5);
    CHECK(r.f32() == std::numeric_limits<float>::infinity());
    CHECK(std::isnan(r.f64()));
    CHECK(r.ok());
    CHECK(r.at_end());
}

TEST_CASE("reader decodes short and long strings as views into the input", "[codec]") {
    auto bytes = unhex("05 'hello' | 00 00 00 03 'abc' | 00 | 00 00 00 00");
    Reader r(bytes);
    std::string_view s = r.shortstr();
    CHECK(s == "hello");
    CHECK(reinterpret_cast<const std::byte*>(s.data()) == bytes.data() + 1);  // no copy
    CHECK(r.longstr() == "abc");
    CHECK(r.shortstr().empty());
    CHECK(r.longstr().empty());
    CHECK(r.ok());
    CHECK(r.at_end());
}

TEST_CASE("a failed read latches: later reads return zeros and ok() stays false", "[codec]") {
    auto bytes = unhex("00 01 02");
    Reader r(bytes);
    CHECK(r.u32() == 0);  // only 3 bytes
    CHECK_FALSE(r.ok());
    CHECK(r.u8() == 0);  // bytes are there, but the error is latched
    CHECK(r.u16() == 0);
    CHECK(r.shortstr().empty());
    CHECK(r.bytes(1).empty());
    CHECK(r.remaining() == 0);
    CHECK_FALSE(r.ok());
}

TEST_CASE("reader rejects every truncated primitive", "[codec]") {
    auto full = unhex("01 02 03 04 05 06 07 08");
    for (std::size_t n = 0; n < 8; ++n) {
        std::span<const std::byte> prefix(full.data(), n);
        if (n < 1) {
            Reader r(prefix);
            r.u8();
            CHECK_FALSE(r.ok());
        }
        if (n < 2) {
            Reader r(prefix);
            r.u16();
            CHECK_FALSE(r.ok());
        }
        if (n < 4) {
            Reader r(prefix);
            r.u32();
            CHECK_FALSE(r.ok());
        }
        if (n < 4) {
            Reader r(prefix);
            r.f32();
            CHECK_FALSE(r.ok());
        }
        {
            Reader r(prefix);
            r.u64();
            CHECK_FALSE(r.ok());
        }
        {
            Reader r(prefix);
            r.f64();
            CHECK_FALSE(r.ok());
        }
    }
}

TEST_CASE("absurd string lengths fail without reading past the end", "[codec]") {
    SECTION("longstr claiming 0xFFFFFFFF bytes") {
        auto bytes = unhex("ff ff ff ff 'abc'");
        Reader r(bytes);
        CHECK(r.longstr().empty());
        CHECK_FALSE(r.ok());
    }
    SECTION("shortstr claiming 255 bytes with 3 present") {
        auto bytes = unhex("ff 'abc'");
        Reader r(bytes);
        CHECK(r.shortstr().empty());
        CHECK_FALSE(r.ok());
    }
    SECTION("bytes(n) for n = SIZE_MAX") {
        auto bytes = unhex("00 01");
        Reader r(bytes);
        CHECK(r.bytes(std::numeric_limits<std::size_t>::max()).empty());
        CHECK_FALSE(r.ok());
    }
}

TEST_CASE("leftover bytes are visible through at_end()", "[codec]") {
    auto bytes = unhex("00 2a ff");
    Reader r(bytes);
    CHECK(r.u16() == 42);
    CHECK(r.ok());
    CHECK_FALSE(r.at_end());
    CHECK(r.remaining() == 1);
    CHECK(r.position() == 2);
    CHECK(hex(r.rest()) == "ff");
    CHECK(r.at_end());
}

TEST_CASE("an empty reader is ok and at its end until something is read", "[codec]") {
    Reader r(std::span<const std::byte>{});
    CHECK(r.ok());
    CHECK(r.at_end());
    CHECK(r.rest().empty());
    CHECK(r.ok());  // reading zero bytes is fine
    r.u8();
    CHECK_FALSE(r.ok());
}
