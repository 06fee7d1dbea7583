// See password.hpp.
#include "broker/password.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

#include "broker/base64.hpp"

namespace warren::broker {

namespace {

constexpr std::size_t salt_size = 4;

const EVP_MD* digest_of(HashAlgorithm algorithm) {
    switch (algorithm) {
        case HashAlgorithm::Sha256:
            return EVP_sha256();
        case HashAlgorithm::Sha512:
            return EVP_sha512();
        case HashAlgorithm::Md5:
            return EVP_md5();
    }
    return EVP_sha256();
}

// hash(salt ++ password), as rabbit_password:salted_hash/3.
std::vector<std::byte> salted_digest(HashAlgorithm algorithm, std::span<const std::byte> salt,
                                     std::string_view password) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int size = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx) throw std::bad_alloc();
    const bool ok = EVP_DigestInit_ex(ctx, digest_of(algorithm), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, salt.data(), salt.size()) == 1 &&
                    EVP_DigestUpdate(ctx, password.data(), password.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, out.data(), &size) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) throw std::runtime_error("OpenSSL digest failed");
    std::vector<std::byte> digest(size);
    for (unsigned int i = 0; i < size; ++i) digest[i] = static_cast<std::byte>(out[i]);
    return digest;
}

std::size_t digest_size(HashAlgorithm algorithm) {
    return static_cast<std::size_t>(EVP_MD_get_size(digest_of(algorithm)));
}

}  // namespace

std::string_view hashing_algorithm_name(HashAlgorithm algorithm) {
    switch (algorithm) {
        case HashAlgorithm::Sha256:
            return "rabbit_password_hashing_sha256";
        case HashAlgorithm::Sha512:
            return "rabbit_password_hashing_sha512";
        case HashAlgorithm::Md5:
            return "rabbit_password_hashing_md5";
    }
    return "rabbit_password_hashing_sha256";
}

std::optional<HashAlgorithm> parse_hashing_algorithm(std::string_view name) {
    for (HashAlgorithm a : {HashAlgorithm::Sha256, HashAlgorithm::Sha512, HashAlgorithm::Md5})
        if (name == hashing_algorithm_name(a)) return a;
    return std::nullopt;
}

PasswordHash hash_password(std::string_view password, HashAlgorithm algorithm) {
    std::array<std::byte, salt_size> salt{};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    PasswordHash h;
    h.algorithm = algorithm;
    h.bytes.assign(salt.begin(), salt.end());
    auto digest = salted_digest(algorithm, salt, password);
    h.bytes.insert(h.bytes.end(), digest.begin(), digest.end());
    return h;
}

std::string encode_password_hash(const PasswordHash& hash) {
    return base64_encode(hash.bytes);
}

std::variant<PasswordHash, std::string> decode_password_hash(std::string_view base64, HashAlgorithm algorithm) {
    auto bytes = base64_decode(base64);
    if (!bytes) return std::string("is not base64");
    if (!bytes->empty() && bytes->size() != salt_size + digest_size(algorithm))
        return fmt::format("is {} bytes long; {} takes {} (a 4-byte salt and the digest)", bytes->size(),
                           hashing_algorithm_name(algorithm), salt_size + digest_size(algorithm));
    return PasswordHash{algorithm, std::move(*bytes)};
}

bool verify_password(const PasswordHash& hash, std::string_view password) {
    if (hash.bytes.size() <= salt_size) return false;
    auto salt = std::span(hash.bytes).first(salt_size);
    auto expected = std::span(hash.bytes).subspan(salt_size);
    auto digest = salted_digest(hash.algorithm, salt, password);
    return digest.size() == expected.size() && CRYPTO_memcmp(digest.data(), expected.data(), digest.size()) == 0;
}

}  // namespace warren::broker
