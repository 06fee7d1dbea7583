// One AMQPS connection's OpenSSL state, driven over memory rather than a socket: the connection
// receives ciphertext itself (large reads), hands it in, and takes the records OpenSSL makes from
// output() to send them in one go. A BIO of our own moves the bytes, with no copy of its own.
#pragma once

#include <openssl/ssl.h>

#include <asio.hpp>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

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

private:
    friend struct TlsSessionBio;
    Status failure(int ret);

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
};

}  // namespace warren::broker::net
