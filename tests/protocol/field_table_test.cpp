// Owned field tables: byte-exact encoding of every RabbitMQ field type, decoding back through
// TableView::to_table, and the FieldTable operations the broker uses on stored arguments.
#include "protocol/field_table.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <string>

#include "protocol/table_view.hpp"
#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

namespace {

struct TypeCase {
    const char* what;
    FieldValue value;
    char letter;
    const char* wire;  // the value as it follows the key: type letter, then payload
};

// Each fixture was worked out by hand from the type letter and big-endian payload.
std::vector<TypeCase> type_cases() {
    return {
        {"boolean true", true, 't', "74 01"},
        {"boolean false", false, 't', "74 00"},
        {"int8 -2", std::int8_t{-2}, 'b', "62 fe"},
        {"int8 min", std::numeric_limits<std::int8_t>::min(), 'b', "62 80"},
        {"int8 max", std::numeric_limits<std::int8_t>::max(), 'b', "62 7f"},
        {"uint8 200", std::uint8_t{200}, 'B', "42 c8"},
        {"uint8 max", std::uint8_t{255}, 'B', "42 ff"},
        {"int16 -2", std::int16_t{-2}, 's', "73 ff fe"},
        {"int16 min", std::numeric_limits<std::int16_t>::min(), 's', "73 80 00"},
        {"uint16 0xabcd", std::uint16_t{0xabcd}, 'u', "75 ab cd"},
        {"uint16 max", std::uint16_t{0xffff}, 'u', "75 ff ff"},
        {"int32 -2", std::int32_t{-2}, 'I', "49 ff ff ff fe"},
        {"int32 min", std::numeric_limits<std::int32_t>::min(), 'I', "49 80 00 00 00"},
        {"int32 60000", std::int32_t{60000}, 'I', "49 00 00 ea 60"},
        {"uint32 0xdeadbeef", std::uint32_t{0xdeadbeef}, 'i', "69 de ad be ef"},
        {"int64 -2", std::int64_t{-2}, 'l', "6c ff ff ff ff ff ff ff fe"},
        {"int64 max", std::numeric_limits<std::int64_t>::max(), 'l', "6c 7f ff ff ff ff ff ff ff"},
        {"int64 min", std::numeric_limits<std::int64_t>::min(), 'l', "6c 80 00 00 00 00 00 00 00"},
        {"float 1.5", 1.5f, 'f', "66 3f c0 00 00"},
        {"float -0.25", -0.25f, 'f', "66 be 80 00 00"},
        {"double -2.5", -2.5, 'd', "64 c0 04 00 00 00 00 00 00"},
        {"double 0.1", 0.1, 'd', "64 3f b9 99 99 99 99 99 9a"},
        {"decimal 123.45", Decimal{2, 12345}, 'D', "44 02 00 00 30 39"},
        {"decimal max", Decimal{255, 0xffffffff}, 'D', "44 ff ff ff ff ff"},
        {"long string", std::string("hello"), 'S', "53 00 00 00 05 'hello'"},
        {"empty long string", std::string(), 'S', "53 00 00 00 00"},
        {"long string with a NUL", std::string("a\0b", 3), 'S', "53 00 00 00 03 61 00 62"},
        {"byte array", ByteArray{std::string("\x00\xff", 2)}, 'x', "78 00 00 00 02 00 ff"},
        {"empty byte array", ByteArray{}, 'x', "78 00 00 00 00"},
        {"timestamp", Timestamp{1700000000}, 'T', "54 00 00 00 00 65 53 f1 00"},
        {"void", Void{}, 'V', "56"},
        {"array of int32 and string", FieldArray{{std::int32_t{1}, std::string("a")}}, 'A',
         "41 00 00 00 0b | 49 00 00 00 01 | 53 00 00 00 01 'a'"},
        {"empty array", FieldArray{}, 'A', "41 00 00 00 00"},
        {"array of an array", FieldArray{{FieldArray{{true}}}}, 'A', "41 00 00 00 07 | 41 00 00 00 02 | 74 01"},
        {"nested table", FieldTable{{{"n", std::uint8_t{7}}}}, 'F', "46 00 00 00 04 | 01 'n' 42 07"},
        {"empty nested table", FieldTable{}, 'F', "46 00 00 00 00"},
        {"array holding a table", FieldArray{{FieldTable{{{"k", Void{}}}}}}, 'A',
         "41 00 00 00 08 | 46 00 00 00 03 | 01 'k' 56"},
        {"table holding an array", FieldTable{{{"a", FieldArray{{std::int8_t{-1}, Void{}}}}}}, 'F',
         "46 00 00 00 0a | 01 'a' 41 00 00 00 03 | 62 ff | 56"},
    };
}

FieldTable one_entry(const FieldValue& value) {
    FieldTable t;
    t.set("k", value);
    return t;
}

}  // namespace

TEST_CASE("every field type encodes to its hand-checked bytes", "[codec]") {
    for (const auto& c : type_cases()) {
        INFO(c.what);
        CHECK(c.value.type() == c.letter);
        ByteBuffer body = encode_table_body(one_entry(c.value));
        CHECK(hex(body) == canon(std::string("01 'k' ") + c.wire));
    }
}

TEST_CASE("every field type decodes from its hand-checked bytes", "[codec]") {
    for (const auto& c : type_cases()) {
        INFO(c.what);
        Bytes wire = unhex(std::string("01 'k' ") + c.wire);
        auto view = TableView::parse(wire);
        REQUIRE(view.has_value());
        auto ref = view->find("k");
        REQUIRE(ref.has_value());
        CHECK(ref->type() == c.letter);
        CHECK(ref->to_value() == c.value);
        CHECK(view->to_table() == one_entry(c.value));
    }
}

TEST_CASE("float and double keep their exact bits, NaN and infinities included", "[codec]") {
    const std::uint32_t float_bits[] = {0x7fc00001, 0xff800000, 0x00000001, 0x80000000};
    for (std::uint32_t bits : float_bits) {
        float f;
        std::memcpy(&f, &bits, sizeof f);
        ByteBuffer body = encode_table_body(one_entry(f));
        auto view = TableView::parse(body.span());
        REQUIRE(view.has_value());
        ByteBuffer again = encode_table_body(view->to_table());
        CHECK(hex(again) == hex(body));
    }
    const std::uint64_t double_bits[] = {0x7ff8000000000001ull, 0x7ff0000000000000ull, 0x8000000000000000ull};
    for (std::uint64_t bits : double_bits) {
        double d;
        std::memcpy(&d, &bits, sizeof d);
        ByteBuffer body = encode_table_body(one_entry(d));
        auto view = TableView::parse(body.span());
        REQUIRE(view.has_value());
        ByteBuffer again = encode_table_body(view->to_table());
        CHECK(hex(again) == hex(body));
    }
}

TEST_CASE("encode_table prefixes the entries with their 32-bit length", "[codec]") {
    FieldTable args;
    args.set("x-message-ttl", std::int32_t{60000});
    args.set("x-dead-letter-exchange", "dlx");
    ByteBuffer out;
    encode_table(out, args);
    CHECK(hex(out) == canon("00 00 00 32"
                            "| 0d 'x-message-ttl' 49 00 00 ea 60"
                            "| 16 'x-dead-letter-exchange' 53 00 00 00 03 'dlx'"));
}

TEST_CASE("an empty table encodes as a zero length", "[codec]") {
    ByteBuffer out;
    encode_table(out, FieldTable{});
    CHECK(hex(out) == "00 00 00 00");
    CHECK(encode_table_body(FieldTable{}).empty());
}

TEST_CASE("encode_array prefixes the items with their 32-bit length", "[codec]") {
    ByteBuffer out;
    encode_array(out, FieldArray{{std::string("x"), std::uint16_t{2}}});
    CHECK(hex(out) == canon("00 00 00 09 | 53 00 00 00 01 'x' | 75 00 02"));
}

TEST_CASE("a boolean is true for any non-zero octet, as in RabbitMQ", "[codec]") {
    Bytes wire = unhex("01 'b' 74 02");
    auto view = TableView::parse(wire);
    REQUIRE(view.has_value());
    CHECK(view->find("b")->as_bool() == true);
    CHECK(*view->to_table().find("b") == FieldValue(true));
}

TEST_CASE("decoding keeps duplicate keys in wire order and lookups see the first", "[codec]") {
    // RabbitMQ keeps the decoded table as a list and rabbit_misc:table_lookup returns the first
    // match; TableView::find and the owned copy must agree on which value a key has.
    Bytes wire = unhex("01 'a' 42 01 | 01 'b' 42 02 | 01 'a' 42 03");
    auto view = TableView::parse(wire);
    REQUIRE(view.has_value());
    CHECK(view->find("a")->as_integer() == 1);

    FieldTable owned = view->to_table();
    REQUIRE(owned.size() == 3);
    CHECK(owned.entries[0].key == "a");
    CHECK(owned.entries[1].key == "b");
    CHECK(owned.entries[2].key == "a");
    CHECK(owned.find("a")->as_integer() == 1);
    CHECK(hex(encode_table_body(owned)) == hex(wire));
}

TEST_CASE("field value as_integer covers every integer width and nothing else", "[codec]") {
    CHECK(FieldValue(std::int8_t{-5}).as_integer() == -5);
    CHECK(FieldValue(std::uint8_t{250}).as_integer() == 250);
    CHECK(FieldValue(std::int16_t{-300}).as_integer() == -300);
    CHECK(FieldValue(std::uint16_t{65535}).as_integer() == 65535);
    CHECK(FieldValue(std::int32_t{-70000}).as_integer() == -70000);
    CHECK(FieldValue(std::uint32_t{4000000000u}).as_integer() == 4000000000ll);
    CHECK(FieldValue(std::int64_t{-1}).as_integer() == -1);
    CHECK_FALSE(FieldValue(true).as_integer().has_value());
    CHECK_FALSE(FieldValue(1.0).as_integer().has_value());
    CHECK_FALSE(FieldValue("1").as_integer().has_value());
    CHECK_FALSE(FieldValue(Timestamp{1}).as_integer().has_value());
    CHECK(*FieldValue("text").as_string() == "text");
    CHECK(FieldValue(ByteArray{"text"}).as_string() == nullptr);
}

TEST_CASE("field table set replaces in place, erase removes, find misses cleanly", "[codec]") {
    FieldTable t;
    t.set("a", std::int32_t{1});
    t.set("b", std::int32_t{2});
    t.set("a", "one");
    REQUIRE(t.size() == 2);
    CHECK(t.entries[0].key == "a");
    CHECK(*t.find("a")->as_string() == "one");
    CHECK(t.erase("a"));
    CHECK_FALSE(t.erase("a"));
    CHECK(t.find("a") == nullptr);
    CHECK(t.size() == 1);
    CHECK_FALSE(t.empty());
}

TEST_CASE("a key of 255 bytes round-trips and a longer key is cut to 255", "[codec]") {
    FieldTable t;
    t.set(std::string(255, 'k'), Void{});
    ByteBuffer body = encode_table_body(t);
    REQUIRE(body.size() == 1 + 255 + 1);
    auto view = TableView::parse(body.span());
    REQUIRE(view.has_value());
    CHECK(view->to_table() == t);

    FieldTable too_long;
    too_long.set(std::string(300, 'k'), Void{});
    ByteBuffer cut = encode_table_body(too_long);
    CHECK(cut.size() == 1 + 255 + 1);
    CHECK(TableView::parse(cut.span()).has_value());
}
