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

namespace {

// The crc32 instruction takes 3 cycles and can start one a cycle, so one dependent chain of
// them runs at a third of what the CPU can do. For long inputs three chains run side by side
// over three adjacent blocks and are joined afterwards: the CRC register is linear over GF(2),
// so the register after block0 ++ block1 is shift(register after block0) ^ (register of block1
// started from 0), where shift() appends block-size zero bytes. Recovery checks every record
// (about 1 KiB each) and spent a third of its time here with one chain.
struct ShiftTable {
    std::array<std::array<std::uint32_t, 256>, 4> t;
};

// Appends `bytes` zero bytes to every one-byte-lane basis register, with the instruction itself.
__attribute__((target("sse4.2"))) ShiftTable make_shift(std::size_t bytes) {
    ShiftTable s{};
    for (int lane = 0; lane < 4; ++lane)
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint64_t c = std::uint64_t{i} << (8 * lane);
            for (std::size_t k = 0; k < bytes / 8; ++k) c = _mm_crc32_u64(c, 0);
            s.t[lane][i] = static_cast<std::uint32_t>(c);
        }
    return s;
}

std::uint32_t shift(const ShiftTable& s, std::uint32_t c) {
    return s.t[0][c & 0xFF] ^ s.t[1][(c >> 8) & 0xFF] ^ s.t[2][(c >> 16) & 0xFF] ^ s.t[3][c >> 24];
}

#if defined(__x86_64__)
constexpr std::size_t long_block = 2048, short_block = 128;

// Three chains over blocks of `block` bytes, as long as three fit.
__attribute__((target("sse4.2"))) std::uint64_t three_chains(std::uint64_t c0, const unsigned char*& p,
                                                               std::size_t& size, std::size_t block,
                                                               const ShiftTable& s) {
    while (size >= 3 * block) {
        std::uint64_t c1 = 0, c2 = 0;
        for (std::size_t i = 0; i < block; i += 8) {
            std::uint64_t v0, v1, v2;
            std::memcpy(&v0, p + i, 8);
            std::memcpy(&v1, p + block + i, 8);
            std::memcpy(&v2, p + 2 * block + i, 8);
            c0 = _mm_crc32_u64(c0, v0);
            c1 = _mm_crc32_u64(c1, v1);
            c2 = _mm_crc32_u64(c2, v2);
        }
        c0 = shift(s, static_cast<std::uint32_t>(c0)) ^ c1;
        c0 = shift(s, static_cast<std::uint32_t>(c0)) ^ c2;
        p += 3 * block;
        size -= 3 * block;
    }
    return c0;
}
#endif

}  // namespace

__attribute__((target("sse4.2"))) std::uint32_t crc32c_hardware(const void* data, std::size_t size, std::uint32_t crc) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t c = ~crc;
    while (size && (reinterpret_cast<std::uintptr_t>(p) & 7)) {
        c = _mm_crc32_u8(c, *p++);
        --size;
    }
#if defined(__x86_64__)
    std::uint64_t c64 = c;
    if (size >= 3 * short_block) {
        static const ShiftTable long_shift = make_shift(long_block), short_shift = make_shift(short_block);
        c64 = three_chains(c64, p, size, long_block, long_shift);
        c64 = three_chains(c64, p, size, short_block, short_shift);
    }
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
