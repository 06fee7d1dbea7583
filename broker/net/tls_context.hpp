// TLS for Warren's listeners (OpenSSL 3 through asio::ssl): the server context built from a
// listener's TlsOptions, with every file checked and every error naming the key and the file,
// and what a finished handshake says about the client. The AMQPS listeners use it; an HTTPS
// listener makes its context and stream the same way (see README: TLS).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/config.hpp"
#include "broker/connection.hpp"

namespace warren::broker::net {

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;
// Shared: each connection keeps the context it was accepted with, so a reload (SIGHUP) that
// replaces a listener's context leaves open connections as they are.
using TlsContextPtr = std::shared_ptr<asio::ssl::context>;

struct TlsContextResult {
    TlsContextPtr context;              // null on error
    std::string error;                  // "tls_listeners[0].keyfile: ..."
    std::vector<std::string> warnings;  // an expired server certificate: clients will refuse it
};

// Reads and checks certfile, keyfile and cacertfile: readable, PEM, the key matching the
// certificate; sets the versions and the client-certificate policy. `where` names the listener
// in messages ("tls_listeners[0]").
TlsContextResult make_tls_context(const TlsOptions& options, std::string_view where);

// Makes `failure` receive, during the handshake, why the first client certificate that did not
// verify was refused ("certificate 'CN=x' (chain depth 0): certificate has expired").
// `failure` must outlive the handshake.
void record_verify_failure(SSL* ssl, std::string& failure);

// What a finished handshake established, for the EXTERNAL mechanism.
TlsPeer tls_peer_of(SSL* ssl, bool verify_peer);

// A TLS error in words: OpenSSL's reason, why the client certificate was refused if it was,
// and a hint when the client does not speak TLS at all.
std::string describe_tls_error(const asio::error_code& ec, std::string_view verify_failure);

}  // namespace warren::broker::net
