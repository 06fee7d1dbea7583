// Hex fixtures for the codec tests. unhex("01 00 0a 'abc'") gives the bytes (spaces are
// ignored, '...' is ASCII); hex() prints bytes back as "01 00 0a 61 62 63", so a failed
// CHECK(hex(out) == canon("...")) shows both sides in the same form.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/byte_buffer.hpp"

namespace warren::protocol::test {

using Bytes = std::vector<std::byte>;

inline Bytes unhex(std::string_view text) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        throw std::invalid_argument("bad hex digit in fixture");
    };
    Bytes out;
    for (std::size_t i = 0; i < text.size();) {
        char c = text[i];
        if (c == ' ' || c == '\n' || c == '|') {
            ++i;
        } else if (c == '\'') {
            std::size_t end = text.find('\'', i + 1);
            if (end == std::string_view::npos) throw std::invalid_argument("unterminated ASCII in fixture");
            for (char ch : text.substr(i + 1, end - i - 1)) out.push_back(std::byte(ch));
            i = end + 1;
        } else {
            if (i + 1 >= text.size()) throw std::invalid_argument("odd number of hex digits in fixture");
            out.push_back(std::byte((nibble(c) << 4) | nibble(text[i + 1])));
            i += 2;
        }
    }
    return out;
}

inline std::string hex(std::span<const std::byte> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i) out += ' ';
        auto b = std::to_integer<unsigned>(bytes[i]);
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

inline std::string hex(const ByteBuffer& buffer) {
    return hex(buffer.span());
}

// A fixture in the form hex() prints.
inline std::string canon(std::string_view text) {
    return hex(unhex(text));
}

inline Bytes ascii(std::string_view s) {
    Bytes out;
    for (char c : s) out.push_back(std::byte(c));
    return out;
}

inline Bytes concat(std::initializer_list<std::span<const std::byte>> parts) {
    Bytes out;
    for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

}  // namespace warren::protocol::test
