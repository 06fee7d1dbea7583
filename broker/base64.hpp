// Base64 (RFC 4648, with padding) for bytes kept in JSON: encoded field tables in the
// definitions log.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace warren::broker {

std::string base64_encode(std::span<const std::byte> bytes);
// nullopt for anything that is not canonical padded base64.
std::optional<std::vector<std::byte>> base64_decode(std::string_view text);

}  // namespace warren::broker
