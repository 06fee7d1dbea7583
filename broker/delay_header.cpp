// See delay_header.hpp.
#include "broker/delay_header.hpp"

#include <fmt/format.h>

#include <cmath>

#include "broker/rabbit_text.hpp"

namespace warren::broker {

namespace ft = protocol::field_type;

namespace {

// Erlang's binary_to_integer: an optional sign and decimal digits, nothing else.
std::optional<std::int64_t> parse_integer(std::string_view s) {
    std::size_t i = 0;
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
    if (i == s.size() || s.size() - i > 18) return std::nullopt;
    std::int64_t v = 0;
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
        v = v * 10 + (s[i] - '0');
    }
    return negative ? -v : v;
}

std::optional<std::int64_t> truncated(double d) {
    if (!std::isfinite(d) || std::fabs(d) > 9e18) return std::nullopt;
    return static_cast<std::int64_t>(std::trunc(d));
}

}  // namespace

DelayHeader read_delay_header(protocol::TableView headers) {
    DelayHeader h;
    auto value = headers.find(x_delay_header);
    if (!value) return h;
    h.present = true;
    if (auto i = value->as_integer()) {
        h.ms = *i;
    } else {
        protocol::FieldValue v = value->to_value();
        if (const std::string* s = v.as_string()) {
            h.ms = parse_integer(*s);
            if (!h.ms) h.problem = fmt::format("\"{}\" is not an integer", *s);
        } else if (const auto* b = v.get_if<protocol::ByteArray>()) {
            h.ms = parse_integer(b->bytes);
            if (!h.ms) h.problem = fmt::format("\"{}\" is not an integer", b->bytes);
        } else if (const auto* f = v.get_if<float>()) {
            h.ms = truncated(*f);
        } else if (const auto* d = v.get_if<double>()) {
            h.ms = truncated(*d);
        } else if (const auto* dec = v.get_if<protocol::Decimal>()) {
            h.ms = truncated(static_cast<double>(dec->value) / std::pow(10.0, dec->scale));
        }
        if (!h.ms && h.problem.empty())
            h.problem =
                fmt::format("a value of type {} is not a number of milliseconds", rabbit_type_name(value->type()));
    }
    if (h.ms && *h.ms > max_delay_ms)
        h.problem = fmt::format("{} ms is more than the largest delay, {} ms (49.7 days)", *h.ms, max_delay_ms);
    return h;
}

}  // namespace warren::broker
