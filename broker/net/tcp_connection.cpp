// See tcp_connection.hpp. Both variants are compiled here (explicit instantiations below); the
// TLS-only steps are `if constexpr` calls into tcp_connection_tls.cpp, so the plain variant's
// code is what it was before TLS.
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
// A read at least this large keeps the connection's place in the loop (read_again).
constexpr std::size_t keep_place_bytes = 4 * 1024;
// Once we close, how long the peer gets to read what is left and close its end. It bounds the
// write too: a peer that stopped reading (its receive window full) does not hold the socket.
constexpr auto linger_time = std::chrono::seconds(2);
// While closing, input is read only to be discarded.
constexpr std::size_t discard_chunk = 4096;

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
    : loop_(loop), socket_(std::move(socket)), on_closed_(std::move(on_closed)), deadline_(loop.io()) {
    asio::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    // flush() writes from the loop turn itself (write_now): the socket must never block it.
    socket_.non_blocking(true, ec);
    peer_ = peer_of(socket_);
    log::peer(log::Level::Debug, peer_.address, "accepting AMQP connection from {}", peer_.address);
    make_core();
}

template <class Stream>
TcpConnection<Stream>::TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket, TlsSetup tls,
                                     std::function<void(Transport&)> on_closed) requires(is_tls)
    : loop_(loop),
      socket_(std::move(socket)),
      tls_(std::move(tls)),
      on_closed_(std::move(on_closed)),
      deadline_(loop.io()) {
    asio::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    // The TLS variant receives and sends itself (recv/send), in the loop turn.
    socket_.non_blocking(true, ec);
    peer_ = peer_of(socket_);
    log::peer(log::Level::Debug, peer_.address, "accepting AMQPS connection from {}", peer_.address);
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
        tls_handshake_step();
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
        // The client's first AMQP bytes may have come with its last handshake message.
        tls_.session.keep_input();
        SSL* ssl = tls_.session.native_handle();
        peer_.tls = tls_peer_of(ssl, tls_.setup.verify_peer);
        log::peer(log::Level::Debug, peer_.address, "TLS handshake with {} done: {}, {}, {} records", peer_.address,
                  SSL_get_version(ssl), SSL_get_cipher_name(ssl),
                  tls_.session.uses_record_layer() ? "Warren's" : "OpenSSL's");
        Broker::TimeScope scope(loop_.broker());
        make_core();
        phase_ = Phase::Open;
        start_read();
        if (tls_.session.has_output()) output_ready();
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
    reading_ = true;
    if constexpr (is_tls) {
        // Input left from before the core stopped reading (or from the handshake's last read)
        // is handled first; otherwise wait until the socket has something (one large recv).
        if (tls_.session.has_buffered())
            asio::post(loop_.io(), [self = self()] { self->tls_on_readable({}, true); });
        else
            socket_.async_wait(asio::socket_base::wait_read,
                               [self = self()](const asio::error_code& ec) { self->tls_on_readable(ec, false); });
        return;
    }
    auto space = core_->read_space(phase_ == Phase::Closing ? discard_chunk : read_chunk);
    if (phase_ == Phase::Closing) space = space.first(std::min(space.size(), discard_chunk));
    socket_.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = self()](const asio::error_code& ec, std::size_t n) { self->on_read(ec, n); });
}

template <class Stream>
void TcpConnection<Stream>::on_read(const asio::error_code& ec, std::size_t n) {
    if (phase_ == Phase::Closed) {
        reading_ = false;
        return;
    }
    if (ec) {
        on_input_end(ec == asio::error::eof ? std::string("connection closed by the client")
                                            : fmt::format("socket error: {}", ec.message()));
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
            core_->on_read(n);
        } catch (const std::exception& e) {
            fail_internal(e.what());
        }
    }
    reading_ = false;
    loop_.schedule_turn_end();
    if (n >= keep_place_bytes) {
        read_again();
        return;
    }
    start_read();
}

// A connection that has just read a batch tries its next read in the loop's next pass over its
// ready handlers, as every other busy connection does, instead of waiting for epoll to report it
// again. Asio's reactor reports at most 128 sockets per pass: under a load that saturates the
// loop, the connections left to it were read once in ~9 passes while those whose reads Asio
// retried at once were read every pass (many-connections pipelined: the slowest queue at 0.23 of
// the mean). A read that finds nothing goes back to waiting for epoll. Small reads (a client's
// publish or ack at a time) wait for epoll as before: a retry would mostly find nothing and cost
// a system call.
template <class Stream>
void TcpConnection<Stream>::read_again() {
    if constexpr (!is_tls) {
        if (!reading_ && phase_ == Phase::Open && core_->wants_read()) {
            reading_ = true;  // no other read starts meanwhile (read_state_changed)
            asio::post(loop_.io(), [self = self()] { self->read_now(); });
            return;
        }
    }
    start_read();
}

template <class Stream>
void TcpConnection<Stream>::read_now() {
    reading_ = false;
    if (phase_ != Phase::Open || !core_->wants_read()) {
        start_read();
        return;
    }
    auto space = core_->read_space(read_chunk);
    asio::error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(space.data(), space.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        start_read();
        return;
    }
    reading_ = true;
    on_read(ec, n);
}

// The peer closed its end, or reading failed: the connection ends.
template <class Stream>
void TcpConnection<Stream>::on_input_end(const std::string& reason) {
    reading_ = false;
    Broker::TimeScope scope(loop_.broker());
    core_->on_transport_closed(reason);
    finish_close();
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
    // TLS: records the session made by itself (the end of the handshake, a key update's answer)
    // go out even when the core has nothing.
    bool tls_output = false;
    if constexpr (is_tls) tls_output = tls_.session.has_output();
    if (!out && !tls_output) {
        // output_ready() comes when a hold is released
        if (!core_->output_held() && phase_ == Phase::Closing) shut_down_send();
        return;
    }
    gather_.clear();
    if (out)
        out->for_each_piece(
            [&](std::span<const std::byte> piece) { gather_.emplace_back(piece.data(), piece.size()); });
    writing_ = true;
    if constexpr (is_tls) {
        tls_.core_write = out != nullptr;
        tls_.gather_at = tls_.gather_offset = 0;
        tls_flush();
    } else {
        if (write_now()) {
            end_write_now();
            return;
        }
        asio::async_write(socket_, gather_,
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
            std::size_t n = socket_.write_some(std::span(gather_).subspan(first), ec);
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
    if (owes_end_write()) core_->end_write();
    if (phase_ == Phase::Closed) return;
    if (core_->has_output() || phase_ == Phase::Closing) flush();
}

// Whether the write that ended was of the core's output (begin_write), rather than only of
// records the TLS session made by itself.
template <class Stream>
bool TcpConnection<Stream>::owes_end_write() {
    if constexpr (is_tls) return std::exchange(tls_.core_write, false);
    return true;
}

template <class Stream>
void TcpConnection<Stream>::on_written(const asio::error_code& ec) {
    writing_ = false;
    Broker::TimeScope scope(loop_.broker());
    if (owes_end_write()) core_->end_write();
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
// truncation; reading then goes on until the peer's close_notify or FIN.
template <class Stream>
void TcpConnection<Stream>::shut_down_send() {
    if (send_shut_down_) return;
    if constexpr (is_tls) {
        if (!tls_.close_notify_made) {
            tls_.close_notify_made = true;
            tls_.session.shutdown();
            // Written like any output; flush() comes back here once it is out.
            gather_.clear();
            tls_.gather_at = tls_.gather_offset = 0;
            writing_ = true;
            tls_flush();
            return;
        }
    }
    send_shut_down_ = true;
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    start_read();
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
    socket_.close(ignored);
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
template class TcpConnection<TlsSession>;

}  // namespace warren::broker::net
