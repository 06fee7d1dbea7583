// One TCP connection driving one sans-IO Connection, over a plain socket or TLS: large reads
// (plain: straight into the connection's read buffer), and one gathered write of all pending
// output per loop turn. Owned by the Server until its socket is closed, whatever I/O is
// pending: a connection that is neither read (memory alarm) nor written to is still open.
// Pending Asio operations hold it too (shared_from_this). The TLS variant (its I/O in
// tcp_connection_tls.cpp) first runs the handshake, bounded by a timer, then creates the Connection.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "broker/connection.hpp"
#include "broker/net/tls_context.hpp"
#include "broker/net/tls_session.hpp"
#include "broker/net/transport.hpp"

namespace warren::broker::net {

class EventLoop;

// How a TLS connection is set up: the context of its listener (kept alive by the connection
// across reloads), the listener's client-certificate policy and the handshake's time limit.
struct TlsSetup {
    TlsContextPtr context;
    bool verify_peer = false;
    std::chrono::milliseconds handshake_timeout{5000};
};

// Stream: asio::ip::tcp::socket for plain AMQP, TlsSession for AMQPS (the socket is ours in both).
template <class Stream>
class TcpConnection final : public Transport {
public:
    static constexpr bool is_tls = std::is_same_v<Stream, TlsSession>;

    // `on_closed` runs once the socket is closed (the Server then lets go of the connection).
    TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket,
                  std::function<void(Transport&)> on_closed) requires(!is_tls);
    TcpConnection(EventLoop& loop, asio::ip::tcp::socket socket, TlsSetup tls,
                  std::function<void(Transport&)> on_closed) requires(is_tls);
    ~TcpConnection() override;

    void start() override;
    void flush() override;
    void force_close(std::string_view reason) override;

    // ConnectionHost
    void output_ready() override;
    void close_transport() override;
    void abort_transport() override;
    void await_peer_close() override;
    void read_state_changed() override;

private:
    enum class Phase {
        Handshake,     // TLS only: the handshake runs; there is no Connection yet
        Open,          // reading (unless the core says not to) and writing
        AwaitingPeer,  // close-ok sent: still reading into the core until the peer closes
        Closing,       // writing what is left, then FIN, then discarding input until EOF
        Closed,        // the socket is closed
    };

    std::shared_ptr<TcpConnection> self() { return std::static_pointer_cast<TcpConnection>(shared_from_this()); }
    void make_core();
    void on_handshake(const asio::error_code& ec);
    void on_handshake_timeout();
    void start_read();
    void on_read(const asio::error_code& ec, std::size_t n);
    void read_again();
    void read_now();
    void on_input_end(const std::string& reason);
    bool owes_end_write();
    bool write_now();
    // TLS only (tcp_connection_tls.cpp).
    enum class Sent { All, Waiting, Failed };
    void tls_handshake_step();
    void tls_on_readable(const asio::error_code& ec, bool resume);
    void tls_decrypt();
    void tls_flush();
    Sent tls_write();
    Sent tls_send();
    bool tls_encrypt_chunk();
    void tls_on_writable(const asio::error_code& ec);
    void end_write_now();
    void on_written(const asio::error_code& ec);
    void shut_down_send();
    void finish_close();
    void fail_internal(std::string_view what);

    EventLoop& loop_;
    // What only the TLS variant has; the plain one gets an empty struct.
    struct TlsState {
        explicit TlsState(TlsSetup s) : setup(std::move(s)), session(setup.context, verify_failure) {}
        TlsSetup setup;
        std::string verify_failure;  // why the client certificate was refused, if it was
        TlsSession session;          // after verify_failure, which its verify callback writes
        // How far gather_ has been encrypted, and whether a write of the core's output is under
        // way (rather than only the session's own records: the handshake's end, an alert).
        std::size_t gather_at = 0;
        std::size_t gather_offset = 0;
        bool core_write = false;
        bool close_notify_made = false;
        int send_error = 0;  // errno of a failed send
    };
    struct NoTls {};
    asio::ip::tcp::socket socket_;
    [[no_unique_address]] std::conditional_t<is_tls, TlsState, NoTls> tls_;
    std::function<void(Transport&)> on_closed_;
    PeerInfo peer_;  // moved into the Connection once it exists
    std::unique_ptr<Connection> core_;
    std::vector<asio::const_buffer> gather_;
    Phase phase_ = is_tls ? Phase::Handshake : Phase::Open;
    bool reading_ = false;
    bool writing_ = false;
    bool flush_queued_ = false;
    bool send_shut_down_ = false;  // our FIN (TLS: after close_notify) is out
    // The TLS handshake's deadline, then the linger after we close.
    asio::steady_timer deadline_;
};

using PlainConnection = TcpConnection<asio::ip::tcp::socket>;
using TlsConnection = TcpConnection<TlsSession>;

}  // namespace warren::broker::net
