// See tcp_connection.hpp. Both variants are compiled here (explicit instantiations below); the
// TLS-only steps are `if constexpr`, so the plain variant's code is what it was before TLS.
#include "broker/net/tcp_connection.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "broker/log.hpp"
#include "broker/net/event_loop.hpp"
#include "protocol/methods.hpp"
#include "protocol/reply_code.hpp"

namespace warren::broker::net {

namespace {
constexpr std::size_t read_chunk = 256 * 1024;
// Once we close, how long the peer gets to read what is left and close its end. It bounds the
// write too: a peer that stopped reading (its receive window full) does not hold the socket.
constexpr auto linger_time = std::chrono::seconds(2);
// While closing, input is read only to be discarded.
constexpr std::size_t discard_chunk = 4096;
// TLS: output is packed into chunks of this size (OpenSSL cuts them into 16 KiB records): the
// copy a busy connection keeps is at most this large.
constexpr std::size_t tls_write_chunk = 64 * 1024;

PeerInfo peer_of(const asio::ip::tcp::socket& socket) {
    asio::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (ec) return {"unknown", false, "", std::nullopt};
    auto address = ep.address();
    bool loopback =
        address.is_loopback() || (address.is_v6() && address.to_v6().is_v4_mapped() &&
                                  asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback());
    std::string text = address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), ep.port())
                                       : fmt::format("{}:{}", address.to_string(), ep.port());
    std::string local;
    if (auto here = socket.local_endpoint(ec); !ec)
        local = here.address().is_v6() ? fmt::format("[{}]:{}", here.address().to_string(), here.port())
                                       : fmt::format("{}:{}", here.address().to_string(), here.port());
    return {text, loopback, local, std::nullopt};
}
}  // namespace

template <class Stream>
TcpConnection<Stream>::TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket,
                                     std::function<void(Transport&)> on_closed) requires(!is_tls)
    : loop_(loop), stream_(std::move(socket)), on_closed_(std::move(on_closed)), deadline_(loop.io()) {
    asio::error_code ec;
    stream_.set_option(asio::ip::tcp::no_delay(true), ec);
    // flush() writes from the loop turn itself (write_now): the socket must never block it.
    stream_.non_blocking(true, ec);
    peer_ = peer_of(stream_);
    log::peer(log::Level::Debug, peer_.address, "accepting AMQP connection from {}", peer_.address);
    make_core();
}

template <class Stream>
TcpConnection<Stream>::TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket, TlsSetup tls,
                                     std::function<void(Transport&)> on_closed) requires(is_tls)
    : loop_(loop),
      tls_{std::move(tls)},
      stream_(std::move(socket), *tls_.setup.context),
      on_closed_(std::move(on_closed)),
      deadline_(loop.io()) {
    asio::error_code ec;
    this->socket().set_option(asio::ip::tcp::no_delay(true), ec);
    peer_ = peer_of(this->socket());
    log::peer(log::Level::Debug, peer_.address, "accepting AMQPS connection from {}", peer_.address);
    record_verify_failure(stream_, tls_.verify_failure);
    // Asio asks OpenSSL to free a connection's record buffers whenever they are empty, which
    // for a busy connection is an allocation and a free per record (a tenth of the broker's
    // time with small messages). They are kept instead: about 34 KiB per TLS connection.
    SSL_clear_mode(stream_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

template <class Stream>
TcpConnection<Stream>::~TcpConnection() = default;

template <class Stream>
void TcpConnection<Stream>::make_core() {
    core_ = std::make_unique<Connection>(loop_.broker(), *this, std::move(peer_));
}

template <class Stream>
void TcpConnection<Stream>::start() {
    if constexpr (is_tls) {
        // A client that connects and says nothing, or stops half-way, holds a socket and a
        // handshake's memory: it gets handshake_timeout, then is dropped.
        deadline_.expires_after(tls_.setup.handshake_timeout);
        deadline_.async_wait([self = self()](const asio::error_code& ec) {
            if (!ec) self->on_handshake_timeout();
        });
        stream_.async_handshake(asio::ssl::stream_base::server,
                                [self = self()](const asio::error_code& ec) { self->on_handshake(ec); });
    } else {
        start_read();
    }
}

template <class Stream>
void TcpConnection<Stream>::on_handshake(const asio::error_code& ec) {
    if constexpr (is_tls) {
        if (phase_ != Phase::Handshake) return;  // timed out, or the broker is shutting down
        if (ec) {
            // A client that does not speak TLS, offers no common version, or whose
            // certificate does not verify: logged (rate-limited per host) and dropped.
            log::peer(log::Level::Warning, peer_.address, "TLS handshake with {} failed: {}", peer_.address,
                      log::escaped(describe_tls_error(ec, tls_.verify_failure)));
            finish_close();
            return;
        }
        deadline_.cancel();
        peer_.tls = tls_peer_of(stream_, tls_.setup.verify_peer);
        log::peer(log::Level::Debug, peer_.address, "TLS handshake with {} done: {}, {}", peer_.address,
                  SSL_get_version(stream_.native_handle()), SSL_get_cipher_name(stream_.native_handle()));
        Broker::TimeScope scope(loop_.broker());
        make_core();
        phase_ = Phase::Open;
        start_read();
        loop_.schedule_turn_end();  // arms the AMQP handshake timer the Connection just set
    }
}

template <class Stream>
void TcpConnection<Stream>::on_handshake_timeout() {
    if constexpr (is_tls) {
        if (phase_ != Phase::Handshake) return;
        log::peer(log::Level::Warning, peer_.address, "TLS handshake with {} timed out after {} ms; closing",
                  peer_.address, tls_.setup.handshake_timeout.count());
        finish_close();
    }
}

template <class Stream>
void TcpConnection<Stream>::start_read() {
    if (reading_ || phase_ == Phase::Closed || phase_ == Phase::Handshake) return;
    if (phase_ == Phase::Open && !core_->wants_read()) return;
    // TLS: once our close_notify is out, async_shutdown reads (and discards) until the peer's.
    if (is_tls && send_shut_down_) return;
    reading_ = true;
    auto space = core_->read_space(phase_ == Phase::Closing ? discard_chunk : read_chunk);
    if (phase_ == Phase::Closing) space = space.first(std::min(space.size(), discard_chunk));
    stream_.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = self()](const asio::error_code& ec, std::size_t n) { self->on_read(ec, n); });
}

template <class Stream>
void TcpConnection<Stream>::on_read(const asio::error_code& ec, std::size_t n) {
    if (phase_ == Phase::Closed) {
        reading_ = false;
        return;
    }
    if (ec) {
        reading_ = false;
        Broker::TimeScope scope(loop_.broker());
        std::string reason;
        if (ec == asio::error::eof || (is_tls && is_tls_close(ec)))
            reason = "connection closed by the client";
        else if constexpr (is_tls)
            reason = fmt::format("TLS error: {}", describe_tls_error(ec, {}));
        else
            reason = fmt::format("socket error: {}", ec.message());
        core_->on_transport_closed(reason);
        finish_close();
        return;
    }
    if (phase_ == Phase::Closing) {
        reading_ = false;
        start_read();  // discarded: keep reading until the peer closes
        return;
    }
    // reading_ stays true while the core handles the bytes: a read started from inside (via
    // read_state_changed) would read into the buffer the core is about to compact.
    {
        Broker::TimeScope scope(loop_.broker());
        try {
            loop_.note_read(n);
            core_->on_read(n);
            if constexpr (is_tls) read_buffered_records();
        } catch (const std::exception& e) {
            fail_internal(e.what());
        }
    }
    reading_ = false;
    loop_.schedule_turn_end();
    start_read();
}

// Asio's SSL stream completes a read with one TLS record, and the next read with a record
// already received would cost another loop turn. A client that sends a record per frame (the
// Go client does) would make every frame a turn: the records already in the stream's buffers
// are decrypted here instead, straight into the connection's buffer, until none is complete.
// The stream's state stays consistent: no read operation is pending while this handler runs,
// and whatever SSL_read leaves (a partial record) the next async_read_some continues from.
template <class Stream>
void TcpConnection<Stream>::read_buffered_records() {
    if constexpr (is_tls) {
        SSL* ssl = stream_.native_handle();
        while ((phase_ == Phase::Open && core_->wants_read()) || phase_ == Phase::AwaitingPeer) {
            auto space = core_->read_space(read_chunk);
            int n = SSL_read(ssl, space.data(), static_cast<int>(std::min<std::size_t>(space.size(), INT_MAX)));
            // None: no whole record buffered. A close_notify or an error is seen by the next
            // async_read_some (Asio clears OpenSSL's error queue before each operation).
            if (n <= 0) return;
            loop_.note_read(static_cast<std::size_t>(n));
            core_->on_read(static_cast<std::size_t>(n));
        }
    }
}

// A bug or an exhausted resource (an allocation that failed) while handling this connection's
// input: it alone is closed, with 541 INTERNAL_ERROR as RabbitMQ does; every other client
// carries on.
template <class Stream>
void TcpConnection<Stream>::fail_internal(std::string_view what) {
    log::error("internal error on connection: {}; closing it", what);
    try {
        core_->close_with_error(protocol::AmqpError{protocol::ReplyCode::InternalError, "INTERNAL_ERROR", {}});
    } catch (const std::exception&) {
        core_->on_transport_closed("internal error");
    }
    close_transport();
}

template <class Stream>
void TcpConnection<Stream>::output_ready() {
    if (flush_queued_ || phase_ == Phase::Closed) return;
    flush_queued_ = true;
    loop_.want_flush(shared_from_this());
}

template <class Stream>
void TcpConnection<Stream>::flush() {
    flush_queued_ = false;
    if (writing_ || phase_ == Phase::Closed || !core_) return;
    // Deliveries and replies may depend on records still buffered for the disk.
    loop_.broker().flush_storage();
    const OutputQueue* out = core_->begin_write();
    if (!out && core_->output_held()) return;  // output_ready() comes when the hold is released
    if (!out) {
        if (phase_ == Phase::Closing) shut_down_send();
        return;
    }
    gather_.clear();
    out->for_each_piece([&](std::span<const std::byte> piece) { gather_.emplace_back(piece.data(), piece.size()); });
    writing_ = true;
    if constexpr (is_tls) {
        tls_.gather_at = tls_.gather_offset = 0;
        write_tls_chunk();
    } else {
        if (write_now()) {
            end_write_now();
            return;
        }
        asio::async_write(stream_, gather_,
                          [self = self()](const asio::error_code& ec, std::size_t) { self->on_written(ec); });
    }
}

// Writes as much of gather_ as the socket takes at once and drops what was written from it.
// True when all of it is written: the usual case, a send per connection per loop turn with no
// completion handler and no extra turn. Otherwise (the socket's buffer is full, or an error)
// the rest goes through async_write, which reports an error as before.
template <class Stream>
bool TcpConnection<Stream>::write_now() {
    if constexpr (!is_tls) {
        std::size_t first = 0;  // the first piece not completely written
        while (first < gather_.size()) {
            asio::error_code ec;
            std::size_t n = stream_.write_some(std::span(gather_).subspan(first), ec);
            if (ec || n == 0) break;
            while (first < gather_.size() && n >= gather_[first].size()) n -= gather_[first++].size();
            if (n > 0) gather_[first] += n;
        }
        gather_.erase(gather_.begin(), gather_.begin() + static_cast<std::ptrdiff_t>(first));
        return gather_.empty();
    }
    return false;
}

// What on_written does after a complete write, inside the loop turn that wrote: the turn
// ends after this, so only what end_write() asks for (a queue to dispatch) needs another turn,
// and that asks for one itself.
template <class Stream>
void TcpConnection<Stream>::end_write_now() {
    writing_ = false;
    core_->end_write();
    if (phase_ == Phase::Closed) return;
    if (core_->has_output() || phase_ == Phase::Closing) flush();
}

// OpenSSL makes one record (and Asio one socket write) of each buffer it is given, and the
// output is mostly small frames: they are copied into one chunk first. A chunk that would be a
// single large piece (a big body) is written from where it is.
template <class Stream>
void TcpConnection<Stream>::write_tls_chunk() {
    if constexpr (is_tls) {
        auto& t = tls_;
        asio::const_buffer chunk;
        const asio::const_buffer& first = gather_[t.gather_at];
        if (t.gather_offset == 0 && first.size() >= tls_write_chunk) {
            chunk = first;
            ++t.gather_at;
        } else {
            t.staged.clear();
            while (t.gather_at < gather_.size() && t.staged.size() < tls_write_chunk) {
                const asio::const_buffer& piece = gather_[t.gather_at];
                std::size_t take = std::min(piece.size() - t.gather_offset, tls_write_chunk - t.staged.size());
                const auto* from = static_cast<const std::byte*>(piece.data()) + t.gather_offset;
                t.staged.insert(t.staged.end(), from, from + take);
                t.gather_offset += take;
                if (t.gather_offset == piece.size()) {
                    ++t.gather_at;
                    t.gather_offset = 0;
                }
            }
            chunk = asio::buffer(t.staged);
        }
        asio::async_write(stream_, chunk, [self = self()](const asio::error_code& ec, std::size_t) {
            if (!ec && self->tls_.gather_at < self->gather_.size() && self->phase_ != Phase::Closed)
                self->write_tls_chunk();
            else
                self->on_written(ec);
        });
    }
}

template <class Stream>
void TcpConnection<Stream>::on_written(const asio::error_code& ec) {
    writing_ = false;
    Broker::TimeScope scope(loop_.broker());
    core_->end_write();
    if (phase_ == Phase::Closed) return;
    if (ec) {
        core_->on_transport_closed(fmt::format("socket error: {}", ec.message()));
        finish_close();
        return;
    }
    if (core_->has_output() || phase_ == Phase::Closing) flush();
    // Draining output may have re-enabled deliveries: let the broker run.
    loop_.schedule_turn_end();
}

template <class Stream>
void TcpConnection<Stream>::close_transport() {
    if (phase_ == Phase::Closing || phase_ == Phase::Closed) return;
    phase_ = Phase::Closing;
    deadline_.expires_after(linger_time);
    deadline_.async_wait([self = self()](const asio::error_code& ec) {
        if (!ec) self->finish_close();
    });
    output_ready();  // the FIN follows the last byte
    start_read();    // input is discarded from now on (a blocked connection had no read pending)
}

template <class Stream>
void TcpConnection<Stream>::await_peer_close() {
    if (phase_ != Phase::Open) return;
    phase_ = Phase::AwaitingPeer;
    output_ready();
    start_read();  // read even if the memory alarm had stopped reading: the peer's FIN must be seen
}

// The client does not read: what is pending would never be written. Close now; the write in
// flight completes with operation_aborted and releases this object.
template <class Stream>
void TcpConnection<Stream>::abort_transport() {
    finish_close();
}

template <class Stream>
void TcpConnection<Stream>::read_state_changed() {
    if (phase_ == Phase::Open) start_read();
}

// Everything is written: send our FIN, then discard what the peer still sends until it closes
// its end (so that it sees a close rather than a reset), within the linger time. Over TLS the
// FIN is preceded by close_notify, so that the client sees a clean end of stream rather than a
// truncation; async_shutdown then reads until the peer's close_notify or FIN.
template <class Stream>
void TcpConnection<Stream>::shut_down_send() {
    if (send_shut_down_) return;
    send_shut_down_ = true;
    if constexpr (is_tls) {
        stream_.async_shutdown([self = self()](const asio::error_code&) { self->finish_close(); });
    } else {
        asio::error_code ignored;
        stream_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        start_read();
    }
}

template <class Stream>
void TcpConnection<Stream>::finish_close() {
    if (phase_ == Phase::Closed) return;
    phase_ = Phase::Closed;
    auto keep = shared_from_this();  // on_closed_ lets the Server's reference go
    if (core_) {
        Broker::TimeScope scope(loop_.broker());
        core_->on_transport_closed("connection closed");
    }
    asio::error_code ignored;
    deadline_.cancel();
    socket().close(ignored);
    if (on_closed_) on_closed_(*this);
}

template <class Stream>
void TcpConnection<Stream>::force_close(std::string_view reason) {
    if (phase_ == Phase::Closing || phase_ == Phase::Closed) return;
    if (!core_) {
        finish_close();  // still in the TLS handshake: nothing to say in AMQP
        return;
    }
    core_->close_with_error(
        protocol::amqp_error(protocol::ReplyCode::ConnectionForced,
                             fmt::format("broker forced connection closure with reason '{}'", reason)));
    close_transport();
}

template class TcpConnection<asio::ip::tcp::socket>;
template class TcpConnection<TlsStream>;

}  // namespace warren::broker::net
