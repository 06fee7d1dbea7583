// See stream_args.hpp. Texts are RabbitMQ 3.10's where it gives one; where it crashes (541
// INTERNAL_ERROR for x-stream-offset "foo", a boolean offset, or x-max-age "D"), Warren answers
// with the 406 that the same kind of bad value gets elsewhere.
#include "broker/stream_args.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "broker/rabbit_text.hpp"
#include "exchanges/header_values.hpp"

namespace warren::broker {

std::optional<std::uint64_t> parse_max_age_ms(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 12) return std::nullopt;
    std::uint64_t value = 0;
    std::from_chars(text.data(), text.data() + digits, value);
    if (value == 0) return std::nullopt;
    std::string_view unit = text.substr(digits);
    constexpr std::uint64_t s = 1000, m = 60 * s, h = 60 * m, d = 24 * h;
    std::uint64_t per = 0;
    if (unit == "Y")
        per = 365 * d;
    else if (unit == "M")
        per = 30 * d;
    else if (unit == "D")
        per = d;
    else if (unit == "h")
        per = h;
    else if (unit == "m")
        per = m;
    else if (unit == "s")
        per = s;
    else
        return std::nullopt;
    return value * per;
}

std::variant<OffsetSpec, std::string> parse_offset_spec(std::optional<protocol::FieldRef> value, std::int64_t now_ms) {
    using Kind = OffsetSpec::Kind;
    if (!value) return OffsetSpec{Kind::Next, 0};
    auto invalid = [&] {
        return fmt::format("{{invalid_stream_offset_arg,{{{},{}}}}}", rabbit_type_name(value->type()),
                           exchanges::erlang_term_text(value->to_value()));
    };
    if (auto s = value->as_string()) {
        if (*s == "first") return OffsetSpec{Kind::First, 0};
        if (*s == "last") return OffsetSpec{Kind::Last, 0};
        if (*s == "next") return OffsetSpec{Kind::Next, 0};
        auto interval = parse_max_age_ms(*s);
        if (!interval) return invalid();
        return OffsetSpec{Kind::Timestamp, now_ms - static_cast<std::int64_t>(*interval)};
    }
    if (value->type() == protocol::field_type::timestamp) {
        protocol::FieldValue v = value->to_value();
        const auto* t = v.get_if<protocol::Timestamp>();
        const auto seconds = static_cast<std::int64_t>(std::min<std::uint64_t>(t ? t->seconds : 0, 1ull << 50));
        return OffsetSpec{Kind::Timestamp, seconds * 1000};
    }
    if (auto n = value->as_integer()) return OffsetSpec{Kind::Offset, *n};
    return invalid();
}

StreamFilter parse_stream_filter(protocol::TableView arguments) {
    StreamFilter f;
    if (auto v = arguments.find(stream_args::filter)) {
        if (auto s = v->as_string()) {
            f.active = true;
            f.values.emplace_back(*s);
        } else if (v->type() == protocol::field_type::array) {
            f.active = true;
            v->as_array().for_each([&](protocol::FieldRef e) {
                if (auto s = e.as_string()) f.values.emplace_back(*s);
            });
        }
    }
    if (f.active)
        if (auto m = arguments.find(stream_args::match_unfiltered))
            if (auto b = m->as_bool()) f.match_unfiltered = *b;
    return f;
}

}  // namespace warren::broker
