// The HTTPS stream: the management API's HTTP connection over TLS, with the certificate helpers
// of the AMQPS listeners (tls_context.hpp). The handshake runs before the first read; the HTTP
// connection's request timeout bounds a client that never finishes it.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "broker/log.hpp"
#include "broker/net/http_stream.hpp"
#include "broker/net/tls_context.hpp"

namespace warren::broker::net {

class TlsHttpStream final : public HttpStream {
public:
    // `context` is kept: a reload (SIGHUP) that replaces the listener's leaves this one as it is.
    TlsHttpStream(asio::ip::tcp::socket socket, TlsContextPtr context, std::string peer)
        : context_(std::move(context)), stream_(std::move(socket), *context_), peer_(std::move(peer)) {
        record_verify_failure(stream_.native_handle(), verify_failure_);
    }

    void read_some(std::span<char> into, Done done) override {
        if (handshaken_) return stream_.async_read_some(asio::buffer(into.data(), into.size()), std::move(done));
        stream_.async_handshake(asio::ssl::stream_base::server,
                                [this, into, done = std::move(done)](const asio::error_code& ec) mutable {
                                    if (ec) {
                                        log::peer(log::Level::Warning, peer_, "HTTPS handshake failed: {}",
                                                  describe_tls_error(ec, verify_failure_));
                                        return done(ec, 0);
                                    }
                                    handshaken_ = true;
                                    read_some(into, std::move(done));
                                });
    }
    void write(const std::string& bytes, Done done) override {
        asio::async_write(stream_, asio::buffer(bytes), std::move(done));
    }
    void close() override {
        // No close_notify exchange: the HTTP connection is done with the peer either way.
        asio::error_code ignored;
        stream_.lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        stream_.lowest_layer().close(ignored);
    }

private:
    TlsContextPtr context_;
    TlsStream stream_;
    std::string peer_;
    std::string verify_failure_;
    bool handshaken_ = false;
};

}  // namespace warren::broker::net
