// CRC32C (Castagnoli), the checksum of every record the store writes. Carry-less multiplication
// (AVX-512 VPCLMULQDQ) for 256 bytes and more, the SSE4.2 crc32 instruction below that, when the
// CPU has them (detected once at run time); a slicing-by-8 table otherwise. Chaining:
// crc32c(b, crc32c(a)) == crc32c(a ++ b).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace warren::store {

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);
inline std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0) {
    return crc32c(bytes.data(), bytes.size(), crc);
}

// The implementations, for tests and the benchmark. crc32c_hardware() must only be called when
// has_crc32c_hardware() is true, crc32c_folding() only when has_crc32c_folding() is.
std::uint32_t crc32c_portable(const void* data, std::size_t size, std::uint32_t crc = 0);
std::uint32_t crc32c_hardware(const void* data, std::size_t size, std::uint32_t crc = 0);
bool has_crc32c_hardware();
std::uint32_t crc32c_folding(const void* data, std::size_t size, std::uint32_t crc = 0);
bool has_crc32c_folding();

}  // namespace warren::store
