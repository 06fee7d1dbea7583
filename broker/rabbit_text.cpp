// See rabbit_text.hpp.
#include "broker/rabbit_text.hpp"

#include <fmt/format.h>

namespace warren::broker {

namespace ft = protocol::field_type;

std::string resource_name(std::string_view kind, std::string_view name, std::string_view vhost) {
    return fmt::format("{} '{}' in vhost '{}'", kind, name, vhost);
}

std::string_view rabbit_type_class(char type) {
    switch (type) {
    case ft::int8:
    case ft::uint8:
    case ft::int16:
    case ft::uint16:
    case ft::int32:
    case ft::uint32:
    case ft::int64:
        return "int";
    case ft::float32:
    case ft::float64:
        return "float";
    case ft::long_string:
    case ft::byte_array:
        return "longstr";
    default:
        return protocol::field_type_name(type);
    }
}

std::string rabbit_value_text(const protocol::FieldValue& value) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, bool>) {
                return x ? "true" : "false";
            } else if constexpr (std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t>) {
                return std::to_string(static_cast<int>(x));
            } else if constexpr (std::is_integral_v<T>) {
                return std::to_string(x);
            } else if constexpr (std::is_floating_point_v<T>) {
                return fmt::format("{}", x);
            } else if constexpr (std::is_same_v<T, std::string>) {
                return x;
            } else if constexpr (std::is_same_v<T, protocol::ByteArray>) {
                return x.bytes;
            } else if constexpr (std::is_same_v<T, protocol::Timestamp>) {
                return std::to_string(x.seconds);
            } else if constexpr (std::is_same_v<T, protocol::Decimal>) {
                return fmt::format("{{{},{}}}", x.scale, x.value);
            } else if constexpr (std::is_same_v<T, protocol::Void>) {
                return "undefined";
            } else {
                return "[...]";
            }
        },
        value.v);
}

}  // namespace warren::broker
