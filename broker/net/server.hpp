// The AMQP and AMQPS listeners: accepts TCP connections, runs TLS on the tls_listeners' ones,
// and owns each connection until its socket is closed. Re-reads the TLS certificates on
// request (SIGHUP) for the connections accepted from then on.
#pragma once

#include <asio.hpp>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/config.hpp"
#include "broker/net/event_loop.hpp"
#include "broker/net/tls_context.hpp"

namespace warren::broker::net {

class Transport;

// The TLS listeners' contexts, one per entry of tls_listeners, read from their files; warnings
// (an expired server certificate) are logged. On error, `error` names the key and the file.
struct TlsContexts {
    std::vector<TlsContextPtr> contexts;
    std::string error;
};
TlsContexts load_tls_contexts(const std::vector<TlsListener>& listeners);

class Server {
public:
    // `tls_contexts` from load_tls_contexts(config.tls_listeners).
    Server(EventLoop& loop, const Config& config, std::vector<TlsContextPtr> tls_contexts);

    // The ports actually bound (port 0 in the configuration picks a free one): the plain
    // listeners', then the TLS ones'.
    std::vector<asio::ip::tcp::endpoint> endpoints() const;
    // Stops accepting and closes every connection with 320 CONNECTION_FORCED.
    void shut_down(std::string_view reason);
    // Reads each TLS listener's files again: new connections get the new certificates, open
    // ones keep theirs. A listener whose files fail keeps its current context (logged).
    void reload_tls();

private:
    struct Endpoint {
        std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
        std::optional<TlsListener> tls;  // a TLS listener's settings
        std::string where;               // "tls_listeners[0]", for messages
        TlsContextPtr context;           // replaced by reload_tls()
    };

    void listen(Endpoint& endpoint, const std::string& bind, std::uint16_t port);
    void accept(Endpoint& endpoint);

    EventLoop& loop_;
    std::chrono::milliseconds handshake_timeout_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_;
    // Every connection whose socket is open, pending I/O or not: a connection blocked by the
    // memory alarm is neither read nor written to and must live on. A connection removes itself
    // when its socket closes (handlers still running hold it until they finish). Only a running
    // io_context calls back, and main() destroys the Server only after the loop has stopped.
    std::unordered_map<Transport*, std::shared_ptr<Transport>> connections_;
};

}  // namespace warren::broker::net
