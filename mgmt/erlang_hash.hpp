// erlang:phash2/2 for the few Erlang terms a binding's arguments become, so that a binding's
// properties_key ("key~hash") is exactly RabbitMQ's (rabbit_mgmt_format:pack_binding_props):
// tools such as the messaging-topology operator find bindings by it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/field_table.hpp"

namespace warren::mgmt {

// An Erlang term, as far as AMQP field tables need: atoms, integers, floats, binaries,
// tuples and proper lists.
struct ErlTerm {
    enum class Kind { Atom, Integer, Float, Binary, Tuple, List } kind = Kind::Atom;
    std::string text;  // atom name or binary bytes
    std::int64_t integer = 0;
    double number = 0;
    std::vector<ErlTerm> items;  // tuple elements or list items

    static ErlTerm atom(std::string name) { return {Kind::Atom, std::move(name), 0, 0, {}}; }
    static ErlTerm integer_of(std::int64_t v) { return {Kind::Integer, {}, v, 0, {}}; }
    static ErlTerm float_of(double v) { return {Kind::Float, {}, 0, v, {}}; }
    static ErlTerm binary(std::string bytes) { return {Kind::Binary, std::move(bytes), 0, 0, {}}; }
    static ErlTerm tuple(std::vector<ErlTerm> items) { return {Kind::Tuple, {}, 0, 0, std::move(items)}; }
    static ErlTerm list(std::vector<ErlTerm> items) { return {Kind::List, {}, 0, 0, std::move(items)}; }
};

// erlang:phash2(Term, 1 bsl 32).
std::uint32_t phash2(const ErlTerm& term);

// A field table as RabbitMQ holds it: [{Key, TypeAtom, Value}] in table order.
ErlTerm table_term(const protocol::FieldTable& table);

// RabbitMQ's properties_key: the quoted routing key, "~" and the base64url of the arguments'
// phash2 when there are arguments; "~" alone for an empty key without arguments.
std::string properties_key(std::string_view routing_key, const protocol::FieldTable& arguments);

}  // namespace warren::mgmt
