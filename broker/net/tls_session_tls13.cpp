// TlsSession after a TLS 1.3 handshake with AES-256-GCM or ChaCha20-Poly1305: the handover from
// OpenSSL to Tls13Records and what RFC 8446 asks of a record reader past the handshake (alerts,
// KeyUpdate, lengths, padding), with the alerts OpenSSL would send and its error codes.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include <algorithm>
#include <cstring>

#include "broker/net/tls_session.hpp"

namespace warren::broker::net {

namespace {
constexpr std::uint8_t type_alert = 21;
constexpr std::uint8_t type_handshake = 22;
constexpr std::uint8_t type_application_data = 23;
constexpr std::uint8_t handshake_key_update = 24;

asio::error_code ssl_error(int reason) {
    return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), asio::error::get_ssl_category()};
}
}  // namespace

void TlsSession::hand_over() {
    SSL* ssl = ssl_.get();
    Tls13Records::Suite suite{};
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    const std::uint32_t id = cipher ? SSL_CIPHER_get_id(cipher) : 0;
    bool eligible = SSL_version(ssl) == TLS1_3_VERSION;
    if (id == TLS1_3_CK_AES_256_GCM_SHA384)
        suite = Tls13Records::Suite::Aes256Gcm;
    else if (id == TLS1_3_CK_CHACHA20_POLY1305_SHA256)
        suite = Tls13Records::Suite::ChaCha20Poly1305;
    else
        eligible = false;
    // OpenSSL must have written nothing under the application keys (no session tickets: write
    // sequence 0) and read nothing past the client's Finished (read sequence 0; what follows it
    // is still in in_).
    const std::size_t size = eligible ? Tls13Records::secret_size(suite) : 0;
    eligible = eligible && SSL_get_num_tickets(ssl) == 0 && SSL_get_read_ahead(ssl) == 0 && SSL_has_pending(ssl) == 0 &&
               secrets_.client_size == size && secrets_.server_size == size;
    if (eligible)
        records_ =
            Tls13Records::make(suite, {secrets_.client, secrets_.client_size}, {secrets_.server, secrets_.server_size});
    // OpenSSL's record buffers (about 34 KiB) are not needed any more.
    if (records_) SSL_free_buffers(ssl);
    OPENSSL_cleanse(&secrets_, sizeof secrets_);
    secrets_ = {};
    wants_input_ = false;
}

// Hands out what is left of the record in plain_.
TlsSession::Status TlsSession::hand_out(std::span<std::byte> into, std::size_t& n) {
    n = std::min(into.size(), plain_.size() - plain_at_);
    std::memcpy(into.data(), plain_.data() + plain_at_, n);
    plain_at_ += n;
    if (plain_at_ == plain_.size()) {
        plain_.clear();
        plain_at_ = 0;
    }
    return Status::Ok;
}

// Whether a record header is acceptable past the handshake; `length` is its body's.
TlsSession::Status TlsSession::check_header(const std::byte* header, std::size_t& length) {
    length = (std::to_integer<std::size_t>(header[3]) << 8) | std::to_integer<std::size_t>(header[4]);
    // Past the handshake everything is an encrypted application_data record (5.1, 5.2); the
    // legacy version is to be ignored.
    if (std::to_integer<std::uint8_t>(header[0]) != type_application_data)
        return fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_RECORD);
    if (length > Tls13Records::max_ciphertext) return fatal(SSL_AD_RECORD_OVERFLOW, SSL_R_ENCRYPTED_LENGTH_TOO_LONG);
    if (length < Tls13Records::tag_size) return fatal(SSL_AD_BAD_RECORD_MAC, SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
    return Status::Ok;
}

// The next whole record: in in_, or assembled in partial_ when inputs cut it. WantRead leaves
// in_ empty (what there was is in partial_), as OpenSSL's records leave it.
TlsSession::Status TlsSession::next_record(std::span<const std::byte>& record) {
    constexpr std::size_t header = Tls13Records::header_size;
    std::size_t length = 0;
    if (partial_.empty() && in_.size() >= header) {
        if (Status status = check_header(in_.data(), length); status != Status::Ok) return status;
        if (in_.size() >= header + length) {
            record = in_.first(header + length);
            in_ = in_.subspan(header + length);
            return Status::Ok;
        }
    }
    auto take = [this](std::size_t want) {
        std::size_t n = std::min(want, in_.size());
        partial_.insert(partial_.end(), in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(n));
        in_ = in_.subspan(n);
    };
    if (partial_.size() < header) take(header - partial_.size());
    if (partial_.size() < header) return Status::WantRead;
    if (Status status = check_header(partial_.data(), length); status != Status::Ok) return status;
    take(header + length - partial_.size());
    if (partial_.size() < header + length) return Status::WantRead;
    record = partial_;
    return Status::Ok;
}

TlsSession::Status TlsSession::read_tls13(std::span<std::byte> into, std::size_t& n) {
    if (ended_ != Status::Ok) return ended_;
    if (into.empty()) return Status::WantRead;
    if (plain_at_ < plain_.size()) return hand_out(into, n);
    while (true) {
        std::span<const std::byte> record;
        if (Status status = next_record(record); status != Status::Ok) return status;
        const std::size_t length = record.size() - Tls13Records::header_size;
        const std::size_t inner = length - Tls13Records::tag_size;
        if (inner > Tls13Records::max_plaintext + 1) return fatal(SSL_AD_RECORD_OVERFLOW, SSL_R_DATA_LENGTH_TOO_LONG);
        // Straight into the caller's space when the record fits, else into plain_ to be handed
        // out in pieces.
        const bool direct = inner <= into.size();
        if (!direct) plain_.resize(inner);
        std::byte* to = direct ? into.data() : plain_.data();
        const bool opened = records_->open(record, to);
        partial_.clear();
        if (!opened) {
            plain_.clear();
            return fatal(SSL_AD_BAD_RECORD_MAC, SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
        }
        if (!update_keys_if_due()) {
            plain_.clear();
            return fatal(SSL_AD_INTERNAL_ERROR, SSL_R_BAD_KEY_UPDATE);
        }
        // TLSInnerPlaintext: content, the real type, zeros.
        std::size_t end = inner;
        while (end > 0 && to[end - 1] == std::byte{0}) --end;
        if (end == 0) {
            plain_.clear();
            return fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_BAD_RECORD_TYPE);
        }
        const auto inner_type = std::to_integer<std::uint8_t>(to[end - 1]);
        const std::span<const std::byte> content(to, end - 1);
        // A handshake message cut across records must not have other records inside it (5.1).
        if (!handshake_.empty() && inner_type != type_handshake) {
            plain_.clear();
            return fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_RECORD);
        }
        Status status = Status::Ok;
        switch (inner_type) {
            case type_application_data:
                if (content.empty()) continue;  // allowed, and nothing to hand out
                if (direct) {
                    n = content.size();
                    return Status::Ok;
                }
                plain_.resize(content.size());
                plain_at_ = 0;
                return hand_out(into, n);
            case type_alert:
            case type_handshake: {
                bool go_on =
                    inner_type == type_alert ? on_alert(content, status) : on_handshake_message(content, status);
                plain_.clear();
                if (!go_on) return status;
                continue;
            }
            default:
                plain_.clear();
                return fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_BAD_RECORD_TYPE);
        }
    }
}

bool TlsSession::write_tls13(std::span<const std::byte> plain) {
    if (close_sent_ || ended_ == Status::Failed) {
        error_ = ssl_error(SSL_R_PROTOCOL_IS_SHUTDOWN);
        return false;
    }
    while (!plain.empty()) {
        std::size_t take = std::min(plain.size(), Tls13Records::max_plaintext);
        if (!update_keys_if_due() || !records_->seal(type_application_data, plain.first(take), out_)) {
            error_ = ssl_error(ERR_R_INTERNAL_ERROR);
            return false;
        }
        plain = plain.subspan(take);
    }
    return true;
}

void TlsSession::shutdown_tls13() {
    if (!close_sent_ && ended_ != Status::Failed) {
        // A warning-level close_notify; best effort, as OpenSSL's.
        const std::byte close_notify[] = {std::byte{1}, std::byte{SSL_AD_CLOSE_NOTIFY}};
        records_->seal(type_alert, close_notify, out_);
    }
    close_sent_ = true;
}

// An alert from the client: close_notify ends the stream, user_canceled is a warning (6.1),
// anything else is an error that ends the connection without an answer.
bool TlsSession::on_alert(std::span<const std::byte> content, Status& status) {
    if (content.size() != 2) {
        status = fatal(SSL_AD_DECODE_ERROR, SSL_R_INVALID_ALERT);
        return false;
    }
    const auto description = std::to_integer<int>(content[1]);
    if (description == SSL_AD_USER_CANCELLED) return true;
    if (description == SSL_AD_CLOSE_NOTIFY) {
        status = ended_ = Status::Closed;
        return false;
    }
    // As OpenSSL names a received alert ("tlsv1 alert decrypt error").
    error_ = ssl_error(SSL_AD_REASON_OFFSET + description);
    status = ended_ = Status::Failed;
    return false;
}

// Past the handshake a client may send KeyUpdate only (no tickets, no post-handshake
// authentication asked for). A message may come in pieces; the key change must end its record.
bool TlsSession::on_handshake_message(std::span<const std::byte> content, Status& status) {
    if (content.empty()) {
        status = fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_BAD_LENGTH);
        return false;
    }
    handshake_.insert(handshake_.end(), content.begin(), content.end());
    if (std::to_integer<std::uint8_t>(handshake_[0]) != handshake_key_update) {
        status = fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_MESSAGE);
        return false;
    }
    if (handshake_.size() >= 4 &&
        (handshake_[1] != std::byte{0} || handshake_[2] != std::byte{0} || handshake_[3] != std::byte{1})) {
        status = fatal(SSL_AD_DECODE_ERROR, SSL_R_BAD_KEY_UPDATE);
        return false;
    }
    if (handshake_.size() < 5) return true;  // the rest in the next record
    if (handshake_.size() > 5) {
        status = fatal(SSL_AD_UNEXPECTED_MESSAGE, SSL_R_NOT_ON_RECORD_BOUNDARY);
        return false;
    }
    const auto request = std::to_integer<std::uint8_t>(handshake_[4]);
    handshake_.clear();
    if (request > 1) {
        status = fatal(SSL_AD_ILLEGAL_PARAMETER, SSL_R_BAD_KEY_UPDATE);
        return false;
    }
    if (!records_->update_read()) {
        status = fatal(SSL_AD_INTERNAL_ERROR, SSL_R_BAD_KEY_UPDATE);
        return false;
    }
    key_update_asked_ = false;  // the client changed its keys (whether or not we had asked)
    // update_requested: our KeyUpdate(update_not_requested) under the old keys, then the new.
    if (request == 1 && !close_sent_ && !send_key_update(false)) {
        status = fatal(SSL_AD_INTERNAL_ERROR, SSL_R_BAD_KEY_UPDATE);
        return false;
    }
    return true;
}

// Once a direction's key has sealed or opened key_update_interval_ records: our KeyUpdate, which
// asks the client to change its keys too (update_requested) unless it was asked already and has
// not answered; our write keys change after it. The client's answer (its KeyUpdate) changes the
// read keys. False if the keys cannot be derived (the connection cannot go on).
bool TlsSession::update_keys_if_due() {
    const bool write_due = records_->write_sequence() >= key_update_interval_;
    const bool read_due = records_->read_sequence() >= key_update_interval_ && !key_update_asked_;
    if ((!write_due && !read_due) || close_sent_) return true;
    const bool ask = !key_update_asked_;
    if (!send_key_update(ask)) return false;
    if (ask) key_update_asked_ = true;
    return true;
}

// Our KeyUpdate under the current write keys, then the next ones (7.2). False (and nothing more
// written) if they cannot be derived.
bool TlsSession::send_key_update(bool request) {
    const std::byte key_update[] = {std::byte{handshake_key_update}, std::byte{0}, std::byte{0}, std::byte{1},
                                    std::byte{static_cast<unsigned char>(request ? 1 : 0)}};
    if (!records_->seal(type_handshake, key_update, out_) || !records_->update_write()) {
        close_sent_ = true;  // no usable write keys
        return false;
    }
    ++key_updates_sent_;
    return true;
}

// A fatal alert to the client (unless we closed already), and the connection's end.
TlsSession::Status TlsSession::fatal(std::uint8_t alert, int reason) {
    if (!close_sent_) {
        const std::byte record[] = {std::byte{2}, std::byte{alert}};
        records_->seal(type_alert, record, out_);  // best effort: the connection ends anyway
        close_sent_ = true;
    }
    error_ = ssl_error(reason);
    ended_ = Status::Failed;
    return Status::Failed;
}

}  // namespace warren::broker::net
