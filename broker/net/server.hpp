// The AMQP listeners: accepts TCP connections and owns each TcpConnection until its socket is
// closed.
#pragma once

#include <asio.hpp>

#include <memory>
#include <unordered_map>
#include <vector>

#include "broker/config.hpp"
#include "broker/net/event_loop.hpp"

namespace warren::broker::net {

class TcpConnection;

class Server {
public:
    Server(EventLoop& loop, const std::vector<Listener>& listeners);

    // The ports actually bound (port 0 in the configuration picks a free one).
    std::vector<asio::ip::tcp::endpoint> endpoints() const;
    // Stops accepting and closes every connection with 320 CONNECTION_FORCED.
    void shut_down(std::string_view reason);

private:
    void accept(asio::ip::tcp::acceptor& acceptor);

    EventLoop& loop_;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
    // Every connection whose socket is open, pending I/O or not: a connection blocked by the
    // memory alarm is neither read nor written to and must live on. A connection removes itself
    // when its socket closes (handlers still running hold it until they finish). Only a running
    // io_context calls back, and main() destroys the Server only after the loop has stopped.
    std::unordered_map<TcpConnection*, std::shared_ptr<TcpConnection>> connections_;
};

}  // namespace warren::broker::net
