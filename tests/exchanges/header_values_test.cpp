// Field values as RabbitMQ's Erlang sees them: =:= on the parsed terms (rabbit_exchange_type_headers
// with mc_amqpl:routing_headers), RabbitMQ's type atoms, and ~tp printing for 406 texts.
#include <catch2/catch.hpp>

#include <limits>

#include "exchanges/header_values.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;
using protocol::ByteArray;
using protocol::Decimal;
using protocol::FieldArray;
using protocol::FieldRef;
using protocol::Timestamp;
using protocol::Void;

// One value, encoded as it arrives on the wire.
class Encoded {
public:
    explicit Encoded(const FieldValue& v) : bytes_(protocol::encode_table_body(table({{"v", v}}))) {}
    FieldRef ref() const { return *protocol::TableView::trusted(bytes_.span()).find("v"); }

private:
    protocol::ByteBuffer bytes_;
};

bool matches(const FieldValue& binding, const FieldValue& header) {
    Encoded b(binding), h(header);
    return header_value_matches(b.ref(), h.ref());
}

TEST_CASE("header values compare as Erlang terms with =:=, types dropped", "[routing]") {
    struct Row {
        const char* why;
        FieldValue binding, header;
        bool equal;
    };
    const std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
    const Row rows[] = {
        {"every integer width is one integer", std::int8_t{1}, std::int32_t{1}, true},
        {"unsigned byte and long", std::uint8_t{255}, std::int64_t{255}, true},
        {"unsigned int and long", std::uint32_t{4294967295u}, std::int64_t{4294967295}, true},
        {"negative across widths", std::int16_t{-1}, std::int64_t{-1}, true},
        {"-1 is not 65535", std::int16_t{-1}, std::uint16_t{65535}, false},
        {"different integers", std::int32_t{1}, std::int32_t{2}, false},
        {"integer is never a float (=:=)", std::int64_t{1}, 1.0, false},
        {"float and double are one float", 1.5, 1.5f, true},
        {"float32 0.1 widens to another double", 0.1f, 0.1, false},
        {"different floats", 1.5, 2.5, false},
        {"long string and byte array are one binary", "abc", ByteArray{"abc"}, true},
        {"binaries compare by bytes", "abc", "ABC", false},
        {"a string is not a number", "1", std::int32_t{1}, false},
        {"booleans", true, true, true},
        {"true is not false", true, false, false},
        {"a boolean is not an integer", true, std::int8_t{1}, false},
        {"decimals are {Scale, Value} tuples", Decimal{2, 150}, Decimal{2, 150}, true},
        {"1.50 and 1.5 are different tuples", Decimal{2, 150}, Decimal{1, 15}, false},
        // Warren compares timestamps unscaled (RabbitMQ 4.x multiplies the header's by 1000).
        {"equal timestamps match", Timestamp{5}, Timestamp{5}, true},
        {"a timestamp equals the same integer", std::int64_t{5}, Timestamp{5}, true},
        {"timestamps are not scaled to milliseconds", Timestamp{5000}, Timestamp{5}, false},
        {"zero timestamps match", Timestamp{0}, Timestamp{0}, true},
        {"binding timestamp against a header integer", Timestamp{5}, std::int64_t{5}, true},
        {"the largest timestamp matches itself", Timestamp{u64_max}, Timestamp{u64_max}, true},
        {"header void is undefined, never a value", "x", Void{}, false},
        {"tables equal", table({{"a", 1}}), table({{"a", 1}}), true},
        {"types count inside a table", table({{"a", std::int8_t{1}}}), table({{"a", std::int32_t{1}}}), false},
        {"order counts inside a table", table({{"a", 1}, {"b", 2}}), table({{"b", 2}, {"a", 1}}), false},
        {"timestamps inside a table are not scaled", table({{"t", Timestamp{5}}}), table({{"t", Timestamp{5}}}),
         true},
        {"longstr and bytes differ inside a table", table({{"s", "x"}}), table({{"s", ByteArray{"x"}}}), false},
        {"nested tables", table({{"n", table({{"d", 1.5}})}}), table({{"n", table({{"d", 1.5}})}}), true},
        {"arrays equal", FieldArray{{1, "x"}}, FieldArray{{1, "x"}}, true},
        {"types count inside an array", FieldArray{{std::int8_t{1}}}, FieldArray{{std::int32_t{1}}}, false},
        {"array lengths differ", FieldArray{{1}}, FieldArray{{1, 1}}, false},
        {"empty arrays", FieldArray{}, FieldArray{}, true},
        {"an empty table is not an empty array", FieldTable{}, FieldArray{}, false},
    };
    for (const Row& row : rows) {
        INFO(row.why);
        CHECK(matches(row.binding, row.header) == row.equal);
    }
}

TEST_CASE("field types carry RabbitMQ's type atoms", "[routing]") {
    const std::pair<char, std::string_view> rows[] = {
        {'t', "bool"},      {'b', "byte"},    {'B', "unsignedbyte"}, {'s', "short"},   {'u', "unsignedshort"},
        {'I', "signedint"}, {'i', "unsignedint"}, {'l', "long"},     {'f', "float"},   {'d', "double"},
        {'D', "decimal"},   {'S', "longstr"}, {'x', "binary"},       {'T', "timestamp"}, {'F', "table"},
        {'A', "array"},     {'V', "void"},
    };
    for (auto [letter, name] : rows) {
        INFO("type " << letter);
        CHECK(warren::protocol::field_type_name(letter) == name);
    }
}

TEST_CASE("field values print as Erlang's ~tp prints the parsed term", "[routing]") {
    struct Row {
        FieldValue value;
        std::string_view text;
    };
    const Row rows[] = {
        {"foo", "<<\"foo\">>"},
        {"", "<<>>"},
        {"a\"b\\c", "<<\"a\\\"b\\\\c\">>"},
        {"line\n", "<<\"line\\n\">>"},
        {"h\xc3\xa9", "<<\"h\xc3\xa9\"/utf8>>"},
        {std::string("\x00\x01", 2), "<<0,1>>"},
        {ByteArray{"any"}, "<<\"any\">>"},
        {std::int32_t{5}, "5"},
        {std::int64_t{-3}, "-3"},
        {std::uint8_t{200}, "200"},
        {true, "true"},
        {Void{}, "undefined"},
        {1.5, "1.5"},
        {1.0, "1.0"},
        {1e20, "1.0e20"},
        {Decimal{2, 150}, "{2,150}"},
        {Timestamp{7}, "7"},
        {table({{"k", "v"}}), "[{<<\"k\">>,longstr,<<\"v\">>}]"},
        {FieldArray{{1, "x"}}, "[{signedint,1},{longstr,<<\"x\">>}]"},
    };
    for (const Row& row : rows) {
        INFO("expected " << row.text);
        CHECK(erlang_term_text(row.value) == row.text);
    }
}

}  // namespace
}  // namespace warren::exchanges
