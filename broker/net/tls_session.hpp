// One AMQPS connection's TLS state, driven over memory rather than a socket: the connection
// receives ciphertext itself (large reads), hands it in, and takes the records made from output()
// to send them in one go. OpenSSL does the handshake through a BIO of our own (no copy of its
// own); a TLS 1.3 connection with AES-256-GCM or ChaCha20-Poly1305 then has its records sealed
// and opened by Tls13Records (no libssl), any other by OpenSSL to the end.
#pragma once

#include <openssl/ssl.h>

#include <asio.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "broker/net/tls13_records.hpp"
#include "broker/net/tls_context.hpp"

namespace warren::broker::net {

class TlsSession {
public:
    enum class Status {
        Ok,        // done (handshake), or bytes were read
        WantRead,  // the input is used up in the middle of a record (or of the handshake)
        Closed,    // the peer's close_notify
        Failed,    // a TLS error: error() says which
    };

    // A server session. `verify_failure` receives why a client certificate was refused; it must
    // outlive the session.
    TlsSession(const TlsContextPtr& context, std::string& verify_failure);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Ciphertext to read from: the caller's buffer, valid until keep_input() or the next
    // set_input(). Calls only with no input left (has_input() false).
    void set_input(std::span<const std::byte> in) { in_ = in; }
    bool has_input() const { return !in_.empty(); }
    // Copies the input not read yet (the reader stopped before the end) into the session, so
    // that the caller's buffer can be reused; reading later continues from there.
    void keep_input();
    // Whether a read could make progress without new input: kept ciphertext, or plaintext
    // OpenSSL decrypted but did not hand out yet.
    bool has_buffered() const;

    // Whether the records are Tls13Records' since the handshake, rather than OpenSSL's.
    bool uses_record_layer() const { return records_ != nullptr; }
    // Records that layer opened (tests and benchmarks check the path they measure).
    std::uint64_t records_opened() const { return records_ ? records_->records_opened() : 0; }
    // Records under one key before that layer changes it (KeyUpdate, RFC 8446 5.5: AES-GCM keys
    // are good for about 2^24.5 full-size records): our write keys, and the client's, which it
    // is asked to change. Tests set fewer.
    static constexpr std::uint64_t default_key_update_interval = std::uint64_t{1} << 24;
    void set_key_update_interval(std::uint64_t records) { key_update_interval_ = records; }
    std::uint64_t key_updates_sent() const { return key_updates_sent_; }

    // Before a series of read() calls: OpenSSL reports a failure through the thread's error
    // queue, which must be empty first (emptying it before every record would cost).
    static void start_reads();

    Status handshake();
    // Decrypts into `into` (at most one record's data); `n` is set when the status is Ok.
    Status read(std::span<std::byte> into, std::size_t& n);
    // Encrypts all of `plain` into output() (records of at most 16 KiB); false on a TLS error.
    bool write(std::span<const std::byte> plain);
    // Appends our close_notify to output().
    void shutdown();

    // Records made and not sent yet.
    std::span<const std::byte> output() const { return std::span(out_).subspan(out_sent_); }
    bool has_output() const { return out_sent_ < out_.size(); }
    void output_sent(std::size_t n);

    // Why the last call failed, as Asio names OpenSSL's errors (describe_tls_error).
    const asio::error_code& error() const { return error_; }
    SSL* native_handle() const { return ssl_.get(); }

    // Given to SSL_CTX_set_keylog_callback (make_tls_context): keeps a session's application
    // traffic secrets for the handover to Tls13Records. Other lines, other SSLs: ignored.
    static void keep_traffic_secret(const SSL* ssl, const char* line);

private:
    friend struct TlsSessionBio;
    Status failure(int ret);
    // After the handshake: Tls13Records takes over if the version, the suite and OpenSSL's state
    // allow it (tls_session_tls13.cpp).
    void hand_over();
    Status read_tls13(std::span<std::byte> into, std::size_t& n);
    bool write_tls13(std::span<const std::byte> plain);
    void shutdown_tls13();
    Status next_record(std::span<const std::byte>& record);
    Status check_header(const std::byte* header, std::size_t& length);
    bool on_alert(std::span<const std::byte> content, Status& status);
    bool on_handshake_message(std::span<const std::byte> content, Status& status);
    Status fatal(std::uint8_t alert, int reason);
    bool update_keys_if_due();
    bool send_key_update(bool request);
    Status hand_out(std::span<std::byte> into, std::size_t& n);

    // The traffic secrets from the keylog callback, until the handover (then wiped).
    struct Secrets {
        unsigned char client[Tls13Records::max_secret];
        unsigned char server[Tls13Records::max_secret];
        std::size_t client_size = 0;
        std::size_t server_size = 0;
    };

    struct SslFree {
        void operator()(SSL* ssl) const { SSL_free(ssl); }
    };
    std::unique_ptr<SSL, SslFree> ssl_;
    std::span<const std::byte> in_;
    std::vector<std::byte> kept_;  // input kept by keep_input(); usually empty
    bool input_is_kept_ = false;
    bool wants_input_ = false;  // the last read() needed more input
    std::vector<std::byte> out_;
    std::size_t out_sent_ = 0;
    asio::error_code error_;

    Secrets secrets_{};
    std::unique_ptr<Tls13Records> records_;  // null: OpenSSL's records
    std::vector<std::byte> partial_;         // a record cut across inputs, as far as it came
    std::vector<std::byte> plain_;           // a record's data opened but not handed out yet
    std::size_t plain_at_ = 0;
    std::vector<std::byte> handshake_;  // a post-handshake message cut across records
    Status ended_ = Status::Ok;         // Closed or Failed once the record layer saw the end
    bool close_sent_ = false;
    std::uint64_t key_update_interval_ = default_key_update_interval;
    bool key_update_asked_ = false;  // our KeyUpdate asked the client to change its keys; not done yet
    std::uint64_t key_updates_sent_ = 0;
};

}  // namespace warren::broker::net
