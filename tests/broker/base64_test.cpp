// Base64 for the definitions log: RFC 4648's vectors, and refusal of anything not canonical.
#include <catch2/catch.hpp>

#include "broker/base64.hpp"

using warren::broker::base64_decode;
using warren::broker::base64_encode;

namespace {
std::string enc(std::string_view s) { return base64_encode(std::as_bytes(std::span(s.data(), s.size()))); }
std::string dec(std::string_view s) {
    auto b = base64_decode(s);
    REQUIRE(b);
    return std::string(reinterpret_cast<const char*>(b->data()), b->size());
}
}  // namespace

TEST_CASE("base64 round trips RFC 4648's test vectors", "[definitions]") {
    for (auto [plain, coded] : std::vector<std::pair<std::string, std::string>>{
             {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}}) {
        CHECK(enc(plain) == coded);
        CHECK(dec(coded) == plain);
    }
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    CHECK(dec(enc(all)) == all);
}

TEST_CASE("base64 refuses bad lengths, characters and padding", "[definitions]") {
    for (const char* bad : {"Zg", "Zg=", "Z===", "Zm9v=", "Zm=v", "Zm9*", "=Zm9", "Zg==Zg=="}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad));
    }
}
