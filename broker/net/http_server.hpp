// The management listener: accepts HTTP (or, with a TLS context, HTTPS) connections on the
// broker's own event loop (no second loop, no thread) and hands each request to the API.
#pragma once

#include <asio.hpp>
#include <memory>
#include <unordered_map>

#include "broker/config.hpp"
#include "broker/net/event_loop.hpp"
#include "broker/net/tls_context.hpp"
#include "mgmt/api.hpp"

namespace warren::broker::net {

class HttpConnection;

class HttpServer {
public:
    // `tls` null: plain HTTP.
    HttpServer(EventLoop& loop, const Listener& listener, mgmt::HttpHandler handler, TlsContextPtr tls = nullptr,
               std::string_view what = "management API");

    asio::ip::tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
    // Stops accepting and closes every connection.
    void shut_down();
    // New certificates for new connections (SIGHUP); open ones keep theirs.
    void set_tls_context(TlsContextPtr tls) { tls_ = std::move(tls); }

private:
    void accept();

    EventLoop& loop_;
    mgmt::HttpHandler handler_;
    TlsContextPtr tls_;
    asio::ip::tcp::acceptor acceptor_;
    // Every open connection; a connection removes itself when its socket closes.
    std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>> connections_;
};

}  // namespace warren::broker::net
