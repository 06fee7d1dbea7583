// Bytes as text and back, for the store's tests.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace warren::store::test {

inline std::span<const std::byte> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string as_string(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace warren::store::test
