// Writer and ByteBuffer: big-endian primitives, strings, and the reserve/patch pair used for
// lengths that are known only after the contents are written.
#include "protocol/writer.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

TEST_CASE("writer encodes integers of every width big-endian", "[codec]") {
    ByteBuffer out;
    Writer w(out);
    w.u8(0xab);
    w.u16(0x1234);
    w.u32(0xdeadbeef);
    w.u64(0x0102030405060708ull);
    CHECK(hex(out) == canon("ab | 12 34 | de ad be ef | 01 02 03 04 05 06 07 08"));
}

TEST_CASE("writer encodes floats and doubles as their IEEE 754 bits", "[codec]") {
    ByteBuffer out;
    Writer w(out);
    w.f32(1.5f);
    w.f64(-2.5);
    CHECK(hex(out) == canon("3f c0 00 00 | c0 04 00 00 00 00 00 00"));
}

TEST_CASE("writer encodes short and long strings with their lengths", "[codec]") {
    ByteBuffer out;
    Writer w(out);
    w.shortstr("hello");
    w.longstr("abc");
    w.shortstr("");
    w.longstr("");
    CHECK(hex(out) == canon("05 'hello' | 00 00 00 03 'abc' | 00 | 00 00 00 00"));
}

TEST_CASE("a shortstr longer than 255 bytes is cut to 255", "[codec]") {
    ByteBuffer out;
    Writer w(out);
    std::string long_text(300, 'x');
    w.shortstr(long_text);
    REQUIRE(out.size() == 256);
    CHECK(hex(out.span().first(2)) == "ff 78");
}

TEST_CASE("reserve_u32 and patch_u32 fill in a length after the fact", "[codec]") {
    ByteBuffer out;
    Writer w(out);
    w.u8(1);
    std::size_t at = w.reserve_u32();
    w.bytes(std::string_view("abcde"));
    w.patch_u32(at, static_cast<std::uint32_t>(w.size() - at - 4));
    CHECK(hex(out) == canon("01 | 00 00 00 05 'abcde'"));
}

TEST_CASE("byte buffer keeps its contents across growth and consume_front", "[codec]") {
    ByteBuffer buf;
    std::string text;
    for (int i = 0; i < 1000; ++i) text += static_cast<char>('a' + i % 26);
    buf.append(std::string_view(text).substr(0, 10));
    buf.append(std::string_view(text).substr(10));  // grows past the first 256 bytes
    CHECK(buf.view() == text);
    buf.consume_front(990);
    CHECK(buf.view() == text.substr(990));
    buf.truncate(3);
    CHECK(buf.view() == text.substr(990, 3));
    buf.consume_front(100);
    CHECK(buf.empty());
}

TEST_CASE("byte buffer shrink_to releases capacity but keeps the bytes", "[codec]") {
    ByteBuffer buf;
    buf.reserve(1 << 20);
    buf.append(std::string_view("keep"));
    buf.shrink_to(64);
    CHECK(buf.capacity() == 64);
    CHECK(buf.view() == "keep");
}
