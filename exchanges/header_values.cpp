// Erlang-term equality and printing of AMQP field values, for the headers exchange.
#include "exchanges/header_values.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <variant>

#include "protocol/reader.hpp"

namespace warren::exchanges {

namespace ft = protocol::field_type;
using protocol::FieldRef;
using protocol::Reader;
using protocol::TableView;

// ---- equality ------------------------------------------------------------------------------

namespace {

// The Erlang type a field value parses to, once its type letter is dropped.
enum class TermClass { Integer, Float, Binary, Bool, Decimal, Undefined, Table, Array, Unknown };

TermClass term_class(char type) {
    switch (type) {
    case ft::int8:
    case ft::uint8:
    case ft::int16:
    case ft::uint16:
    case ft::int32:
    case ft::uint32:
    case ft::int64:
    case ft::timestamp: return TermClass::Integer;
    case ft::float32:
    case ft::float64: return TermClass::Float;
    case ft::long_string:
    case ft::byte_array: return TermClass::Binary;
    case ft::boolean: return TermClass::Bool;
    case ft::decimal: return TermClass::Decimal;
    case ft::void_value: return TermClass::Undefined;
    case ft::table: return TermClass::Table;
    case ft::array: return TermClass::Array;
    }
    return TermClass::Unknown;
}

// An Erlang integer from any field width: sign and magnitude, since a timestamp is an unsigned
// 64-bit value and a header timestamp in milliseconds can exceed even that (Erlang has bignums).
struct Integer {
    bool negative = false;
    std::uint64_t magnitude = 0;
    bool beyond_u64 = false;  // larger than any value a binding argument can hold

    friend bool operator==(const Integer&, const Integer&) = default;
};

// Timestamps compare as their integer value on both sides. RabbitMQ 4.x scales a header's
// timestamp to milliseconds but not the binding's, so equal timestamps never match there; we
// do not copy that quirk (README, compatibility).
Integer integer_of(const FieldRef& v, bool as_header) {
    (void)as_header;
    if (v.type() == ft::timestamp) {
        Reader r(v.payload());
        return Integer{false, r.u64(), false};
    }
    std::int64_t x = v.as_integer().value_or(0);
    if (x < 0) return Integer{true, 0 - static_cast<std::uint64_t>(x), false};
    return Integer{false, static_cast<std::uint64_t>(x), false};
}

double float_of(const FieldRef& v) {
    Reader r(v.payload());
    return v.type() == ft::float32 ? static_cast<double>(r.f32()) : r.f64();
}

std::string_view binary_of(const FieldRef& v) {
    Reader r(v.payload());
    return r.longstr();
}

bool bool_of(const FieldRef& v) { return v.as_bool().value_or(false); }

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

bool typed_equal(const FieldRef& a, const FieldRef& b);

// Nested tables are Erlang lists of {Key, TypeAtom, Value}: same length, same keys in the same
// order, same types. RabbitMQ sorts only the top level of binding arguments.
bool tables_equal(const TableView& a, const TableView& b) {
    Reader ra(a.bytes()), rb(b.bytes());
    while (ra.remaining() > 0 && rb.remaining() > 0) {
        if (ra.shortstr() != rb.shortstr()) return false;
        FieldRef va = TableView::read_value(ra);
        FieldRef vb = TableView::read_value(rb);
        if (!typed_equal(va, vb)) return false;
    }
    return ra.remaining() == 0 && rb.remaining() == 0;
}

bool arrays_equal(const protocol::ArrayView& a, const protocol::ArrayView& b) {
    Reader ra(a.bytes()), rb(b.bytes());
    while (ra.remaining() > 0 && rb.remaining() > 0) {
        FieldRef va = TableView::read_value(ra);
        FieldRef vb = TableView::read_value(rb);
        if (!typed_equal(va, vb)) return false;
    }
    return ra.remaining() == 0 && rb.remaining() == 0;
}

// Equality of values inside a table or array, where the type atom is part of the term.
bool typed_equal(const FieldRef& a, const FieldRef& b) {
    if (a.type() != b.type()) return false;
    switch (term_class(a.type())) {
    case TermClass::Float: return float_of(a) == float_of(b);
    case TermClass::Bool: return bool_of(a) == bool_of(b);  // any non-zero octet parses to true
    case TermClass::Undefined: return true;
    case TermClass::Table: return tables_equal(a.as_table(), b.as_table());
    case TermClass::Array: return arrays_equal(a.as_array(), b.as_array());
    default: return same_bytes(a.payload(), b.payload());  // integers, binaries, decimals
    }
}

}  // namespace

bool header_value_matches(const FieldRef& binding, const FieldRef& header) {
    TermClass c = term_class(binding.type());
    if (c != term_class(header.type())) return false;
    switch (c) {
    case TermClass::Integer: {
        Integer h = integer_of(header, true);
        return !h.beyond_u64 && integer_of(binding, false) == h;
    }
    // Compared as doubles: Erlang has no NaN, and OTP before 27 holds 0.0 =:= -0.0.
    case TermClass::Float: return float_of(binding) == float_of(header);
    case TermClass::Binary: return binary_of(binding) == binary_of(header);
    case TermClass::Bool: return bool_of(binding) == bool_of(header);
    case TermClass::Decimal: return same_bytes(binding.payload(), header.payload());
    case TermClass::Undefined: return true;
    case TermClass::Table: return tables_equal(binding.as_table(), header.as_table());
    case TermClass::Array: return arrays_equal(binding.as_array(), header.as_array());
    case TermClass::Unknown: return false;
    }
    return false;
}

// ---- printing ------------------------------------------------------------------------------

namespace {

bool is_escapable(unsigned char c) {
    return c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\b' || c == '\f' || c == 27;
}

void append_escaped(std::string& out, unsigned char c) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\v': out += "\\v"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    case 27: out += "\\e"; break;
    default: out += static_cast<char>(c);
    }
}

// Decodes UTF-8; false if malformed or if a code point is outside printable Latin-1
// (io:printable_range() is latin1 by default, so only those print as text).
bool printable_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (!(c >= 0x20 && c < 0x7f) && !is_escapable(c)) return false;
            ++i;
            continue;
        }
        // Two-octet sequences C2..C3 cover U+0080..U+00FF; printable from U+00A0.
        if ((c != 0xc2 && c != 0xc3) || i + 1 >= s.size()) return false;
        unsigned char d = static_cast<unsigned char>(s[i + 1]);
        if ((d & 0xc0) != 0x80) return false;
        unsigned cp = ((c & 0x1fu) << 6) | (d & 0x3fu);
        if (cp < 0xa0) return false;
        i += 2;
    }
    return true;
}

// How io_lib_pretty prints a binary: as text when it is printable, else as its octets.
std::string binary_text(std::string_view s) {
    if (s.empty()) return "<<>>";
    bool ascii = true;
    for (unsigned char c : s)
        if (!((c >= 0x20 && c < 0x7f) || is_escapable(c))) ascii = false;
    std::string out = "<<\"";
    if (ascii || printable_utf8(s)) {
        for (unsigned char c : s) append_escaped(out, c);
        out += ascii ? "\">>" : "\"/utf8>>";
        return out;
    }
    out = "<<";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(static_cast<unsigned char>(s[i]));
    }
    out += ">>";
    return out;
}

// Shortest round-trip digits, written the way Erlang writes floats: 1.5, 100.0, 1.0e20.
std::string float_text(double d) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    if (ec != std::errc{}) return "0.0";
    std::string s(buf, end);
    std::size_t e = s.find('e');
    std::string mantissa = s.substr(0, e);
    if (mantissa.find('.') == std::string::npos) mantissa += ".0";
    if (e == std::string::npos) return mantissa;
    std::string exponent = s.substr(e + 1);
    if (exponent[0] == '+') exponent.erase(0, 1);
    return mantissa + "e" + exponent;
}

}  // namespace

std::string erlang_term_text(const protocol::FieldValue& value) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, protocol::Void>) {
                return "undefined";
            } else if constexpr (std::is_same_v<T, bool>) {
                return x ? "true" : "false";
            } else if constexpr (std::is_integral_v<T>) {
                return std::to_string(x);
            } else if constexpr (std::is_floating_point_v<T>) {
                return float_text(static_cast<double>(x));
            } else if constexpr (std::is_same_v<T, protocol::Decimal>) {
                return "{" + std::to_string(x.scale) + "," + std::to_string(x.value) + "}";
            } else if constexpr (std::is_same_v<T, std::string>) {
                return binary_text(x);
            } else if constexpr (std::is_same_v<T, protocol::ByteArray>) {
                return binary_text(x.bytes);
            } else if constexpr (std::is_same_v<T, protocol::Timestamp>) {
                return std::to_string(x.seconds);
            } else if constexpr (std::is_same_v<T, protocol::FieldArray>) {
                std::string out = "[";
                for (std::size_t i = 0; i < x.items.size(); ++i) {
                    if (i) out += ',';
                    out += "{" + std::string(protocol::field_type_name(x.items[i].type())) + "," +
                           erlang_term_text(x.items[i]) + "}";
                }
                return out + "]";
            } else {
                static_assert(std::is_same_v<T, protocol::FieldTable>);
                std::string out = "[";
                for (std::size_t i = 0; i < x.entries.size(); ++i) {
                    const auto& e = x.entries[i];
                    if (i) out += ',';
                    out += "{" + binary_text(e.key) + "," + std::string(protocol::field_type_name(e.value.type())) + "," +
                           erlang_term_text(e.value) + "}";
                }
                return out + "]";
            }
        },
        value.v);
}

}  // namespace warren::exchanges
