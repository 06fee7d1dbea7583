// Appends AMQP primitives (big-endian integers, short and long strings) to a ByteBuffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "protocol/byte_buffer.hpp"

namespace warren::protocol {

class Writer {
public:
    explicit Writer(ByteBuffer& out) : out_(out) {}

    ByteBuffer& buffer() { return out_; }
    std::size_t size() const { return out_.size(); }

    void u8(std::uint8_t v) { *out_.extend(1) = std::byte{v}; }
    void u16(std::uint16_t v) {
        std::byte* p = out_.extend(2);
        p[0] = std::byte(v >> 8);
        p[1] = std::byte(v);
    }
    void u32(std::uint32_t v) { put_u32(out_.extend(4), v); }
    void u64(std::uint64_t v) {
        std::byte* p = out_.extend(8);
        put_u32(p, static_cast<std::uint32_t>(v >> 32));
        put_u32(p + 4, static_cast<std::uint32_t>(v));
    }
    void f32(float f) {
        std::uint32_t bits;
        std::memcpy(&bits, &f, sizeof bits);
        u32(bits);
    }
    void f64(double d) {
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        u64(bits);
    }
    void bytes(std::span<const std::byte> s) { out_.append(s); }
    void bytes(std::string_view s) { out_.append(s); }
    // A shortstr holds at most 255 bytes; longer text is cut (only server-made text can be long).
    void shortstr(std::string_view s) {
        if (s.size() > 255) s = s.substr(0, 255);
        u8(static_cast<std::uint8_t>(s.size()));
        out_.append(s);
    }
    void longstr(std::string_view s) {
        u32(static_cast<std::uint32_t>(s.size()));
        out_.append(s);
    }

    // Reserves a 32-bit length and returns its offset, for patch_u32 once the length is known.
    std::size_t reserve_u32() {
        std::size_t at = out_.size();
        out_.extend(4);
        return at;
    }
    void patch_u32(std::size_t at, std::uint32_t v) { put_u32(out_.data() + at, v); }

    static void put_u32(std::byte* p, std::uint32_t v) {
        p[0] = std::byte(v >> 24);
        p[1] = std::byte(v >> 16);
        p[2] = std::byte(v >> 8);
        p[3] = std::byte(v);
    }

private:
    ByteBuffer& out_;
};

}  // namespace warren::protocol
