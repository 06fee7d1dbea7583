// See server.hpp.
#include "broker/net/server.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "broker/log.hpp"
#include "broker/net/tcp_connection.hpp"

namespace warren::broker::net {

Server::Server(EventLoop& loop, const std::vector<Listener>& listeners) : loop_(loop) {
    for (const auto& l : listeners) {
        asio::error_code ec;
        auto address = asio::ip::make_address(l.bind, ec);
        if (ec) throw std::runtime_error(fmt::format("cannot listen on '{}': not an IP address", l.bind));
        asio::ip::tcp::endpoint endpoint(address, l.port);
        auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(loop_.io());
        acceptor->open(endpoint.protocol());
        acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true));
        acceptor->bind(endpoint, ec);
        if (ec) throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", l.bind, l.port, ec.message()));
        acceptor->listen(asio::socket_base::max_listen_connections);
        auto bound = acceptor->local_endpoint();
        log::info("listening for AMQP connections on {}:{}", bound.address().to_string(), bound.port());
        acceptors_.push_back(std::move(acceptor));
    }
    for (auto& a : acceptors_) accept(*a);
}

std::vector<asio::ip::tcp::endpoint> Server::endpoints() const {
    std::vector<asio::ip::tcp::endpoint> out;
    for (const auto& a : acceptors_) out.push_back(a->local_endpoint());
    return out;
}

void Server::accept(asio::ip::tcp::acceptor& acceptor) {
    acceptor.async_accept([this, &acceptor](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            Broker::TimeScope scope(loop_.broker());
            auto connection = std::make_shared<TcpConnection>(
                loop_, std::move(socket), [this](TcpConnection& closed) { connections_.erase(&closed); });
            connections_.emplace(connection.get(), connection);
            connection->start();
            accept(acceptor);
            return;
        }
        // Out of file descriptors or memory: retrying at once would spin; try again shortly.
        log::warning("accept failed: {}; retrying in 100 ms", ec.message());
        auto retry = std::make_shared<asio::steady_timer>(loop_.io(), std::chrono::milliseconds(100));
        retry->async_wait([this, &acceptor, retry](const asio::error_code& e) {
            if (!e && acceptor.is_open()) accept(acceptor);
        });
    });
}

void Server::shut_down(std::string_view reason) {
    for (auto& a : acceptors_) {
        asio::error_code ignored;
        a->close(ignored);
    }
    std::vector<std::shared_ptr<TcpConnection>> open;
    for (auto& [ptr, c] : connections_) open.push_back(c);
    Broker::TimeScope scope(loop_.broker());
    for (auto& c : open) c->force_close(reason);
    loop_.schedule_turn_end();
}

}  // namespace warren::broker::net
