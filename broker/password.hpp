// Password hashes as RabbitMQ stores them (rabbit_password): base64 of a 4-byte random salt
// followed by hash(salt ++ password), with the algorithm named as in definitions files
// (rabbit_password_hashing_sha256, the default; _sha512 and _md5 accepted on import), so a
// RabbitMQ definitions file imports with working passwords. OpenSSL's libcrypto does the digests.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace warren::broker {

enum class HashAlgorithm { Sha256, Sha512, Md5 };

// "rabbit_password_hashing_sha256" and so on.
std::string_view hashing_algorithm_name(HashAlgorithm algorithm);
std::optional<HashAlgorithm> parse_hashing_algorithm(std::string_view name);

struct PasswordHash {
    HashAlgorithm algorithm = HashAlgorithm::Sha256;
    std::vector<std::byte> bytes;  // salt (4 bytes) ++ digest; empty: no password, no login
    bool operator==(const PasswordHash&) const = default;
};

// A new random salt, then the digest.
PasswordHash hash_password(std::string_view password, HashAlgorithm algorithm = HashAlgorithm::Sha256);
// What definitions files hold: base64 text.
std::string encode_password_hash(const PasswordHash& hash);
// Checks the base64 and the length (4 bytes of salt and a whole digest of `algorithm`; "" is
// a user without a password). The error says what is wrong, for the caller to name the field.
std::variant<PasswordHash, std::string> decode_password_hash(std::string_view base64, HashAlgorithm algorithm);
// Constant-time comparison. A user without a password never matches.
bool verify_password(const PasswordHash& hash, std::string_view password);

}  // namespace warren::broker
