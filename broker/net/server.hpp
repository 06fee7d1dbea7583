// The AMQP listeners: accepts TCP connections and hands each to a TcpConnection.
#pragma once

#include <asio.hpp>

#include <memory>
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
    std::vector<std::weak_ptr<TcpConnection>> connections_;
};

}  // namespace warren::broker::net
