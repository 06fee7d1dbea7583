// CRC32C: the standard test vectors (RFC 3720 B.4), hardware and folding against table, and chaining.
#include "store/crc32c.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

namespace warren::store {
namespace {

TEST_CASE("crc32c matches the standard test vectors", "[store][crc]") {
    std::string digits = "123456789";
    CHECK(crc32c(digits.data(), digits.size()) == 0xE3069283u);
    std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
    for (int i = 0; i < 32; ++i) {
        up[i] = static_cast<unsigned char>(i);
        down[i] = static_cast<unsigned char>(31 - i);
    }
    CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);
    CHECK(crc32c(ones.data(), 32) == 0x62A8AB43u);
    CHECK(crc32c(up.data(), 32) == 0x46DD794Eu);
    CHECK(crc32c(down.data(), 32) == 0x113FDB5Cu);
    CHECK(crc32c(digits.data(), 0) == 0u);
    CHECK(crc32c_portable(digits.data(), digits.size()) == 0xE3069283u);
}

TEST_CASE("crc32c hardware and table implementations agree at every length and alignment", "[store][crc]") {
    std::mt19937 rng(7);
    // Up to 13,000 bytes: past the lengths where the hardware path runs three chains side by
    // side (384 and 6,144 bytes) and where folding takes over (256) and folds 256 bytes a
    // round, every length up to 1,100 and then one in 7.
    std::vector<unsigned char> data(13008);
    for (auto& b : data) b = static_cast<unsigned char>(rng());
    for (std::size_t offset = 0; offset < 8; ++offset) {
        for (std::size_t size = 0; size <= 13000; size += size < 1100 ? 1 : 7) {
            std::uint32_t portable = crc32c_portable(data.data() + offset, size, 0x1234);
            CHECK(crc32c(data.data() + offset, size, 0x1234) == portable);
            if (has_crc32c_hardware()) CHECK(crc32c_hardware(data.data() + offset, size, 0x1234) == portable);
            if (has_crc32c_folding()) CHECK(crc32c_folding(data.data() + offset, size, 0x1234) == portable);
        }
    }
}

TEST_CASE("crc32c chains: the crc of a ++ b continues from the crc of a", "[store][crc]") {
    std::string text = "the quick brown fox jumps over the lazy dog, repeatedly and at length";
    std::uint32_t whole = crc32c(text.data(), text.size());
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        std::uint32_t first = crc32c(text.data(), cut);
        CHECK(crc32c(text.data() + cut, text.size() - cut, first) == whole);
    }
}

}  // namespace
}  // namespace warren::store
