// The generic method codec: bit packing, the field encodings it picks from C++ types, and the
// latched-error contract (truncated arguments fail, leftover bytes show through at_end()).
#include "protocol/method_codec.hpp"

#include <catch2/catch.hpp>
#include <tuple>

#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

namespace {

struct ThreeBits {
    Bit a, b, c;
    static auto fields(auto& m) { return std::tie(m.a, m.b, m.c); }
};

struct EightBits {
    Bit b0, b1, b2, b3, b4, b5, b6, b7;
    static auto fields(auto& m) { return std::tie(m.b0, m.b1, m.b2, m.b3, m.b4, m.b5, m.b6, m.b7); }
};

struct NineBits {
    Bit b0, b1, b2, b3, b4, b5, b6, b7, b8;
    static auto fields(auto& m) { return std::tie(m.b0, m.b1, m.b2, m.b3, m.b4, m.b5, m.b6, m.b7, m.b8); }
};

struct SeventeenBits {
    Bit b[17];
    static auto fields(auto& m) {
        return std::tie(m.b[0], m.b[1], m.b[2], m.b[3], m.b[4], m.b[5], m.b[6], m.b[7], m.b[8], m.b[9], m.b[10],
                        m.b[11], m.b[12], m.b[13], m.b[14], m.b[15], m.b[16]);
    }
};

struct BitsAroundOctet {
    Bit a, b;
    std::uint8_t n = 0;
    Bit c;
    static auto fields(auto& m) { return std::tie(m.a, m.b, m.n, m.c); }
};

struct BitsAroundString {
    Bit a;
    ShortStr s;
    Bit b, c;
    static auto fields(auto& m) { return std::tie(m.a, m.s, m.b, m.c); }
};

struct BitsAroundTable {
    Bit a;
    TableView t;
    Bit b;
    static auto fields(auto& m) { return std::tie(m.a, m.t, m.b); }
};

struct EveryType {
    std::uint8_t octet = 0;
    std::uint16_t short_ = 0;
    std::uint32_t long_ = 0;
    std::uint64_t longlong = 0;
    ShortStr shortstr;
    LongStr longstr;
    Bit bit;
    TableView table;
    static auto fields(auto& m) {
        return std::tie(m.octet, m.short_, m.long_, m.longlong, m.shortstr, m.longstr, m.bit, m.table);
    }
};

struct NoFields {
    static auto fields(auto&) { return std::tie(); }
};

template <class M>
std::string encoded(const M& m) {
    ByteBuffer out;
    Writer w(out);
    encode_fields(w, m);
    return hex(out);
}

// Decodes M from `bytes` and requires that it used every byte.
template <class M>
M decoded(std::span<const std::byte> bytes) {
    Reader r(bytes);
    M m;
    decode_fields(r, m);
    REQUIRE(r.ok());
    REQUIRE(r.at_end());
    return m;
}

}  // namespace

TEST_CASE("a run of bits shares one octet, least significant bit first", "[codec]") {
    CHECK(encoded(ThreeBits{true, false, false}) == "01");
    CHECK(encoded(ThreeBits{false, true, false}) == "02");
    CHECK(encoded(ThreeBits{false, false, true}) == "04");
    CHECK(encoded(ThreeBits{true, false, true}) == "05");
    CHECK(encoded(ThreeBits{}) == "00");

    Bytes wire = unhex("06");
    auto m = decoded<ThreeBits>(wire);
    CHECK_FALSE(m.a);
    CHECK(m.b);
    CHECK(m.c);
}

TEST_CASE("eight bits fill exactly one octet", "[codec]") {
    CHECK(encoded(EightBits{true, true, true, true, true, true, true, true}) == "ff");
    CHECK(encoded(EightBits{false, false, false, false, false, false, false, true}) == "80");
    Bytes wire = unhex("81");
    auto m = decoded<EightBits>(wire);
    CHECK(m.b0);
    CHECK_FALSE(m.b1);
    CHECK_FALSE(m.b6);
    CHECK(m.b7);
}

TEST_CASE("a ninth consecutive bit rolls into a new octet", "[codec]") {
    NineBits only_last{};
    only_last.b8 = true;
    CHECK(encoded(only_last) == "00 01");
    NineBits all{true, true, true, true, true, true, true, true, true};
    CHECK(encoded(all) == "ff 01");
    CHECK(encoded(NineBits{}) == "00 00");

    Bytes wire = unhex("80 01");
    auto m = decoded<NineBits>(wire);
    CHECK(m.b7);
    CHECK(m.b8);
    CHECK_FALSE(m.b0);

    SeventeenBits many{};
    many.b[0] = many.b[8] = many.b[16] = true;
    CHECK(encoded(many) == "01 01 01");
    Bytes wire17 = unhex("00 80 01");
    auto m17 = decoded<SeventeenBits>(wire17);
    CHECK(m17.b[15]);
    CHECK(m17.b[16]);
    CHECK_FALSE(m17.b[14]);
}

TEST_CASE("a non-bit field closes the bit octet and the next bit opens a new one", "[codec]") {
    CHECK(encoded(BitsAroundOctet{true, true, 0x42, true}) == "03 42 01");
    CHECK(encoded(BitsAroundString{true, "x", false, true}) == canon("01 | 01 'x' | 02"));

    Bytes wire = unhex("02 07 01");
    auto m = decoded<BitsAroundOctet>(wire);
    CHECK_FALSE(m.a);
    CHECK(m.b);
    CHECK(m.n == 7);
    CHECK(m.c);
}

TEST_CASE("a table between bits also closes the bit octet", "[codec]") {
    Bytes table_body = unhex("01 'k' 56");
    BitsAroundTable m{true, TableView::trusted(table_body), true};
    CHECK(encoded(m) == canon("01 | 00 00 00 03 01 'k' 56 | 01"));
}

TEST_CASE("bits the method does not define are ignored when decoding", "[codec]") {
    Bytes wire = unhex("f8");  // only bits 3..7 set, none of a, b, c
    auto m = decoded<ThreeBits>(wire);
    CHECK_FALSE(m.a);
    CHECK_FALSE(m.b);
    CHECK_FALSE(m.c);
}

TEST_CASE("every argument type encodes big-endian with its length prefix", "[codec]") {
    Bytes table_body = unhex("01 'a' 74 01");
    EveryType m;
    m.octet = 0xab;
    m.short_ = 0x1234;
    m.long_ = 0xdeadbeef;
    m.longlong = 0x0102030405060708ull;
    m.shortstr = "hi";
    m.longstr = "long";
    m.bit = true;
    m.table = TableView::trusted(table_body);
    std::string fixture = canon(
        "ab | 12 34 | de ad be ef | 01 02 03 04 05 06 07 08 | 02 'hi' | 00 00 00 04 'long' | 01"
        "| 00 00 00 04 01 'a' 74 01");
    CHECK(encoded(m) == fixture);

    Bytes wire = unhex(fixture);
    auto d = decoded<EveryType>(wire);
    CHECK(d.octet == 0xab);
    CHECK(d.short_ == 0x1234);
    CHECK(d.long_ == 0xdeadbeef);
    CHECK(d.longlong == 0x0102030405060708ull);
    CHECK(d.shortstr == "hi");
    CHECK(d.longstr == "long");
    CHECK(d.bit);
    CHECK(d.table.find("a")->as_bool() == true);
}

TEST_CASE("every strict prefix of a method's arguments fails to decode", "[codec]") {
    Bytes wire = unhex(
        "ab | 12 34 | de ad be ef | 01 02 03 04 05 06 07 08 | 02 'hi' | 00 00 00 04 'long' | 01"
        "| 00 00 00 04 01 'a' 74 01");
    for (std::size_t n = 0; n < wire.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        Reader r(std::span<const std::byte>(wire.data(), n));
        EveryType m;
        decode_fields(r, m);
        CHECK_FALSE(r.ok());
    }
}

TEST_CASE("leftover bytes after the arguments are detectable via at_end()", "[codec]") {
    Bytes wire = unhex("05 ff");
    Reader r(wire);
    ThreeBits m;
    decode_fields(r, m);
    CHECK(r.ok());
    CHECK_FALSE(r.at_end());
    CHECK(m.a);
    CHECK(m.c);

    Bytes empty_args = unhex("00");
    Reader r2(empty_args);
    NoFields none;
    decode_fields(r2, none);
    CHECK(r2.ok());
    CHECK_FALSE(r2.at_end());
}

TEST_CASE("a malformed table argument fails the whole decode", "[codec]") {
    const char* cases[] = {
        "00 | 00 00 00 04 01 'a' 3f 00 | 00",  // '?' is not a type letter
        "00 | 00 00 00 03 01 'a' 74 | 00",     // boolean without its octet
        "00 | ff ff ff ff 01 'a' 56 | 00",     // table length past the end
    };
    for (const char* c : cases) {
        INFO(c);
        Bytes wire = unhex(c);
        Reader r(wire);
        BitsAroundTable m;
        decode_fields(r, m);
        CHECK_FALSE(r.ok());
    }
}

TEST_CASE("absurd string lengths in arguments fail the decode", "[codec]") {
    Bytes wire = unhex("00 | 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 | ff ff ff ff 'x' | 00 | 00 00 00 00");
    Reader r(wire);
    EveryType m;
    decode_fields(r, m);
    CHECK_FALSE(r.ok());
}

TEST_CASE("a method without arguments encodes to nothing", "[codec]") {
    CHECK(encoded(NoFields{}).empty());
    Bytes none;
    Reader r(none);
    NoFields m;
    decode_fields(r, m);
    CHECK(r.ok());
    CHECK(r.at_end());
}
