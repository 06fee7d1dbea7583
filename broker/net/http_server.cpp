// See http_server.hpp.
#include "broker/net/http_server.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "broker/log.hpp"
#include "broker/net/http_connection.hpp"
#include "broker/net/https_stream.hpp"

namespace warren::broker::net {

HttpServer::HttpServer(EventLoop& loop, const Listener& listener, mgmt::HttpHandler handler, TlsContextPtr tls,
                       std::string_view what)
    : loop_(loop), handler_(std::move(handler)), tls_(std::move(tls)), acceptor_(loop.io()) {
    asio::error_code ec;
    auto address = asio::ip::make_address(listener.bind, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot listen on '{}': not an IP address", listener.bind));
    asio::ip::tcp::endpoint endpoint(address, listener.port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint, ec);
    if (ec)
        throw std::runtime_error(
            fmt::format("cannot listen for HTTP on {}:{}: {}", listener.bind, listener.port, ec.message()));
    acceptor_.listen(asio::socket_base::max_listen_connections);
    auto bound = acceptor_.local_endpoint();
    log::info("{} listening on {}://{}:{}/", what, tls_ ? "https" : "http", bound.address().to_string(), bound.port());
    accept();
}

void HttpServer::accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (ec) {
            log::warning("HTTP accept failed: {}; retrying in 100 ms", ec.message());
            auto retry = std::make_shared<asio::steady_timer>(loop_.io(), std::chrono::milliseconds(100));
            retry->async_wait([this, retry](const asio::error_code& e) {
                if (!e && acceptor_.is_open()) accept();
            });
            return;
        }
        asio::error_code e;
        auto remote = socket.remote_endpoint(e);
        std::string peer =
            e ? std::string("unknown") : fmt::format("{}:{}", remote.address().to_string(), remote.port());
        bool loopback =
            !e && (remote.address().is_loopback() ||
                   (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped() &&
                    asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).is_loopback()));
        socket.set_option(asio::ip::tcp::no_delay(true), e);
        std::unique_ptr<HttpStream> stream;
        if (tls_)
            stream = std::make_unique<TlsHttpStream>(std::move(socket), tls_, peer);
        else
            stream = std::make_unique<TcpHttpStream>(std::move(socket));
        auto connection =
            std::make_shared<HttpConnection>(loop_, std::move(stream), std::move(peer), loopback, handler_,
                                             [this](HttpConnection& closed) { connections_.erase(&closed); });
        connections_.emplace(connection.get(), connection);
        connection->start();
        accept();
    });
}

void HttpServer::shut_down() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    std::vector<std::shared_ptr<HttpConnection>> open;
    for (auto& [p, c] : connections_) open.push_back(c);
    for (auto& c : open) c->close();
}

}  // namespace warren::broker::net
