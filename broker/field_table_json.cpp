// See field_table_json.hpp. Types JSON has no word for are written as RabbitMQ writes them:
// a timestamp as its seconds, a decimal as a number, a byte array as its bytes in a string.
#include "broker/field_table_json.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

namespace warren::broker {

using json = nlohmann::json;
using protocol::FieldArray;
using protocol::FieldTable;
using protocol::FieldValue;

namespace {

json value_to_json(const FieldValue& v) {
    return std::visit(
        [](const auto& x) -> json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, protocol::Void>)
                return nullptr;
            else if constexpr (std::is_same_v<T, bool>)
                return x;
            else if constexpr (std::is_integral_v<T>)
                return static_cast<std::int64_t>(x);
            else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
                return static_cast<double>(x);
            else if constexpr (std::is_same_v<T, protocol::Decimal>)
                return static_cast<double>(x.value) / std::pow(10.0, x.scale);
            else if constexpr (std::is_same_v<T, std::string>)
                return x;
            else if constexpr (std::is_same_v<T, protocol::ByteArray>)
                return x.bytes;
            else if constexpr (std::is_same_v<T, protocol::Timestamp>)
                return x.seconds;
            else if constexpr (std::is_same_v<T, FieldArray>) {
                json a = json::array();
                for (const FieldValue& e : x.items) a.push_back(value_to_json(e));
                return a;
            } else {
                return field_table_to_json(x);
            }
        },
        v.v);
}

std::optional<FieldValue> value_from_json(const json& j, std::string& error, int depth) {
    if (depth > 32) {
        error = "nested too deeply";
        return std::nullopt;
    }
    switch (j.type()) {
        case json::value_t::null:
            return FieldValue(protocol::Void{});
        case json::value_t::boolean:
            return FieldValue(j.get<bool>());
        case json::value_t::number_integer:
            return FieldValue(j.get<std::int64_t>());
        case json::value_t::number_unsigned:
            if (j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
                error = "an integer beyond 64 bits";
                return std::nullopt;
            }
            return FieldValue(static_cast<std::int64_t>(j.get<std::uint64_t>()));
        case json::value_t::number_float:
            return FieldValue(j.get<double>());
        case json::value_t::string:
            return FieldValue(j.get<std::string>());
        case json::value_t::array: {
            FieldArray a;
            for (const json& e : j) {
                auto v = value_from_json(e, error, depth + 1);
                if (!v) return std::nullopt;
                a.items.push_back(std::move(*v));
            }
            return FieldValue(std::move(a));
        }
        case json::value_t::object: {
            FieldTable t;
            for (const auto& [k, e] : j.items()) {
                auto v = value_from_json(e, error, depth + 1);
                if (!v) return std::nullopt;
                t.entries.push_back({k, std::move(*v)});
            }
            return FieldValue(std::move(t));
        }
        default:
            error = "a value JSON cannot hold";
            return std::nullopt;
    }
}

}  // namespace

json field_table_to_json(const FieldTable& table) {
    json o = json::object();
    for (const auto& e : table.entries) o[e.key] = value_to_json(e.value);
    return o;
}

std::optional<FieldTable> field_table_from_json(const json& j, std::string& error) {
    if (!j.is_object()) {
        error = "not an object";
        return std::nullopt;
    }
    auto v = value_from_json(j, error, 0);
    if (!v) return std::nullopt;
    return std::move(*std::get_if<FieldTable>(&v->v));
}

}  // namespace warren::broker
