// Hash maps keyed by std::string that can be searched with a std::string_view without
// building a std::string (no allocation on lookups in the publish path).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace warren::broker {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace warren::broker
