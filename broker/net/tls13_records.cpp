// See tls13_records.hpp. Keys and IVs come from HKDF-Expand-Label (RFC 8446 7.1, 7.3) through
// OpenSSL's HKDF, once per connection and per key update.
#include "broker/net/tls13_records.hpp"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstring>
#include <string_view>

namespace warren::broker::net {

namespace {

// Where libcrypto's AEAD gets cheaper than libsodium's, in inner plaintext bytes (warren-tls-bench
// and a seal+open loop of each: AES-256-GCM crosses at about 160 B, ChaCha20-Poly1305 at 400 B).
constexpr std::size_t sodium_aes_limit = 160;
constexpr std::size_t sodium_chacha_limit = 400;

EVP_CIPHER* evp_cipher(Tls13Records::Suite suite) {
    static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
    return suite == Tls13Records::Suite::Aes256Gcm ? aes : chacha;
}

bool sodium_ready() {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

// HKDF-Expand-Label(secret, label, "", out.size()) with the suite's hash.
bool expand_label(const char* digest, std::span<const unsigned char> secret, std::string_view label,
                  std::span<unsigned char> out) {
    static EVP_KDF* const hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (!hkdf || out.size() > 255 || label.size() > 249) return false;
    // struct { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255>; }
    unsigned char info[2 + 1 + 255 + 1];
    std::size_t at = 0;
    info[at++] = 0;
    info[at++] = static_cast<unsigned char>(out.size());
    info[at++] = static_cast<unsigned char>(6 + label.size());
    std::memcpy(info + at, "tls13 ", 6);
    at += 6;
    std::memcpy(info + at, label.data(), label.size());
    at += label.size();
    info[at++] = 0;  // an empty context
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(hkdf);
    if (!ctx) return false;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret.data()), secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, at),
        OSSL_PARAM_construct_end(),
    };
    bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok;
}

}  // namespace

bool Tls13Records::available(Suite suite) {
    if (!sodium_ready()) return false;
    if (!evp_cipher(suite)) return false;
    return suite == Suite::ChaCha20Poly1305 || crypto_aead_aes256gcm_is_available() == 1;
}

std::size_t Tls13Records::secret_size(Suite suite) {
    return suite == Suite::Aes256Gcm ? 48 : 32;
}

std::unique_ptr<Tls13Records> Tls13Records::make(Suite suite, std::span<const unsigned char> read_secret,
                                                 std::span<const unsigned char> write_secret) {
    if (!available(suite) || read_secret.size() != secret_size(suite) || write_secret.size() != secret_size(suite))
        return nullptr;
    std::unique_ptr<Tls13Records> records(new Tls13Records(suite));
    if (!records->set_keys(records->read_, read_secret, false) ||
        !records->set_keys(records->write_, write_secret, true))
        return nullptr;
    return records;
}

Tls13Records::~Tls13Records() {
    EVP_CIPHER_CTX_free(read_.evp);  // cleanses
    EVP_CIPHER_CTX_free(write_.evp);
    sodium_memzero(&read_, sizeof read_);
    sodium_memzero(&write_, sizeof write_);
}

const char* Tls13Records::digest() const {
    return suite_ == Suite::Aes256Gcm ? "SHA384" : "SHA256";
}

bool Tls13Records::set_keys(Direction& d, std::span<const unsigned char> secret, bool encrypt) {
    const char* digest = this->digest();
    if (secret.data() != d.secret) std::memcpy(d.secret, secret.data(), secret.size());
    if (!expand_label(digest, secret, "key", d.key) || !expand_label(digest, secret, "iv", d.iv)) return false;
    if (!d.evp) d.evp = EVP_CIPHER_CTX_new();
    if (!d.evp || EVP_CipherInit_ex2(d.evp, evp_cipher(suite_), d.key, nullptr, encrypt ? 1 : 0, nullptr) != 1)
        return false;
    if (suite_ == Suite::Aes256Gcm) {
        crypto_aead_aes256gcm_beforenm(&d.aes, d.key);
        sodium_memzero(d.key, sizeof d.key);  // the expanded states are what is used
    }
    d.sequence = 0;
    return true;
}

bool Tls13Records::next_generation(Direction& d, bool encrypt) {
    const std::size_t size = secret_size(suite_);
    unsigned char next[max_secret];
    bool ok = expand_label(digest(), {d.secret, size}, "traffic upd", {next, size});
    if (ok) {
        std::memcpy(d.secret, next, size);
        ok = set_keys(d, {d.secret, size}, encrypt);
    }
    sodium_memzero(next, sizeof next);
    return ok;
}

bool Tls13Records::small(std::size_t inner) const {
    return inner <= (suite_ == Suite::Aes256Gcm ? sodium_aes_limit : sodium_chacha_limit);
}

bool Tls13Records::update_read() {
    return next_generation(read_, false);
}

bool Tls13Records::update_write() {
    return next_generation(write_, true);
}

// The IV with the 64-bit sequence number, big-endian and padded left, XORed into it (5.3).
void Tls13Records::nonce(const Direction& d, unsigned char* out) const {
    std::memcpy(out, d.iv, sizeof d.iv);
    for (int i = 0; i < 8; ++i) out[11 - i] ^= static_cast<unsigned char>(d.sequence >> (8 * i));
}

bool Tls13Records::seal(std::uint8_t type, std::span<const std::byte> content, std::vector<std::byte>& out) {
    const std::size_t inner = content.size() + 1;
    const std::size_t body = inner + tag_size;
    const std::size_t at = out.size();
    out.resize(at + header_size + body);
    auto* header = reinterpret_cast<unsigned char*>(out.data() + at);
    header[0] = 23;  // application_data, whatever is inside
    header[1] = 3;
    header[2] = 3;
    header[3] = static_cast<unsigned char>(body >> 8);
    header[4] = static_cast<unsigned char>(body & 0xff);
    unsigned char* text = header + header_size;
    if (!content.empty()) std::memcpy(text, content.data(), content.size());
    text[content.size()] = type;
    unsigned char n[12];
    nonce(write_, n);
    // In place: both libraries read each block before writing it.
    if (!small(inner)) {
        int len = 0, final_len = 0;
        if (EVP_EncryptInit_ex2(write_.evp, nullptr, nullptr, n, nullptr) != 1 ||
            EVP_EncryptUpdate(write_.evp, nullptr, &len, header, header_size) != 1 ||
            EVP_EncryptUpdate(write_.evp, text, &len, text, static_cast<int>(inner)) != 1 ||
            EVP_EncryptFinal_ex(write_.evp, text + len, &final_len) != 1 ||
            EVP_CIPHER_CTX_ctrl(write_.evp, EVP_CTRL_AEAD_GET_TAG, tag_size, text + inner) != 1) {
            out.resize(at);
            return false;
        }
    } else if (suite_ == Suite::Aes256Gcm) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(text, text + inner, nullptr, text, inner, header, header_size,
                                                       nullptr, n, &write_.aes);
    } else {
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(text, text + inner, nullptr, text, inner, header,
                                                           header_size, nullptr, n, write_.key);
    }
    ++write_.sequence;
    return true;
}

bool Tls13Records::open(std::span<const std::byte> record, std::byte* into) {
    if (record.size() < header_size + tag_size || record.size() > header_size + max_ciphertext) return false;
    const auto* header = reinterpret_cast<const unsigned char*>(record.data());
    const unsigned char* body = header + header_size;
    const std::size_t inner = record.size() - header_size - tag_size;
    unsigned char n[12];
    nonce(read_, n);
    auto* to = reinterpret_cast<unsigned char*>(into);
    bool ok = false;
    if (!small(inner)) {
        int len = 0, final_len = 0;
        ok = EVP_DecryptInit_ex2(read_.evp, nullptr, nullptr, n, nullptr) == 1 &&
             EVP_DecryptUpdate(read_.evp, nullptr, &len, header, header_size) == 1 &&
             EVP_DecryptUpdate(read_.evp, to, &len, body, static_cast<int>(inner)) == 1 &&
             EVP_CIPHER_CTX_ctrl(read_.evp, EVP_CTRL_AEAD_SET_TAG, tag_size,
                                 const_cast<unsigned char*>(body + inner)) == 1 &&
             EVP_DecryptFinal_ex(read_.evp, to + len, &final_len) == 1;
    } else if (suite_ == Suite::Aes256Gcm) {
        ok = crypto_aead_aes256gcm_decrypt_detached_afternm(to, nullptr, body, inner, body + inner, header, header_size,
                                                            n, &read_.aes) == 0;
    } else {
        ok = crypto_aead_chacha20poly1305_ietf_decrypt_detached(to, nullptr, body, inner, body + inner, header,
                                                                header_size, n, read_.key) == 0;
    }
    if (!ok) return false;
    ++read_.sequence;
    ++opened_;
    return true;
}

}  // namespace warren::broker::net
