// CRC32C: reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF.
#include "store/crc32c.hpp"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
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
    if (has_crc32c_folding()) return crc32c_folding;
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
    // No byte steps up to an 8-byte boundary first: unaligned loads cost nothing here, and those
    // dependent steps were a fifth of the time of a 100-byte record (a 16 B message's).
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
    if (size >= 4) {
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        size -= 4;
    }
    while (size--) c = _mm_crc32_u8(c, *p++);
    return ~c;
}

bool has_crc32c_hardware() {
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}

#if defined(__x86_64__)

namespace {

// Carry-less multiplication folding (Intel, "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ"): the input is taken 16 bytes at a time as a polynomial over GF(2) and its
// remainder modulo the CRC polynomial P is all that matters, so a 16-byte block S followed by
// D bits of input may be replaced by S * x^D mod P, which is two carry-less products of S's
// halves by constants. VPCLMULQDQ does four of those per instruction on a 64-byte register,
// and four registers side by side keep the multiplier busy: 1 KiB (a stream record) takes a
// third of the time the crc32 instruction's three chains take. The last 16 bytes left by the
// folding are then a message whose CRC (from 0) is the CRC of everything folded, which the
// crc32 instruction finishes, with the tail.

// x^n mod P, with bit j standing for x^j (P = 0x1EDC6F41, its x^32 implied).
constexpr std::uint32_t x_pow_mod(unsigned n) {
    std::uint32_t r = 1;
    for (unsigned i = 0; i < n; ++i) r = (r & 0x80000000u) ? (r << 1) ^ 0x1EDC6F41u : r << 1;
    return r;
}

constexpr std::uint32_t reflect32(std::uint32_t v) {
    std::uint32_t r = 0;
    for (int i = 0; i < 32; ++i)
        if ((v >> i) & 1) r |= 1u << (31 - i);
    return r;
}

// CRC32C is bit-reflected: the first byte in memory holds the highest powers, bit 0 of a
// 64-bit lane stands for x^63. A carry-less product of two such lanes comes out one power
// short (its 127 bits sit in the low end of 128), hence x^(n-1) for a multiplier x^n.
constexpr std::uint64_t fold_constant(unsigned n) {
    return std::uint64_t{reflect32(x_pow_mod(n - 1))} << 32;
}

// Moving a 16-byte block D bits on: its first 8 bytes are the higher half (x^(D+64)).
struct FoldPair {
    std::uint64_t first, second;
};
constexpr FoldPair fold_pair(unsigned bits) {
    return {fold_constant(bits + 64), fold_constant(bits)};
}
constexpr FoldPair fold_2048 = fold_pair(2048), fold_512 = fold_pair(512), fold_384 = fold_pair(384),
                   fold_256 = fold_pair(256), fold_128 = fold_pair(128);

#define WARREN_FOLD_TARGET __attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq")))

WARREN_FOLD_TARGET inline __m128i load_pair(const FoldPair& k) {
    return _mm_set_epi64x(static_cast<long long>(k.second), static_cast<long long>(k.first));
}

WARREN_FOLD_TARGET inline __m512i broadcast_pair(const FoldPair& k) {
    const auto a = static_cast<long long>(k.first), b = static_cast<long long>(k.second);
    return _mm512_set_epi64(b, a, b, a, b, a, b, a);
}

WARREN_FOLD_TARGET inline __m128i fold16(__m128i s, __m128i k, __m128i next) {
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(s, k, 0x00), _mm_clmulepi64_si128(s, k, 0x11)), next);
}

WARREN_FOLD_TARGET inline __m512i fold64(__m512i s, __m512i k, __m512i next) {
    // 0x96: a ^ b ^ c
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(s, k, 0x00), _mm512_clmulepi64_epi128(s, k, 0x11), next,
                                     0x96);
}

}  // namespace

WARREN_FOLD_TARGET std::uint32_t crc32c_folding(const void* data, std::size_t size, std::uint32_t crc) {
    if (size < 256) return crc32c_hardware(data, size, crc);
    const auto* p = static_cast<const unsigned char*>(data);
    const __m512i k2048 = broadcast_pair(fold_2048), k512 = broadcast_pair(fold_512);
    __m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64), z2 = _mm512_loadu_si512(p + 128),
            z3 = _mm512_loadu_si512(p + 192);
    // The initial register goes into the first four bytes, as the crc32 instruction takes it.
    z0 = _mm512_xor_si512(z0, _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(~crc))));
    p += 256;
    size -= 256;
    while (size >= 256) {
        z0 = fold64(z0, k2048, _mm512_loadu_si512(p));
        z1 = fold64(z1, k2048, _mm512_loadu_si512(p + 64));
        z2 = fold64(z2, k2048, _mm512_loadu_si512(p + 128));
        z3 = fold64(z3, k2048, _mm512_loadu_si512(p + 192));
        p += 256;
        size -= 256;
    }
    z0 = fold64(fold64(fold64(z0, k512, z1), k512, z2), k512, z3);
    while (size >= 64) {
        z0 = fold64(z0, k512, _mm512_loadu_si512(p));
        p += 64;
        size -= 64;
    }
    // (Through memory: GCC 12's lane extracts warn of an uninitialised operand.)
    alignas(64) __m128i lanes[4];
    _mm512_store_si512(lanes, z0);
    __m128i s = fold16(lanes[0], load_pair(fold_384),
                       fold16(lanes[1], load_pair(fold_256), fold16(lanes[2], load_pair(fold_128), lanes[3])));
    const __m128i k128 = load_pair(fold_128);
    while (size >= 16) {
        s = fold16(s, k128, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        p += 16;
        size -= 16;
    }
    std::uint64_t c = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(s)));
    c = _mm_crc32_u64(c, static_cast<std::uint64_t>(_mm_extract_epi64(s, 1)));
    // crc32c_hardware takes and returns the register inverted.
    return crc32c_hardware(p, size, ~static_cast<std::uint32_t>(c));
}

bool has_crc32c_folding() {
    static const bool has = has_crc32c_hardware() && __builtin_cpu_supports("pclmul") &&
                            __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq");
    return has;
}

#else

std::uint32_t crc32c_folding(const void* data, std::size_t size, std::uint32_t crc) {
    return crc32c_hardware(data, size, crc);
}

bool has_crc32c_folding() {
    return false;
}

#endif

#else

std::uint32_t crc32c_hardware(const void* data, std::size_t size, std::uint32_t crc) {
    return crc32c_portable(data, size, crc);
}

bool has_crc32c_hardware() {
    return false;
}

std::uint32_t crc32c_folding(const void* data, std::size_t size, std::uint32_t crc) {
    return crc32c_portable(data, size, crc);
}

bool has_crc32c_folding() {
    return false;
}

#endif

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc) {
    static const Impl impl = choose();
    return impl(data, size, crc);
}

}  // namespace warren::store
