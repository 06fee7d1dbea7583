// HeadersExchange: RabbitMQ 4.x's rabbit_exchange_type_headers. x-match all (default), any,
// all-with-x, any-with-x; x- arguments skipped except by the -with-x modes; void arguments
// test presence; values compared as Erlang terms; validate_binding's 406 texts.
#include <catch2/catch.hpp>

#include "exchanges/headers_exchange.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;
using protocol::ByteArray;
using protocol::Timestamp;
using protocol::Void;

TEST_CASE("validate_binding accepts RabbitMQ's four x-match values and gives its 406 texts", "[routing]") {
    struct Row {
        FieldTable args;
        std::optional<std::string> error;
    };
    const Row rows[] = {
        {{}, std::nullopt},  // x-match may be omitted: it means all
        {table({{"x-match", "all"}}), std::nullopt},
        {table({{"x-match", "any"}}), std::nullopt},
        {table({{"x-match", "all-with-x"}}), std::nullopt},
        {table({{"x-match", "any-with-x"}}), std::nullopt},
        {table({{"format", 1}, {"x-other", "zzz"}}), std::nullopt},
        {table({{"x-match", "ALL"}}),
         "Invalid x-match field value <<\"ALL\">>; expected all, any, all-with-x, or any-with-x"},
        {table({{"x-match", ""}}), "Invalid x-match field value <<>>; expected all, any, all-with-x, or any-with-x"},
        {table({{"x-match", "any "}}),
         "Invalid x-match field value <<\"any \">>; expected all, any, all-with-x, or any-with-x"},
        {table({{"x-match", std::int32_t{1}}}), "Invalid x-match field type signedint (value 1); expected longstr"},
        {table({{"x-match", ByteArray{"all"}}}),
         "Invalid x-match field type binary (value <<\"all\">>); expected longstr"},
        {table({{"x-match", true}}), "Invalid x-match field type bool (value true); expected longstr"},
        {table({{"x-match", Void{}}}), "Invalid x-match field type void (value undefined); expected longstr"},
        // table_lookup finds the first x-match.
        {table({{"x-match", "any"}, {"x-match", "bogus"}}), std::nullopt},
    };
    HeadersExchange x;
    for (const Row& row : rows) {
        INFO("expected: " << row.error.value_or("valid"));
        CHECK(x.validate_binding(row.args) == row.error);
    }
}

struct MatchRow {
    const char* why;
    FieldTable binding;
    std::optional<FieldTable> headers;  // nullopt: the message has no headers property
    bool matches;
};

void check_rows(const std::vector<MatchRow>& rows) {
    for (const MatchRow& row : rows) {
        INFO(row.why);
        HeadersExchange x;
        REQUIRE(x.bind(queue(1), "", row.binding));
        Headers headers = row.headers ? Headers(*row.headers) : Headers();
        std::vector<std::uint64_t> expected;
        if (row.matches) expected.push_back(1);
        CHECK(route_ids(x, "", headers) == expected);
    }
}

TEST_CASE("headers x-match all and any", "[routing]") {
    check_rows({
        {"all with nothing to compare matches a message without headers", {}, std::nullopt, true},
        {"all with nothing to compare matches any headers", {}, table({{"a", "1"}}), true},
        {"any with nothing to compare never matches", table({{"x-match", "any"}}), table({{"a", "1"}}), false},
        {"any with nothing to compare, no headers", table({{"x-match", "any"}}), std::nullopt, false},
        {"all: a missing header fails", table({{"a", "1"}}), std::nullopt, false},
        {"all: the header matches", table({{"a", "1"}}), table({{"a", "1"}}), true},
        {"all: a wrong value fails", table({{"a", "1"}}), table({{"a", "2"}}), false},
        {"all: every argument must match", table({{"a", "1"}, {"b", "2"}}), table({{"a", "1"}}), false},
        {"all: extra headers are fine", table({{"a", "1"}, {"b", "2"}}), table({{"c", "3"}, {"b", "2"}, {"a", "1"}}),
         true},
        {"explicit all", table({{"x-match", "all"}, {"a", "1"}}), table({{"a", "1"}}), true},
        {"any: one matching argument is enough", table({{"x-match", "any"}, {"a", "1"}, {"b", "2"}}),
         table({{"b", "2"}}), true},
        {"any: values swapped match nothing", table({{"x-match", "any"}, {"a", "1"}, {"b", "2"}}),
         table({{"a", "2"}, {"b", "1"}}), false},
        {"keys are case-sensitive", table({{"A", "1"}}), table({{"a", "1"}}), false},
        {"the routing key plays no part", table({{"a", "1"}}), table({{"a", "1"}}), true},
        // RabbitMQ's route/3 treats an x-match it would have refused as all.
        {"an invalid x-match counts as all (match)", table({{"x-match", "bogus"}, {"a", "1"}}), table({{"a", "1"}}),
         true},
        {"an invalid x-match counts as all (no match)", table({{"x-match", "bogus"}, {"a", "1"}, {"b", "2"}}),
         table({{"a", "1"}}), false},
        {"a non-string x-match counts as all", table({{"x-match", 1}, {"a", "1"}}), table({{"a", "1"}}), true},
    });
}

TEST_CASE("headers x- arguments count only with all-with-x and any-with-x", "[routing]") {
    check_rows({
        {"all skips x- arguments", table({{"x-tenant", "a"}, {"f", "pdf"}}), table({{"f", "pdf"}}), true},
        {"all skips x- arguments even when only they are given", table({{"x-tenant", "a"}}), std::nullopt, true},
        {"any skips x- arguments", table({{"x-match", "any"}, {"x-tenant", "a"}}), table({{"x-tenant", "a"}}), false},
        {"all-with-x compares x- arguments", table({{"x-match", "all-with-x"}, {"x-tenant", "a"}}),
         table({{"x-tenant", "a"}}), true},
        {"all-with-x: missing x- header", table({{"x-match", "all-with-x"}, {"x-tenant", "a"}, {"f", "pdf"}}),
         table({{"f", "pdf"}}), false},
        {"all-with-x: wrong x- value", table({{"x-match", "all-with-x"}, {"x-tenant", "a"}}),
         table({{"x-tenant", "b"}}), false},
        {"any-with-x: the x- argument alone", table({{"x-match", "any-with-x"}, {"x-tenant", "a"}, {"f", "pdf"}}),
         table({{"x-tenant", "a"}}), true},
        {"x-match itself is never compared (any-with-x)", table({{"x-match", "any-with-x"}}),
         table({{"x-match", "any-with-x"}}), false},
        {"x-match itself is never compared (all-with-x)", table({{"x-match", "all-with-x"}}), std::nullopt, true},
        {"only lower-case x- is special", table({{"X-Tenant", "a"}}), std::nullopt, false},
        {"only lower-case x- is special (present)", table({{"X-Tenant", "a"}}), table({{"X-Tenant", "a"}}), true},
        {"x-death presence with all-with-x",
         table({{"x-match", "all-with-x"}, {"x-death", Void{}}}),
         table({{"x-death", protocol::FieldArray{{table({{"count", std::int64_t{1}}})}}}}), true},
    });
}

TEST_CASE("headers void arguments match on presence", "[routing]") {
    check_rows({
        {"void matches a present header of any type", table({{"a", Void{}}}), table({{"a", std::int64_t{42}}}), true},
        {"void matches a void header", table({{"a", Void{}}}), table({{"a", Void{}}}), true},
        {"void matches a table header", table({{"a", Void{}}}), table({{"a", table({{"z", 1}})}}), true},
        {"void fails on an absent header", table({{"a", Void{}}}), table({{"b", "1"}}), false},
        {"void fails without headers", table({{"a", Void{}}}), std::nullopt, false},
        {"any: void or value", table({{"x-match", "any"}, {"a", Void{}}, {"b", "1"}}), table({{"a", "x"}}), true},
        {"a valued argument does not match a void header", table({{"a", "1"}}), table({{"a", Void{}}}), false},
    });
}

TEST_CASE("headers values compare as RabbitMQ 4 compares them", "[routing]") {
    check_rows({
        {"int8 1 equals int64 1", table({{"n", std::int8_t{1}}}), table({{"n", std::int64_t{1}}}), true},
        {"uint32 equals int64 of the same value", table({{"n", std::uint32_t{3000000000u}}}),
         table({{"n", std::int64_t{3000000000}}}), true},
        {"1 is not 1.0", table({{"n", 1}}), table({{"n", 1.0}}), false},
        {"float and double 2.5", table({{"n", 2.5f}}), table({{"n", 2.5}}), true},
        {"long string equals byte array", table({{"s", "abc"}}), table({{"s", ByteArray{"abc"}}}), true},
        {"string 1 is not integer 1", table({{"s", "1"}}), table({{"s", 1}}), false},
        {"true is not 1", table({{"b", true}}), table({{"b", std::uint8_t{1}}}), false},
        {"header timestamps are compared unscaled: T=5 vs T=5", table({{"t", Timestamp{5}}}),
         table({{"t", Timestamp{5}}}), true},
        {"header timestamps are compared unscaled: 5000 vs T=5", table({{"t", std::int64_t{5000}}}),
         table({{"t", Timestamp{5}}}), false},
        {"tables compare with their types", table({{"m", table({{"k", 1}})}}), table({{"m", table({{"k", 1}})}}),
         true},
        {"tables compare with their types (width differs)", table({{"m", table({{"k", 1}})}}),
         table({{"m", table({{"k", std::int64_t{1}}})}}), false},
        // mc_amqpl:routing_headers folds the headers into a map: a repeated key's last value wins.
        {"a repeated header: the last value counts", table({{"a", "2"}}), table({{"a", "1"}, {"a", "2"}}), true},
        {"a repeated header: the first value does not", table({{"a", "1"}}), table({{"a", "1"}, {"a", "2"}}), false},
    });
}

TEST_CASE("headers routes each binding independently", "[routing]") {
    HeadersExchange x;
    x.bind(queue(1), "", table({{"format", "pdf"}, {"type", "report"}}));
    x.bind(queue(2), "", table({{"x-match", "any"}, {"format", "pdf"}, {"type", "log"}}));
    x.bind(queue(3), "", table({{"x-match", "any-with-x"}, {"x-retry", 1}}));
    x.bind(queue(4), "", {});
    Headers pdf_report(table({{"type", "report"}, {"format", "pdf"}}));
    Headers log(table({{"type", "log"}}));
    Headers retry(table({{"x-retry", std::int64_t{1}}, {"format", "zip"}}));
    CHECK(route_ids(x, "ignored", pdf_report) == std::vector<std::uint64_t>{1, 2, 4});
    CHECK(route_ids(x, "", log) == std::vector<std::uint64_t>{2, 4});
    CHECK(route_ids(x, "", retry) == std::vector<std::uint64_t>{3, 4});
    CHECK(route_ids(x, "", Headers()) == std::vector<std::uint64_t>{4});

    CHECK(x.remove_destination(queue(2)) == 1);
    CHECK(route_ids(x, "", pdf_report) == std::vector<std::uint64_t>{1, 4});
    CHECK(x.unbind(queue(1), "", table({{"type", "report"}, {"format", "pdf"}})));  // any order
    CHECK(route_ids(x, "", pdf_report) == std::vector<std::uint64_t>{4});
}

TEST_CASE("headers match lists stay valid as the exchange grows and shrinks", "[routing]") {
    HeadersExchange x;
    for (std::uint64_t i = 0; i < 2000; ++i) x.bind(queue(i), "", table({{"id", "v" + std::to_string(i)}}));
    for (std::uint64_t i = 0; i < 2000; i += 2) x.unbind(queue(i), "", table({{"id", "v" + std::to_string(i)}}));
    for (std::uint64_t i : {1, 2, 999, 1000, 1999}) {
        Headers h(table({{"id", "v" + std::to_string(i)}}));
        INFO("id v" << i);
        CHECK(route_ids(x, "", h) == (i % 2 ? std::vector<std::uint64_t>{i} : std::vector<std::uint64_t>{}));
    }
}

}  // namespace
}  // namespace warren::exchanges
