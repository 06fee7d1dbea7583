// CRC32C: reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF.
#include "store/crc32c.hpp"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define WARREN_STORE_X86 1
#endif

namespace warren::store {

namespace {

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
    Tables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
        for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    return t;
}

constexpr Tables tables = make_tables();

std::uint64_t load_le64(const unsigned char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}

using Impl = std::uint32_t (*)(const void*, std::size_t, std::uint32_t);

Impl choose() {
    return has_crc32c_hardware() ? crc32c_hardware : crc32c_portable;
}

}  // namespace

std::uint32_t crc32c_portable(const void* data, std::size_t size, std::uint32_t crc) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t c = ~crc;
    while (size >= 8) {
        std::uint64_t v = load_le64(p) ^ c;
        c = tables[7][v & 0xFF] ^ tables[6][(v >> 8) & 0xFF] ^ tables[5][(v >> 16) & 0xFF] ^
            tables[4][(v >> 24) & 0xFF] ^ tables[3][(v >> 32) & 0xFF] ^ tables[2][(v >> 40) & 0xFF] ^
            tables[1][(v >> 48) & 0xFF] ^ tables[0][v >> 56];
        p += 8;
        size -= 8;
    }
    while (size--) c = (c >> 8) ^ tables[0][(c ^ *p++) & 0xFF];
    return ~c;
}

#if defined(WARREN_STORE_X86)

__attribute__((target("sse4.2"))) std::uint32_t crc32c_hardware(const void* data, std::size_t size, std::uint32_t crc) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t c = ~crc;
    while (size && (reinterpret_cast<std::uintptr_t>(p) & 7)) {
        c = _mm_crc32_u8(c, *p++);
        --size;
    }
#if defined(__x86_64__)
    std::uint64_t c64 = c;
    while (size >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        size -= 8;
    }
    c = static_cast<std::uint32_t>(c64);
#endif
    while (size--) c = _mm_crc32_u8(c, *p++);
    return ~c;
}

bool has_crc32c_hardware() {
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}

#else

std::uint32_t crc32c_hardware(const void* data, std::size_t size, std::uint32_t crc) {
    return crc32c_portable(data, size, crc);
}

bool has_crc32c_hardware() {
    return false;
}

#endif

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc) {
    static const Impl impl = choose();
    return impl(data, size, crc);
}

}  // namespace warren::store
