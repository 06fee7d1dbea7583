// See tcp_connection.hpp.
#include "broker/net/tcp_connection.hpp"

#include <fmt/format.h>

#include "broker/log.hpp"
#include "broker/net/event_loop.hpp"
#include "protocol/reply_code.hpp"
#include "protocol/methods.hpp"

namespace warren::broker::net {

namespace {
constexpr std::size_t read_chunk = 256 * 1024;
// Once we close, how long the peer gets to read what is left and close its end. It bounds the
// write too: a peer that stopped reading (its receive window full) does not hold the socket.
constexpr auto linger_time = std::chrono::seconds(2);
// While closing, input is read only to be discarded.
constexpr std::size_t discard_chunk = 4096;

PeerInfo peer_of(const asio::ip::tcp::socket& socket) {
    asio::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (ec) return {"unknown", false};
    auto address = ep.address();
    bool loopback = address.is_loopback() ||
                    (address.is_v6() && address.to_v6().is_v4_mapped() &&
                     asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback());
    std::string text = address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), ep.port())
                                       : fmt::format("{}:{}", address.to_string(), ep.port());
    std::string local;
    if (auto here = socket.local_endpoint(ec); !ec)
        local = here.address().is_v6() ? fmt::format("[{}]:{}", here.address().to_string(), here.port())
                                       : fmt::format("{}:{}", here.address().to_string(), here.port());
    return {text, loopback, local};
}
}  // namespace

TcpConnection::TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket,
                             std::function<void(TcpConnection&)> on_closed)
    : loop_(loop), socket_(std::move(socket)), on_closed_(std::move(on_closed)), linger_(loop.io()) {
    asio::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    PeerInfo peer = peer_of(socket_);
    log::peer(log::Level::Debug, peer.address, "accepting AMQP connection from {}", peer.address);
    core_ = std::make_unique<Connection>(loop_.broker(), *this, std::move(peer));
}

TcpConnection::~TcpConnection() = default;

void TcpConnection::start() { start_read(); }

void TcpConnection::start_read() {
    if (reading_ || phase_ == Phase::Closed) return;
    if (phase_ == Phase::Open && !core_->wants_read()) return;
    reading_ = true;
    auto space = core_->read_space(phase_ == Phase::Closing ? discard_chunk : read_chunk);
    if (phase_ == Phase::Closing) space = space.first(std::min(space.size(), discard_chunk));
    socket_.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                                self->on_read(ec, n);
                            });
}

void TcpConnection::on_read(const asio::error_code& ec, std::size_t n) {
    if (phase_ == Phase::Closed) {
        reading_ = false;
        return;
    }
    if (ec) {
        reading_ = false;
        Broker::TimeScope scope(loop_.broker());
        core_->on_transport_closed(ec == asio::error::eof ? "connection closed by the client"
                                                          : fmt::format("socket error: {}", ec.message()));
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
            core_->on_read(n);
        } catch (const std::exception& e) {
            fail_internal(e.what());
        }
    }
    reading_ = false;
    loop_.schedule_turn_end();
    start_read();
}

// A bug or an exhausted resource (an allocation that failed) while handling this connection's
// input: it alone is closed, with 541 INTERNAL_ERROR as RabbitMQ does; every other client
// carries on.
void TcpConnection::fail_internal(std::string_view what) {
    log::error("internal error on connection: {}; closing it", what);
    try {
        core_->close_with_error(protocol::AmqpError{protocol::ReplyCode::InternalError, "INTERNAL_ERROR", {}});
    } catch (const std::exception&) {
        core_->on_transport_closed("internal error");
    }
    close_transport();
}

void TcpConnection::output_ready() {
    if (flush_queued_ || phase_ == Phase::Closed) return;
    flush_queued_ = true;
    loop_.want_flush(shared_from_this());
}

void TcpConnection::flush() {
    flush_queued_ = false;
    if (writing_ || phase_ == Phase::Closed) return;
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
    asio::async_write(socket_, gather_, [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
        self->on_written(ec);
    });
}

void TcpConnection::on_written(const asio::error_code& ec) {
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

void TcpConnection::close_transport() {
    if (phase_ == Phase::Closing || phase_ == Phase::Closed) return;
    phase_ = Phase::Closing;
    linger_.expires_after(linger_time);
    linger_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
        if (!ec) self->finish_close();
    });
    output_ready();  // the FIN follows the last byte
    start_read();    // input is discarded from now on (a blocked connection had no read pending)
}

void TcpConnection::await_peer_close() {
    if (phase_ != Phase::Open) return;
    phase_ = Phase::AwaitingPeer;
    output_ready();
    start_read();  // read even if the memory alarm had stopped reading: the peer's FIN must be seen
}

// The client does not read: what is pending would never be written. Close now; the write in
// flight completes with operation_aborted and releases this object.
void TcpConnection::abort_transport() {
    finish_close();
}

void TcpConnection::read_state_changed() {
    if (phase_ == Phase::Open) start_read();
}

// Everything is written: send our FIN, then discard what the peer still sends until it closes
// its end (so that it sees a close rather than a reset), within the linger time.
void TcpConnection::shut_down_send() {
    if (send_shut_down_) return;
    send_shut_down_ = true;
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    start_read();
}

void TcpConnection::finish_close() {
    if (phase_ == Phase::Closed) return;
    phase_ = Phase::Closed;
    auto self = shared_from_this();  // on_closed_ lets the Server's reference go
    {
        Broker::TimeScope scope(loop_.broker());
        core_->on_transport_closed("connection closed");
    }
    asio::error_code ignored;
    linger_.cancel();
    socket_.close(ignored);
    if (on_closed_) on_closed_(*this);
}

void TcpConnection::force_close(std::string_view reason) {
    if (phase_ == Phase::Closing || phase_ == Phase::Closed) return;
    core_->close_with_error(protocol::amqp_error(
        protocol::ReplyCode::ConnectionForced, fmt::format("broker forced connection closure with reason '{}'", reason)));
    close_transport();
}

}  // namespace warren::broker::net
