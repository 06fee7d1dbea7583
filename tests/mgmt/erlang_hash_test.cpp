// properties_key and erlang:phash2: the expected values were printed by Debian's Erlang
// (`erl -noshell -eval 'io:format("~p~n", [erlang:phash2(Term, 1 bsl 32)])'`), and the key by
// RabbitMQ 3.10 (tests/interop/python/mgmt_reference/rabbitmq-3.10.json).
#include "mgmt/erlang_hash.hpp"

#include <catch2/catch.hpp>

using namespace warren::mgmt;
using warren::protocol::FieldTable;
using T = ErlTerm;

namespace {
T entry(std::string key, std::string type, T value) {
    return T::tuple({T::binary(std::move(key)), T::atom(std::move(type)), std::move(value)});
}
}  // namespace

TEST_CASE("phash2 matches the Erlang runtime for the terms binding arguments become", "[mgmt]") {
    CHECK(phash2(T::list({entry("x-foo", "longstr", T::binary("bar"))})) == 272281573u);
    CHECK(phash2(T::list({})) == 3468870702u);
    CHECK(phash2(T::atom("longstr")) == 56945346u);
    CHECK(phash2(T::integer_of(42)) == 701417368u);
    CHECK(phash2(T::integer_of(-7)) == 2740599282u);
    CHECK(phash2(T::integer_of(1234567890123)) == 3483411825u);
    CHECK(phash2(T::integer_of(-300000000)) == 999989672u);
    CHECK(phash2(T::float_of(1.5)) == 2023646235u);
    CHECK(phash2(T::list({entry("a", "signedint", T::integer_of(5)), entry("b", "bool", T::atom("true"))})) ==
          2932217589u);
    CHECK(phash2(T::list(
              {entry("t", "table", T::list({entry("k", "longstr", T::binary("hello world, longer than twelve"))}))})) ==
          3705094874u);
    CHECK(phash2(T::list({entry("arr", "array",
                                T::list({T::tuple({T::atom("longstr"), T::binary("x")}),
                                         T::tuple({T::atom("long"), T::integer_of(300)})}))})) == 1983484307u);
    CHECK(phash2(T::list({entry("v", "void", T::atom("undefined"))})) == 3233508068u);
    CHECK(phash2(T::list({entry("d", "double", T::float_of(2.25))})) == 2750029942u);
    CHECK(phash2(T::list({T::integer_of(1), T::integer_of(2), T::integer_of(3), T::integer_of(4), T::integer_of(5),
                          T::atom("a")})) == 3182482923u);
}

TEST_CASE("properties_key is RabbitMQ's: quoted key, and ~hash when there are arguments", "[mgmt]") {
    FieldTable args;
    args.set("x-foo", "bar");
    CHECK(properties_key("a.*", args) == "a.%2A~EDqv5Q");  // recorded from RabbitMQ 3.10
    CHECK(properties_key("a.b", FieldTable{}) == "a.b");
    CHECK(properties_key("", FieldTable{}) == "~");
    CHECK(properties_key("a b~c/d", FieldTable{}) == "a+b%7Ec%2Fd");
}
