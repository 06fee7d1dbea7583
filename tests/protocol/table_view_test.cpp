// TableView: validation of peer-supplied table bytes (type letters, lengths, nesting depth) and
// allocation-free lookups over the validated bytes.
#include "protocol/table_view.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

namespace {

constexpr std::string_view valid_letters = "tbBsuIilfdDSxTAFVL";

void put_u32(Bytes& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::byte(v >> shift));
}

// A table whose single entry "k" holds a table holding a table ... `levels` deep, ending in void.
Bytes nested_tables(int levels) {
    std::vector<std::uint32_t> sizes(levels + 1);
    sizes[0] = 3;  // 01 'k' 56
    for (int i = 1; i <= levels; ++i) sizes[i] = sizes[i - 1] + 7;
    Bytes out;
    out.reserve(sizes[levels]);
    for (int i = levels - 1; i >= 0; --i) {
        for (auto b : unhex("01 'k' 46")) out.push_back(b);
        put_u32(out, sizes[i]);
    }
    for (auto b : unhex("01 'k' 56")) out.push_back(b);
    return out;
}

// A table whose single entry "k" is an array holding an array ... `levels` arrays, ending in void.
Bytes nested_arrays(int levels) {
    Bytes out = unhex("01 'k'");
    for (int i = levels - 1; i >= 0; --i) {
        out.push_back(std::byte('A'));
        put_u32(out, static_cast<std::uint32_t>(5 * i + 1));
    }
    out.push_back(std::byte('V'));
    return out;
}

// One entry of every type, for sweeps.
Bytes all_types_body(std::vector<std::size_t>* boundaries = nullptr) {
    const char* entries[] = {
        "01 't' 74 01",
        "01 'b' 62 fe",
        "01 'B' 42 c8",
        "01 's' 73 ff fe",
        "01 'u' 75 ab cd",
        "01 'I' 49 ff ff ff fe",
        "01 'i' 69 de ad be ef",
        "01 'l' 6c ff ff ff ff ff ff ff fe",
        "01 'f' 66 3f c0 00 00",
        "01 'd' 64 c0 04 00 00 00 00 00 00",
        "01 'D' 44 02 00 00 30 39",
        "01 'S' 53 00 00 00 05 'hello'",
        "01 'x' 78 00 00 00 02 00 ff",
        "01 'T' 54 00 00 00 00 65 53 f1 00",
        "01 'V' 56",
        "01 'A' 41 00 00 00 0b 49 00 00 00 01 53 00 00 00 01 'a'",
        "01 'F' 46 00 00 00 04 01 'n' 42 07",
    };
    Bytes out;
    for (const char* e : entries) {
        for (auto b : unhex(e)) out.push_back(b);
        if (boundaries) boundaries->push_back(out.size());
    }
    return out;
}

}  // namespace

TEST_CASE("an empty table body is a valid empty table", "[codec]") {
    auto view = TableView::parse(std::span<const std::byte>{});
    REQUIRE(view.has_value());
    CHECK(view->empty());
    CHECK_FALSE(view->find("x").has_value());
    CHECK(view->to_table().empty());
}

TEST_CASE("find and for_each walk the entries in wire order", "[codec]") {
    Bytes body = all_types_body();
    auto view = TableView::parse(body);
    REQUIRE(view.has_value());
    std::string keys;
    view->for_each([&](std::string_view key, FieldRef) { keys += key; });
    CHECK(keys == "tbBsuIilfdDSxTVAF");
    CHECK(view->find("S")->as_string() == "hello");
    CHECK_FALSE(view->find("missing").has_value());
    CHECK_FALSE(view->find("").has_value());
}

TEST_CASE("field refs read integers with the signedness of their type letter", "[codec]") {
    Bytes body = unhex(
        "01 'b' 62 ff | 01 'B' 42 ff | 01 's' 73 ff ff | 01 'u' 75 ff ff | 01 'I' 49 ff ff ff ff"
        "| 01 'i' 69 ff ff ff ff | 01 'l' 6c ff ff ff ff ff ff ff ff | 01 'L' 4c ff ff ff ff ff ff ff fe");
    auto view = TableView::parse(body);
    REQUIRE(view.has_value());
    CHECK(view->find("b")->as_integer() == -1);
    CHECK(view->find("B")->as_integer() == 255);
    CHECK(view->find("s")->as_integer() == -1);
    CHECK(view->find("u")->as_integer() == 65535);
    CHECK(view->find("I")->as_integer() == -1);
    CHECK(view->find("i")->as_integer() == 4294967295ll);
    CHECK(view->find("l")->as_integer() == -1);
    CHECK(view->find("L")->as_integer() == -2);
    for (const char* key : {"b", "B", "s", "u", "I", "i", "l", "L"}) {
        INFO(key);
        CHECK(view->find(key)->is_integer());
    }
}

TEST_CASE("'L' is read as a signed 64-bit integer and re-encoded as 'l', as RabbitMQ does", "[codec]") {
    // rabbit_binary_parser decodes both 'l' and 'L' as a signed long; the generator writes 'l'.
    Bytes body = unhex("01 'n' 4c 00 00 00 00 00 00 01 00");
    auto view = TableView::parse(body);
    REQUIRE(view.has_value());
    CHECK(view->find("n")->type() == 'L');
    FieldTable owned = view->to_table();
    CHECK(*owned.find("n") == FieldValue(std::int64_t{256}));
    CHECK(hex(encode_table_body(owned)) == canon("01 'n' 6c 00 00 00 00 00 00 01 00"));
}

TEST_CASE("field ref accessors answer only for their own type", "[codec]") {
    Bytes body = all_types_body();
    auto view = TableView::parse(body);
    REQUIRE(view.has_value());

    CHECK(view->find("t")->as_bool() == true);
    CHECK_FALSE(view->find("B")->as_bool().has_value());

    CHECK(view->find("S")->is_string());
    CHECK_FALSE(view->find("x")->is_string());
    CHECK_FALSE(view->find("x")->as_string().has_value());  // a byte array is not a string
    CHECK_FALSE(view->find("I")->as_string().has_value());

    CHECK_FALSE(view->find("t")->is_integer());
    CHECK_FALSE(view->find("T")->is_integer());  // timestamps are not integers in type_class
    CHECK_FALSE(view->find("f")->as_integer().has_value());
    CHECK_FALSE(view->find("D")->as_integer().has_value());

    auto nested = view->find("F")->as_table();
    CHECK(nested.find("n")->as_integer() == 7);
    CHECK(view->find("S")->as_table().empty());

    int items = 0;
    view->find("A")->as_array().for_each([&](FieldRef item) {
        if (items == 0) CHECK(item.as_integer() == 1);
        if (items == 1) CHECK(item.as_string() == "a");
        ++items;
    });
    CHECK(items == 2);
    CHECK(view->find("A")->as_array().to_array() == FieldArray{{std::int32_t{1}, std::string("a")}});
    CHECK(view->find("F")->as_array().bytes().empty());
}

TEST_CASE("field ref payloads are exactly the value's bytes after the type letter", "[codec]") {
    Bytes body = all_types_body();
    auto view = TableView::parse(body);
    REQUIRE(view.has_value());
    CHECK(hex(view->find("V")->payload()) == "");
    CHECK(hex(view->find("t")->payload()) == "01");
    CHECK(hex(view->find("D")->payload()) == canon("02 00 00 30 39"));
    CHECK(hex(view->find("S")->payload()) == canon("00 00 00 05 'hello'"));
    CHECK(hex(view->find("F")->payload()) == canon("00 00 00 04 01 'n' 42 07"));
}

TEST_CASE("a type letter RabbitMQ does not know is rejected, in tables and in arrays", "[codec]") {
    for (int letter = 0; letter < 256; ++letter) {
        char c = static_cast<char>(letter);
        if (valid_letters.find(c) != std::string_view::npos) continue;
        INFO("type letter " << letter);
        Bytes in_table = unhex("01 'k'");
        in_table.push_back(std::byte(letter));
        for (auto b : unhex("00 00 00 00 00 00 00 00")) in_table.push_back(b);
        CHECK_FALSE(TableView::parse(in_table).has_value());

        Bytes in_array = unhex("01 'k' 41 00 00 00 01");
        in_array.push_back(std::byte(letter));
        CHECK_FALSE(TableView::parse(in_array).has_value());
    }
}

TEST_CASE("a table truncated anywhere but between entries is rejected", "[codec]") {
    std::vector<std::size_t> boundaries;
    Bytes body = all_types_body(&boundaries);
    for (std::size_t n = 0; n <= body.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        bool at_boundary = n == 0 || std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
        CHECK(TableView::parse(std::span<const std::byte>(body.data(), n)).has_value() == at_boundary);
    }
}

TEST_CASE("absurd lengths in strings, byte arrays, tables and arrays are rejected", "[codec]") {
    const char* cases[] = {
        "01 'k' 53 ff ff ff ff 'abc'",                   // long string
        "01 'k' 78 ff ff ff ff 'abc'",                   // byte array
        "01 'k' 46 ff ff ff ff 01 'n' 56",               // nested table
        "01 'k' 41 ff ff ff ff 56",                      // array
        "ff 'key'",                                      // key longer than the body
        "01 'k' 53 00 00 00 06 'hello'",                 // string one byte past the end
        "01 'k' 41 00 00 00 05 53 00 00 00 05 'hello'",  // item runs past its array
        "01 'k' 46 00 00 00 03 01 'n' 53 00 00 00 00",   // entry runs past its table
        "01 'k'",                                        // key without a value
        "01 'k' 44 02 00 00 30",                         // decimal one byte short
    };
    for (const char* c : cases) {
        INFO(c);
        CHECK_FALSE(TableView::parse(unhex(c)).has_value());
    }
}

TEST_CASE("tables nested max_table_depth deep are accepted and one more is rejected", "[codec]") {
    Bytes ok = nested_tables(max_table_depth);
    auto view = TableView::parse(ok);
    REQUIRE(view.has_value());
    CHECK(hex(encode_table_body(view->to_table())) == hex(ok));
    CHECK_FALSE(TableView::parse(nested_tables(max_table_depth + 1)).has_value());
}

TEST_CASE("arrays nested max_table_depth deep are accepted and one more is rejected", "[codec]") {
    Bytes ok = nested_arrays(max_table_depth);
    auto view = TableView::parse(ok);
    REQUIRE(view.has_value());
    CHECK(hex(encode_table_body(view->to_table())) == hex(ok));
    CHECK_FALSE(TableView::parse(nested_arrays(max_table_depth + 1)).has_value());
}

TEST_CASE("nesting far deeper than the limit is rejected without exhausting the stack", "[codec]") {
    CHECK_FALSE(TableView::parse(nested_tables(100000)).has_value());
    CHECK_FALSE(TableView::parse(nested_arrays(100000)).has_value());
}

TEST_CASE("a trusted view over our own encoding reads like a parsed one", "[codec]") {
    FieldTable t;
    t.set("x-max-length", std::int64_t{10});
    ByteBuffer body = encode_table_body(t);
    auto view = TableView::trusted(body.span());
    CHECK(view.find("x-max-length")->as_integer() == 10);
    CHECK(view.to_table() == t);
}
