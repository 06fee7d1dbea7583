// What the event loop and the Server know of a connection's transport, whether it is plain
// TCP or TLS (TcpConnection<Stream>): one virtual call per flush or close, never per byte.
#pragma once

#include <memory>
#include <string_view>

#include "broker/connection.hpp"

namespace warren::broker::net {

class Transport : public ConnectionHost, public std::enable_shared_from_this<Transport> {
public:
    // Starts reading (a TLS transport runs its handshake first).
    virtual void start() = 0;
    // Writes pending output (called by the event loop at the end of a turn).
    virtual void flush() = 0;
    // Broker shutdown: connection.close with 320 CONNECTION_FORCED (a TLS handshake still
    // under way is simply dropped).
    virtual void force_close(std::string_view reason) = 0;
};

}  // namespace warren::broker::net
