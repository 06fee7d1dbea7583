// See workbench_filter.hpp.
#include "broker/workbench_filter.hpp"

#include <fmt/format.h>

#include "protocol/basic_properties.hpp"

namespace warren::broker::workbench {

namespace {
protocol::TableView headers_of(const Message& m) {
    return m.has_headers() ? m.decoded_properties().headers : protocol::TableView{};
}

std::optional<std::string> string_header(const protocol::TableView& headers, std::string_view key) {
    auto v = headers.find(key);
    if (!v) return std::nullopt;
    return field_text(*v);
}
}  // namespace

std::optional<std::string> field_text(const protocol::FieldRef& value) {
    if (auto s = value.as_string()) return std::string(*s);
    if (auto b = value.as_bool()) return std::string(*b ? "true" : "false");
    if (auto i = value.as_integer()) return fmt::format("{}", *i);
    if (value.type() == protocol::field_type::byte_array) {  // clients put text there too
        auto p = value.payload();
        if (p.size() >= 4) return std::string(reinterpret_cast<const char*>(p.data()) + 4, p.size() - 4);
    }
    return std::nullopt;
}

DeathLabels death_labels(const Message& m, std::string_view header) {
    DeathLabels out;
    if (!m.has_headers()) return out;
    protocol::TableView h = headers_of(m);
    out.reason = string_header(h, "x-first-death-reason");
    out.origin_queue = string_header(h, "x-first-death-queue");
    if (!header.empty()) out.header = string_header(h, header);
    return out;
}

std::optional<Origin> death_origin(const Message& m) {
    if (!m.has_headers()) return std::nullopt;
    auto deaths = headers_of(m).find("x-death");
    if (!deaths) return std::nullopt;
    std::optional<Origin> out;
    bool first = true;
    deaths->as_array().for_each([&](const protocol::FieldRef& entry) {
        if (!first) return;
        first = false;
        protocol::TableView d = entry.as_table();
        auto exchange = d.find("exchange");
        auto keys = d.find("routing-keys");
        if (!exchange || !exchange->as_string() || !keys) return;
        std::optional<std::string> key;
        keys->as_array().for_each([&](const protocol::FieldRef& k) {
            if (!key) key = k.as_string() ? std::optional<std::string>(std::string(*k.as_string())) : std::nullopt;
        });
        if (key) out = Origin{std::string(*exchange->as_string()), *key};
    });
    return out;
}

bool MessageFilter::matches(const Message& m) const {
    if (empty()) return true;
    if (!m.has_headers()) return false;
    protocol::TableView h = headers_of(m);
    if (reason && string_header(h, "x-first-death-reason") != *reason) return false;
    if (origin_queue && string_header(h, "x-first-death-queue") != *origin_queue) return false;
    if (header) {
        auto v = h.find(*header);
        if (!v) return false;
        if (header_value && field_text(*v) != *header_value) return false;
    }
    return true;
}

}  // namespace warren::broker::workbench
