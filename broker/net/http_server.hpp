// The management listener: accepts HTTP connections on the broker's own event loop (no second
// loop, no thread) and hands each request to the management API.
#pragma once

#include <asio.hpp>
#include <memory>
#include <unordered_map>

#include "broker/config.hpp"
#include "broker/net/event_loop.hpp"
#include "mgmt/api.hpp"

namespace warren::broker::net {

class HttpConnection;

class HttpServer {
public:
    HttpServer(EventLoop& loop, const Listener& listener, mgmt::Api& api);

    asio::ip::tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
    // Stops accepting and closes every connection.
    void shut_down();

private:
    void accept();

    EventLoop& loop_;
    mgmt::Api& api_;
    asio::ip::tcp::acceptor acceptor_;
    // Every open connection; a connection removes itself when its socket closes.
    std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>> connections_;
};

}  // namespace warren::broker::net
