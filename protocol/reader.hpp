// Reads AMQP primitives from a byte span. Every read checks the remaining length itself;
// a failed read latches an error and returns zeros, so decoders read straight through
// and check ok() once at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace warren::protocol {

class Reader {
public:
    explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

    bool ok() const { return ok_; }
    // The read failed because a shortstr was not valid UTF-8 (a different error for RabbitMQ).
    bool bad_utf8() const { return bad_utf8_; }
    void fail_utf8() {
        bad_utf8_ = true;
        fail();
    }
    bool at_end() const { return pos_ == bytes_.size(); }
    std::size_t remaining() const { return ok_ ? bytes_.size() - pos_ : 0; }
    std::size_t position() const { return pos_; }
    void fail() {
        ok_ = false;
        pos_ = bytes_.size();
    }

    std::uint8_t u8() {
        if (!need(1)) return 0;
        return std::to_integer<std::uint8_t>(bytes_[pos_++]);
    }
    std::uint16_t u16() {
        if (!need(2)) return 0;
        std::uint16_t v = static_cast<std::uint16_t>((byte_at(0) << 8) | byte_at(1));
        pos_ += 2;
        return v;
    }
    std::uint32_t u32() {
        if (!need(4)) return 0;
        std::uint32_t v = (std::uint32_t{byte_at(0)} << 24) | (std::uint32_t{byte_at(1)} << 16) |
                          (std::uint32_t{byte_at(2)} << 8) | std::uint32_t{byte_at(3)};
        pos_ += 4;
        return v;
    }
    std::uint64_t u64() {
        std::uint64_t hi = u32();
        std::uint64_t lo = u32();
        return (hi << 32) | lo;
    }
    float f32() {
        std::uint32_t bits = u32();
        float f;
        std::memcpy(&f, &bits, sizeof f);
        return f;
    }
    double f64() {
        std::uint64_t bits = u64();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
    }
    std::span<const std::byte> bytes(std::size_t n) {
        if (!need(n)) return {};
        auto s = bytes_.subspan(pos_, n);
        pos_ += n;
        return s;
    }
    std::string_view shortstr() {
        std::size_t n = u8();
        return as_chars(bytes(n));
    }
    std::string_view longstr() {
        std::size_t n = u32();
        return as_chars(bytes(n));
    }
    std::span<const std::byte> rest() { return bytes(remaining()); }

    static std::string_view as_chars(std::span<const std::byte> s) {
        return {reinterpret_cast<const char*>(s.data()), s.size()};
    }

private:
    bool need(std::size_t n) {
        if (!ok_ || bytes_.size() - pos_ < n) {
            fail();
            return false;
        }
        return true;
    }
    unsigned byte_at(std::size_t i) const { return std::to_integer<unsigned>(bytes_[pos_ + i]); }

    std::span<const std::byte> bytes_;
    std::size_t pos_ = 0;
    bool ok_ = true;
    bool bad_utf8_ = false;
};

}  // namespace warren::protocol
