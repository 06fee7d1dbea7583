// The content header's 14 basic properties and their flag bits. A published message keeps
// its encoded properties and sends them back verbatim; the broker decodes only what it reads
// (expiration, headers, priority) and re-encodes only after a change (dead-lettering).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/byte_buffer.hpp"
#include "protocol/table_view.hpp"

namespace warren::protocol {

namespace property_flag {
inline constexpr std::uint16_t content_type = 1u << 15;
inline constexpr std::uint16_t content_encoding = 1u << 14;
inline constexpr std::uint16_t headers = 1u << 13;
inline constexpr std::uint16_t delivery_mode = 1u << 12;
inline constexpr std::uint16_t priority = 1u << 11;
inline constexpr std::uint16_t correlation_id = 1u << 10;
inline constexpr std::uint16_t reply_to = 1u << 9;
inline constexpr std::uint16_t expiration = 1u << 8;
inline constexpr std::uint16_t message_id = 1u << 7;
inline constexpr std::uint16_t timestamp = 1u << 6;
inline constexpr std::uint16_t type = 1u << 5;
inline constexpr std::uint16_t user_id = 1u << 4;
inline constexpr std::uint16_t app_id = 1u << 3;
inline constexpr std::uint16_t cluster_id = 1u << 2;
inline constexpr std::uint16_t continuation = 1u << 0;
inline constexpr std::uint16_t defined = 0xFFFC;  // the 14 above
}  // namespace property_flag

// Views into encoded properties (or into strings the caller keeps alive while encoding).
struct BasicProperties {
    std::uint16_t flags = 0;
    std::string_view content_type;
    std::string_view content_encoding;
    TableView headers;
    std::uint8_t delivery_mode = 0;
    std::uint8_t priority = 0;
    std::string_view correlation_id;
    std::string_view reply_to;
    std::string_view expiration;
    std::string_view message_id;
    std::uint64_t timestamp = 0;
    std::string_view type;
    std::string_view user_id;
    std::string_view app_id;
    std::string_view cluster_id;

    bool has(std::uint16_t flag) const { return (flags & flag) != 0; }
    void set_flag(std::uint16_t flag, bool on = true) { flags = on ? (flags | flag) : (flags & ~flag); }
};

// Decodes the property list (flag words first). nullopt when malformed: a truncated value,
// a bad table, unknown flag bits, or bytes left over.
std::optional<BasicProperties> decode_properties(std::span<const std::byte> bytes);

// Encodes flag word and the values of the properties whose flags are set.
void encode_properties(ByteBuffer& out, const BasicProperties& props);

}  // namespace warren::protocol
