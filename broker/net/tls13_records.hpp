// TLS 1.3 application-data records (RFC 8446 5.2) sealed and opened without libssl, from the
// traffic secrets OpenSSL's handshake made: libssl 3.0 costs about 0.45 µs per small record in
// its record layer and provider calls (README: TLS). Small records go through libsodium (the
// least fixed cost per call), larger ones through libcrypto's EVP AEAD (the least per byte:
// libsodium 1.0.18's AES-GCM is about 3 times slower per byte than OpenSSL's VAES code).
#pragma once

#include <openssl/evp.h>
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace warren::broker::net {

class Tls13Records {
public:
    enum class Suite {
        Aes256Gcm,         // TLS_AES_256_GCM_SHA384
        ChaCha20Poly1305,  // TLS_CHACHA20_POLY1305_SHA256
    };
    static constexpr std::size_t header_size = 5;
    static constexpr std::size_t tag_size = 16;
    static constexpr std::size_t max_plaintext = 16384;
    static constexpr std::size_t max_ciphertext = max_plaintext + 256;
    static constexpr std::size_t max_secret = 48;

    // Whether libsodium does `suite` on this machine (AES-GCM needs AES-NI and PCLMUL).
    static bool available(Suite suite);
    // The secrets' length for `suite`: its hash's.
    static std::size_t secret_size(Suite suite);
    // Keys from the client's (read) and the server's (write) application traffic secrets, both
    // secret_size(suite) long; null if the key derivation fails.
    static std::unique_ptr<Tls13Records> make(Suite suite, std::span<const unsigned char> read_secret,
                                              std::span<const unsigned char> write_secret);
    ~Tls13Records();
    Tls13Records(const Tls13Records&) = delete;
    Tls13Records& operator=(const Tls13Records&) = delete;

    // Appends one record to `out`: `content` (at most max_plaintext bytes) of inner type `type`.
    // False only if libcrypto fails (out of memory).
    bool seal(std::uint8_t type, std::span<const std::byte> content, std::vector<std::byte>& out);
    // Decrypts the whole record `record` (header and a body of at least tag_size bytes, at most
    // max_ciphertext) into `into`, which takes body - tag_size bytes: the inner plaintext, padding
    // included. False if the record is not authentic; the read sequence advances only on success.
    bool open(std::span<const std::byte> record, std::byte* into);
    // The next generation of the read or the write keys (KeyUpdate, RFC 8446 7.2).
    bool update_read();
    bool update_write();

    std::uint64_t records_opened() const { return opened_; }
    // Records sealed and opened under the current keys of each direction.
    std::uint64_t write_sequence() const { return write_.sequence; }
    std::uint64_t read_sequence() const { return read_.sequence; }

private:
    struct Direction {
        crypto_aead_aes256gcm_state aes;  // AES-256-GCM's expanded key (libsodium: 16-byte aligned)
        unsigned char key[32];            // ChaCha20-Poly1305's key
        unsigned char iv[12];
        unsigned char secret[max_secret];
        std::uint64_t sequence = 0;
        EVP_CIPHER_CTX* evp = nullptr;  // the same key in libcrypto, for larger records
    };
    explicit Tls13Records(Suite suite) : suite_(suite) {}
    bool set_keys(Direction& d, std::span<const unsigned char> secret, bool encrypt);
    bool next_generation(Direction& d, bool encrypt);
    bool small(std::size_t inner) const;
    const char* digest() const;  // the suite's hash, as HKDF names it
    void nonce(const Direction& d, unsigned char* out) const;

    Suite suite_;
    Direction read_{};
    Direction write_{};
    std::uint64_t opened_ = 0;
};

}  // namespace warren::broker::net
