// The AMQP 0-9-1 argument types that are not plain integers. Each type is its wire encoding,
// so the generic method codec can pick the encoding from the C++ type alone.
#pragma once

#include <string>
#include <string_view>

namespace warren::protocol {

// shortstr: up to 255 bytes, a view into the frame being decoded (or a literal when encoding).
struct ShortStr {
    std::string_view value;
    constexpr ShortStr() = default;
    constexpr ShortStr(std::string_view v) : value(v) {}
    constexpr ShortStr(const char* v) : value(v) {}
    ShortStr(const std::string& v) : value(v) {}
    constexpr operator std::string_view() const { return value; }
    constexpr std::string_view view() const { return value; }
    constexpr bool empty() const { return value.empty(); }
    constexpr std::size_t size() const { return value.size(); }
    friend constexpr bool operator==(ShortStr a, ShortStr b) { return a.value == b.value; }
};

// longstr: a 32-bit length and bytes, a view like ShortStr.
struct LongStr {
    std::string_view value;
    constexpr LongStr() = default;
    constexpr LongStr(std::string_view v) : value(v) {}
    constexpr LongStr(const char* v) : value(v) {}
    LongStr(const std::string& v) : value(v) {}
    constexpr operator std::string_view() const { return value; }
    constexpr std::string_view view() const { return value; }
    constexpr bool empty() const { return value.empty(); }
    constexpr std::size_t size() const { return value.size(); }
    friend constexpr bool operator==(LongStr a, LongStr b) { return a.value == b.value; }
};

// bit: consecutive bits in a method are packed into one octet, least significant bit first.
struct Bit {
    bool value = false;
    constexpr Bit() = default;
    constexpr Bit(bool v) : value(v) {}
    constexpr operator bool() const { return value; }
};

}  // namespace warren::protocol
