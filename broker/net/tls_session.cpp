// See tls_session.hpp. The BIO reads from the session's input span and appends to its output
// vector: OpenSSL copies records in and out of its own buffers anyway, so this is the only copy.
#include "broker/net/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace warren::broker::net {

struct TlsSessionBio {
    static TlsSession& session(BIO* bio) { return *static_cast<TlsSession*>(BIO_get_data(bio)); }

    static int read(BIO* bio, char* into, std::size_t size, std::size_t* n) {
        BIO_clear_retry_flags(bio);
        auto& in = session(bio).in_;
        if (in.empty()) {
            BIO_set_retry_read(bio);  // not the end of the stream: more may come
            *n = 0;
            return 0;
        }
        std::size_t take = std::min(size, in.size());
        std::memcpy(into, in.data(), take);
        in = in.subspan(take);
        *n = take;
        return 1;
    }

    static int write(BIO* bio, const char* from, std::size_t size, std::size_t* n) {
        BIO_clear_retry_flags(bio);
        auto& out = session(bio).out_;
        const auto* bytes = reinterpret_cast<const std::byte*>(from);
        out.insert(out.end(), bytes, bytes + size);
        *n = size;
        return 1;
    }

    static long ctrl(BIO*, int cmd, long, void*) {
        // OpenSSL flushes after each flight of handshake messages; everything else (kernel TLS,
        // pending counts, datagram controls) does not apply to this BIO.
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;
    }

    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }

    static const BIO_METHOD* method() {
        static BIO_METHOD* m = [] {
            BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "warren-tls");
            if (!meth || BIO_meth_set_read_ex(meth, read) != 1 || BIO_meth_set_write_ex(meth, write) != 1 ||
                BIO_meth_set_ctrl(meth, ctrl) != 1 || BIO_meth_set_create(meth, create) != 1)
                throw std::runtime_error("cannot make OpenSSL's BIO method for TLS connections");
            return meth;
        }();
        return m;
    }
};

namespace {
// Where an SSL keeps its TlsSession, for the keylog callback.
int session_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}
}  // namespace

TlsSession::TlsSession(const TlsContextPtr& context, std::string& verify_failure)
    : ssl_(SSL_new(context->native_handle())) {
    if (!ssl_) throw std::runtime_error("cannot make an OpenSSL session (out of memory?)");
    BIO* bio = BIO_new(TlsSessionBio::method());
    if (!bio) throw std::runtime_error("cannot make an OpenSSL BIO (out of memory?)");
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_.get(), bio, bio);  // one BIO both ways; the SSL owns it (one reference)
    SSL_set_accept_state(ssl_.get());
    // A connection's record buffers are kept rather than freed whenever they are empty, which
    // for a busy connection would be an allocation and a free per record: about 34 KiB each.
    SSL_clear_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS);
    record_verify_failure(ssl_.get(), verify_failure);
    SSL_set_ex_data(ssl_.get(), session_index(), this);
}

TlsSession::~TlsSession() {
    OPENSSL_cleanse(&secrets_, sizeof secrets_);
    if (!plain_.empty()) OPENSSL_cleanse(plain_.data(), plain_.size());
}

void TlsSession::keep_input() {
    if (in_.empty()) {
        kept_ = {};
        input_is_kept_ = false;
    } else if (input_is_kept_) {
        kept_.erase(kept_.begin(), kept_.begin() + (in_.data() - kept_.data()));
    } else {
        kept_.assign(in_.begin(), in_.end());
        input_is_kept_ = true;
    }
    in_ = kept_;
}

bool TlsSession::has_buffered() const {
    if (records_) return !in_.empty() || plain_at_ < plain_.size();
    // What OpenSSL holds (the rest of a record decrypted) counts unless the last read found only
    // part of a record, which new input must complete. (Reading ahead, one BIO call for many
    // records instead of two per record, measured no better.)
    return !in_.empty() || (!wants_input_ && SSL_has_pending(ssl_.get()) == 1);
}

void TlsSession::start_reads() {
    ERR_clear_error();
}

TlsSession::Status TlsSession::handshake() {
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_.get());
    if (ret != 1) return failure(ret);
    hand_over();
    return Status::Ok;
}

TlsSession::Status TlsSession::read(std::span<std::byte> into, std::size_t& n) {
    if (records_) return read_tls13(into, n);
    int ret = SSL_read(ssl_.get(), into.data(), static_cast<int>(std::min<std::size_t>(into.size(), INT_MAX)));
    if (ret > 0) {
        n = static_cast<std::size_t>(ret);
        wants_input_ = false;
        return Status::Ok;
    }
    Status status = failure(ret);
    wants_input_ = status == Status::WantRead;
    return status;
}

bool TlsSession::write(std::span<const std::byte> plain) {
    if (records_) return write_tls13(plain);
    ERR_clear_error();
    while (!plain.empty()) {
        int len = static_cast<int>(std::min<std::size_t>(plain.size(), INT_MAX));
        int ret = SSL_write(ssl_.get(), plain.data(), len);
        if (ret <= 0) {
            failure(ret);
            return false;
        }
        plain = plain.subspan(static_cast<std::size_t>(ret));
    }
    return true;
}

void TlsSession::shutdown() {
    if (records_) return shutdown_tls13();
    ERR_clear_error();
    // 0: our close_notify is out and the peer's has not come; the connection reads on for it.
    if (SSL_shutdown(ssl_.get()) < 0) ERR_clear_error();
}

void TlsSession::output_sent(std::size_t n) {
    out_sent_ += n;
    if (out_sent_ == out_.size()) {
        out_.clear();
        out_sent_ = 0;
    }
}

TlsSession::Status TlsSession::failure(int ret) {
    switch (SSL_get_error(ssl_.get(), ret)) {
        case SSL_ERROR_WANT_READ:
            return Status::WantRead;
        case SSL_ERROR_ZERO_RETURN:
            return Status::Closed;
        default:
            break;
    }
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    error_ = code != 0 ? asio::error_code(static_cast<int>(code), asio::error::get_ssl_category())
                       : asio::error_code(asio::ssl::error::unspecified_system_error);
    return Status::Failed;
}

void TlsSession::keep_traffic_secret(const SSL* ssl, const char* line) {
    auto* session = static_cast<TlsSession*>(SSL_get_ex_data(ssl, session_index()));
    if (!session) return;  // an HTTPS connection's
    std::string_view text(line);
    unsigned char* into = nullptr;
    std::size_t* size = nullptr;
    auto& s = session->secrets_;
    if (text.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) {
        into = s.client;
        size = &s.client_size;
    } else if (text.starts_with("SERVER_TRAFFIC_SECRET_0 ")) {
        into = s.server;
        size = &s.server_size;
    } else {
        return;
    }
    // "<label> <client random, hex> <secret, hex>"
    std::size_t at = text.rfind(' ');
    std::string_view hex = text.substr(at + 1);
    *size = 0;
    if (hex.size() % 2 != 0 || hex.size() / 2 > Tls13Records::max_secret) return;
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = digit(hex[i]), lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) return;
        into[i / 2] = static_cast<unsigned char>(hi * 16 + lo);
    }
    *size = hex.size() / 2;
}

}  // namespace warren::broker::net
