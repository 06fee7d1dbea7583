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
// After our close, how long the peer gets to read it and close its end.
constexpr auto linger_time = std::chrono::seconds(2);

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
    return {text, loopback};
}
}  // namespace

TcpConnection::TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket)
    : loop_(loop), socket_(std::move(socket)), linger_(loop.io()) {
    asio::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    PeerInfo peer = peer_of(socket_);
    log::debug("accepting AMQP connection from {}", peer.address);
    core_ = std::make_unique<Connection>(loop_.broker(), *this, std::move(peer));
}

TcpConnection::~TcpConnection() = default;

void TcpConnection::start() { start_read(); }

void TcpConnection::start_read() {
    if (reading_ || closed_) return;
    if (!closing_ && !core_->wants_read()) return;
    reading_ = true;
    auto space = core_->read_space(read_chunk);
    socket_.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                                self->on_read(ec, n);
                            });
}

void TcpConnection::on_read(const asio::error_code& ec, std::size_t n) {
    if (closed_) {
        reading_ = false;
        return;
    }
    if (ec) {
        reading_ = false;
        core_->on_transport_closed(ec == asio::error::eof ? "connection closed by the client"
                                                          : fmt::format("socket error: {}", ec.message()));
        finish_close();
        return;
    }
    if (closing_) {
        reading_ = false;
        drain_until_eof();
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
    if (flush_queued_ || closed_) return;
    flush_queued_ = true;
    loop_.want_flush(shared_from_this());
}

void TcpConnection::flush() {
    flush_queued_ = false;
    if (writing_ || closed_) return;
    const OutputQueue* out = core_->begin_write();
    if (!out) {
        if (closing_) {
            asio::error_code ignored;
            socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
            drain_until_eof();
        }
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
    if (closed_) return;
    if (ec) {
        core_->on_transport_closed(fmt::format("socket error: {}", ec.message()));
        finish_close();
        return;
    }
    if (core_->has_output() || closing_) flush();
    // Draining output may have re-enabled deliveries: let the broker run.
    loop_.schedule_turn_end();
}

void TcpConnection::close_transport() {
    if (closing_ || closed_) return;
    closing_ = true;
    output_ready();
}

void TcpConnection::read_state_changed() {
    if (core_->wants_read()) start_read();
}

// After our close frame is out: read and discard until the peer closes (so that it sees the
// close rather than a reset), or until the linger time is up.
void TcpConnection::drain_until_eof() {
    if (closed_) return;
    if (!lingering_) {
        lingering_ = true;
        linger_.expires_after(linger_time);
        linger_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
            if (!ec) self->finish_close();
        });
    }
    if (reading_) return;
    reading_ = true;
    auto space = core_->read_space(4096);
    socket_.async_read_some(asio::buffer(space.data(), std::min<std::size_t>(space.size(), 4096)),
                            [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                                self->reading_ = false;
                                if (ec) self->finish_close();
                                else self->drain_until_eof();
                            });
}

void TcpConnection::finish_close() {
    if (closed_) return;
    closed_ = true;
    {
        Broker::TimeScope scope(loop_.broker());
        core_->on_transport_closed("connection closed");
    }
    asio::error_code ignored;
    linger_.cancel();
    socket_.close(ignored);
}

void TcpConnection::force_close(std::string_view reason) {
    if (closed_ || closing_) return;
    core_->close_with_error(protocol::amqp_error(
        protocol::ReplyCode::ConnectionForced, fmt::format("broker forced connection closure with reason '{}'", reason)));
    close_transport();
}

}  // namespace warren::broker::net
