// One TCP socket driving one sans-IO Connection: large reads straight into the connection's
// read buffer, and one gathered write of all pending output per loop turn. Owned by the Server
// until its socket is closed, whatever I/O is pending: a connection that is neither read (memory
// alarm) nor written to is still open. Pending Asio operations hold it too (shared_from_this).
#pragma once

#include <asio.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "broker/connection.hpp"

namespace warren::broker::net {

class EventLoop;

class TcpConnection final : public ConnectionHost, public std::enable_shared_from_this<TcpConnection> {
public:
    // `on_closed` runs once the socket is closed (the Server then lets go of the connection).
    TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket, std::function<void(TcpConnection&)> on_closed);
    ~TcpConnection() override;

    void start();
    // Writes pending output (called by the event loop at the end of a turn).
    void flush();
    // Broker shutdown: connection.close with 320 CONNECTION_FORCED.
    void force_close(std::string_view reason);

    // ConnectionHost
    void output_ready() override;
    void close_transport() override;
    void abort_transport() override;
    void await_peer_close() override;
    void read_state_changed() override;

private:
    enum class Phase {
        Open,          // reading (unless the core says not to) and writing
        AwaitingPeer,  // close-ok sent: still reading into the core until the peer closes
        Closing,       // writing what is left, then FIN, then discarding input until EOF
        Closed,        // the socket is closed
    };

    void start_read();
    void on_read(const asio::error_code& ec, std::size_t n);
    void on_written(const asio::error_code& ec);
    void shut_down_send();
    void finish_close();
    void fail_internal(std::string_view what);

    EventLoop& loop_;
    asio::ip::tcp::socket socket_;
    std::function<void(TcpConnection&)> on_closed_;
    std::unique_ptr<Connection> core_;
    std::vector<asio::const_buffer> gather_;
    Phase phase_ = Phase::Open;
    bool reading_ = false;
    bool writing_ = false;
    bool flush_queued_ = false;
    bool send_shut_down_ = false;  // our FIN is out
    asio::steady_timer linger_;
};

}  // namespace warren::broker::net
