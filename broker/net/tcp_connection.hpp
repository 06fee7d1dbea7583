// One TCP socket driving one sans-IO Connection: large reads straight into the connection's
// read buffer, and one gathered write of all pending output per loop turn. Kept alive by its
// pending Asio operations (shared_from_this).
#pragma once

#include <asio.hpp>

#include <memory>
#include <vector>

#include "broker/connection.hpp"

namespace warren::broker::net {

class EventLoop;

class TcpConnection final : public ConnectionHost, public std::enable_shared_from_this<TcpConnection> {
public:
    TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket);
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
    void read_state_changed() override;

private:
    void start_read();
    void on_read(const asio::error_code& ec, std::size_t n);
    void on_written(const asio::error_code& ec);
    void finish_close();
    void fail_internal(std::string_view what);
    void drain_until_eof();

    EventLoop& loop_;
    asio::ip::tcp::socket socket_;
    std::unique_ptr<Connection> core_;
    std::vector<asio::const_buffer> gather_;
    bool reading_ = false;
    bool writing_ = false;
    bool flush_queued_ = false;
    bool closing_ = false;   // close_transport() was called: flush, then shut down
    bool closed_ = false;    // the socket is closed
    bool lingering_ = false;
    asio::steady_timer linger_;
};

}  // namespace warren::broker::net
