// Little-endian integers in byte buffers: every on-disk field of the store goes through these,
// so the format is the same on any host. Unaligned access is done with memcpy.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace warren::store {

template <class T>
inline T to_little(T v) {
    static_assert(std::is_unsigned_v<T>);
    if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
        if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(v));
        if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(v));
        if constexpr (sizeof(T) == 8) return static_cast<T>(__builtin_bswap64(v));
    }
    return v;
}

template <class T>
inline void put_le(std::byte* p, T v) {
    v = to_little(v);
    std::memcpy(p, &v, sizeof v);
}

template <class T>
inline T get_le(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return to_little(v);
}

inline void put_u8(std::byte* p, std::uint8_t v) {
    *p = std::byte{v};
}
inline void put_u16(std::byte* p, std::uint16_t v) {
    put_le(p, v);
}
inline void put_u32(std::byte* p, std::uint32_t v) {
    put_le(p, v);
}
inline void put_u64(std::byte* p, std::uint64_t v) {
    put_le(p, v);
}
inline std::uint8_t get_u8(const std::byte* p) {
    return std::to_integer<std::uint8_t>(*p);
}
inline std::uint16_t get_u16(const std::byte* p) {
    return get_le<std::uint16_t>(p);
}
inline std::uint32_t get_u32(const std::byte* p) {
    return get_le<std::uint32_t>(p);
}
inline std::uint64_t get_u64(const std::byte* p) {
    return get_le<std::uint64_t>(p);
}

}  // namespace warren::store
