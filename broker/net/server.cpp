// See server.hpp.
#include "broker/net/server.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "broker/log.hpp"
#include "broker/net/tcp_connection.hpp"

namespace warren::broker::net {

TlsContexts load_tls_contexts(const std::vector<TlsListener>& listeners) {
    TlsContexts out;
    for (std::size_t i = 0; i < listeners.size(); ++i) {
        TlsContextResult r = make_tls_context(listeners[i].tls, fmt::format("tls_listeners[{}]", i));
        for (const auto& w : r.warnings) log::warning("{}", w);
        if (!r.context) {
            out.contexts.clear();
            out.error = std::move(r.error);
            return out;
        }
        out.contexts.push_back(std::move(r.context));
    }
    return out;
}

Server::Server(EventLoop& loop, const Config& config, std::vector<TlsContextPtr> tls_contexts)
    : loop_(loop), handshake_timeout_(config.tls_handshake_timeout_ms) {
    for (const auto& l : config.listeners) {
        auto& e = *endpoints_.emplace_back(std::make_unique<Endpoint>());
        listen(e, l.bind, l.port);
    }
    for (std::size_t i = 0; i < config.tls_listeners.size(); ++i) {
        const TlsListener& l = config.tls_listeners[i];
        auto& e = *endpoints_.emplace_back(std::make_unique<Endpoint>());
        e.tls = l;
        e.where = fmt::format("tls_listeners[{}]", i);
        e.context = tls_contexts.at(i);
        listen(e, l.bind, l.port);
    }
    for (auto& e : endpoints_) accept(*e);
}

void Server::listen(Endpoint& e, const std::string& bind, std::uint16_t port) {
    asio::error_code ec;
    auto address = asio::ip::make_address(bind, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot listen on '{}': not an IP address", bind));
    asio::ip::tcp::endpoint endpoint(address, port);
    e.acceptor = std::make_unique<asio::ip::tcp::acceptor>(loop_.io());
    e.acceptor->open(endpoint.protocol());
    e.acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true));
    e.acceptor->bind(endpoint, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", bind, port, ec.message()));
    e.acceptor->listen(asio::socket_base::max_listen_connections);
    auto bound = e.acceptor->local_endpoint();
    log::info("listening for {} connections on {}:{}", e.tls ? "AMQPS (TLS)" : "AMQP", bound.address().to_string(),
              bound.port());
}

std::vector<asio::ip::tcp::endpoint> Server::endpoints() const {
    std::vector<asio::ip::tcp::endpoint> out;
    for (const auto& e : endpoints_) out.push_back(e->acceptor->local_endpoint());
    return out;
}

void Server::accept(Endpoint& e) {
    e.acceptor->async_accept([this, &e](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            Broker::TimeScope scope(loop_.broker());
            auto on_closed = [this](Transport& closed) { connections_.erase(&closed); };
            std::shared_ptr<Transport> connection;
            if (e.tls)
                connection = std::make_shared<TlsConnection>(
                    loop_, std::move(socket), TlsSetup{e.context, e.tls->tls.verify_peer, handshake_timeout_},
                    on_closed);
            else
                connection = std::make_shared<PlainConnection>(loop_, std::move(socket), on_closed);
            connections_.emplace(connection.get(), connection);
            connection->start();
            accept(e);
            return;
        }
        // Out of file descriptors or memory: retrying at once would spin; try again shortly.
        log::warning("accept failed: {}; retrying in 100 ms", ec.message());
        auto retry = std::make_shared<asio::steady_timer>(loop_.io(), std::chrono::milliseconds(100));
        retry->async_wait([this, &e, retry](const asio::error_code& err) {
            if (!err && e.acceptor->is_open()) accept(e);
        });
    });
}

void Server::reload_tls() {
    std::size_t reloaded = 0, listeners = 0;
    for (auto& e : endpoints_) {
        if (!e->tls) continue;
        ++listeners;
        TlsContextResult r = make_tls_context(e->tls->tls, e->where);
        for (const auto& w : r.warnings) log::warning("{}", w);
        if (!r.context) {
            log::error("TLS reload: {}; {} keeps its current certificates", r.error, e->where);
            continue;
        }
        e->context = std::move(r.context);
        ++reloaded;
    }
    if (listeners == 0)
        log::info("TLS reload: there are no TLS listeners");
    else
        log::info("TLS reload: {} of {} TLS listeners have new certificates", reloaded, listeners);
}

void Server::shut_down(std::string_view reason) {
    for (auto& e : endpoints_) {
        asio::error_code ignored;
        e->acceptor->close(ignored);
    }
    std::vector<std::shared_ptr<Transport>> open;
    for (auto& [ptr, c] : connections_) open.push_back(c);
    Broker::TimeScope scope(loop_.broker());
    for (auto& c : open) c->force_close(reason);
    loop_.schedule_turn_end();
}

}  // namespace warren::broker::net
