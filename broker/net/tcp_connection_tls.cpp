// TcpConnection's TLS I/O: OpenSSL driven on the non-blocking socket through TlsSession. A read
// takes all the socket has (up to 256 KiB, into one buffer shared by the loop's connections) and
// decrypts every complete record in it; a write encrypts a turn's output in chunks of 64 KiB
// (records of 16 KiB) and sends each chunk with one send.
#include <fmt/format.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "broker/net/event_loop.hpp"
#include "broker/net/tcp_connection.hpp"

namespace warren::broker::net {

namespace {
constexpr std::size_t receive_chunk = 256 * 1024;
constexpr std::size_t read_chunk = 256 * 1024;
constexpr std::size_t discard_chunk = 4096;
// Plaintext encrypted per send; the session's output buffer (per connection) is about this large.
constexpr std::size_t write_chunk = 64 * 1024;
// A piece of output at least a record long (a large body) is encrypted from where it is; smaller
// ones are packed together first, as OpenSSL makes at least one record per call.
constexpr std::size_t record_size = 16 * 1024;

// One loop thread, one connection reading at a time: what a read leaves unread is copied into
// its session (keep_input) before the handler returns.
std::span<std::byte> receive_buffer() {
    thread_local std::vector<std::byte> buffer(receive_chunk);
    return buffer;
}

std::vector<std::byte>& stage_buffer() {
    thread_local std::vector<std::byte> buffer;
    return buffer;
}
}  // namespace

// Runs the handshake as far as the input allows and sends what it makes.
template <class Stream>
void TcpConnection<Stream>::tls_handshake_step() {
    if constexpr (is_tls) {
        if (phase_ != Phase::Handshake) return;
        TlsSession::Status status = tls_.session.handshake();
        switch (tls_send()) {
            case Sent::All:
                break;
            case Sent::Waiting:
                return;  // tls_on_writable comes back here
            case Sent::Failed:
                on_handshake(asio::error_code(tls_.send_error, asio::error::get_system_category()));
                return;
        }
        switch (status) {
            case TlsSession::Status::Ok:
                on_handshake({});
                return;
            case TlsSession::Status::WantRead:
                tls_.session.keep_input();  // empty: the session read all of it
                socket_.async_wait(asio::socket_base::wait_read,
                                   [self = self()](const asio::error_code& ec) { self->tls_on_readable(ec, false); });
                return;
            case TlsSession::Status::Closed:
                on_handshake(asio::error::eof);
                return;
            case TlsSession::Status::Failed:
                on_handshake(tls_.session.error());
                return;
        }
    }
}

// The socket has input (or, with `resume`, the session has input from before): one recv, then
// every complete record is decrypted into the core while it wants to read.
template <class Stream>
void TcpConnection<Stream>::tls_on_readable(const asio::error_code& ec, bool resume) {
    if constexpr (is_tls) {
        if (phase_ == Phase::Closed) {
            reading_ = false;
            return;
        }
        const bool handshake = phase_ == Phase::Handshake;
        auto& session = tls_.session;
        if (!resume) {
            asio::error_code failed = ec;
            bool closed = false;
            if (!ec) {
                auto buffer = receive_buffer();
                ssize_t n = ::recv(socket_.native_handle(), buffer.data(), buffer.size(), 0);
                if (n > 0) {
                    session.set_input(buffer.first(static_cast<std::size_t>(n)));
                } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                    // Nothing after all: wait again.
                    if (handshake) return tls_handshake_step();
                    reading_ = false;
                    return start_read();
                } else if (n == 0) {
                    closed = true;
                } else {
                    failed = asio::error_code(errno, asio::error::get_system_category());
                }
            }
            if (closed || failed) {
                if (handshake)
                    on_handshake(closed ? asio::error_code(asio::error::eof) : failed);
                else
                    on_input_end(closed ? std::string("connection closed by the client")
                                        : fmt::format("socket error: {}", failed.message()));
                return;
            }
        }
        if (handshake) return tls_handshake_step();
        TlsSession::start_reads();
        {
            Broker::TimeScope scope(loop_.broker());
            try {
                tls_decrypt();
            } catch (const std::exception& e) {
                fail_internal(e.what());
            }
        }
        if (phase_ == Phase::Closed) {
            reading_ = false;
            return;
        }
        session.keep_input();
        reading_ = false;
        // Records OpenSSL made while reading (a key update's answer) go out with the turn's output.
        if (session.has_output()) output_ready();
        loop_.schedule_turn_end();
        start_read();
    }
}

// Decrypts the session's input into the core while it wants to read; while closing, into a
// scratch space, only to see the peer's close_notify. Ends the connection when the peer does.
template <class Stream>
void TcpConnection<Stream>::tls_decrypt() {
    if constexpr (is_tls) {
        auto& session = tls_.session;
        while ((phase_ == Phase::Open && core_->wants_read()) || phase_ == Phase::AwaitingPeer ||
               phase_ == Phase::Closing) {
            const bool discard = phase_ == Phase::Closing;
            auto space = core_->read_space(discard ? discard_chunk : read_chunk);
            std::size_t n = 0;
            switch (session.read(space, n)) {
                case TlsSession::Status::Ok:
                    if (!discard) core_->on_read(n);
                    // Input used up, nothing left inside OpenSSL: another SSL_read could only
                    // fail for want of input (one per receive, that is per record in client loads).
                    if (!session.has_buffered()) return;
                    break;
                case TlsSession::Status::WantRead:
                    return;
                case TlsSession::Status::Closed:
                    return on_input_end("connection closed by the client");
                case TlsSession::Status::Failed: {
                    // The alert the session made (bad_record_mac, ...) goes out if the socket
                    // takes it now; the connection ends either way.
                    auto alert = session.output();
                    if (!alert.empty()) {
                        ssize_t sent =
                            ::send(socket_.native_handle(), alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                        (void)sent;
                    }
                    return on_input_end(fmt::format("TLS error: {}", describe_tls_error(session.error(), {})));
                }
            }
        }
    }
}

// Writes gather_ (and whatever the session made by itself): in the turn if the socket takes it
// all, else from tls_on_writable. A failure is reported from a handler of its own, as Asio
// reports the plain variant's.
template <class Stream>
void TcpConnection<Stream>::tls_flush() {
    if constexpr (is_tls) {
        switch (tls_write()) {
            case Sent::All:
                end_write_now();
                return;
            case Sent::Waiting:
                return;
            case Sent::Failed:
                asio::error_code ec = tls_.send_error
                                          ? asio::error_code(tls_.send_error, asio::error::get_system_category())
                                          : tls_.session.error();
                asio::post(loop_.io(), [self = self(), ec] { self->on_written(ec); });
                return;
        }
    }
}

template <class Stream>
typename TcpConnection<Stream>::Sent TcpConnection<Stream>::tls_write() {
    if constexpr (is_tls) {
        while (true) {
            if (Sent sent = tls_send(); sent != Sent::All) return sent;
            if (tls_.gather_at == gather_.size()) return Sent::All;
            if (!tls_encrypt_chunk()) return Sent::Failed;
        }
    }
    return Sent::Failed;
}

// Sends the session's records; on a full socket, waits for it to drain (tls_on_writable).
template <class Stream>
typename TcpConnection<Stream>::Sent TcpConnection<Stream>::tls_send() {
    if constexpr (is_tls) {
        auto& session = tls_.session;
        while (session.has_output()) {
            auto out = session.output();
            ssize_t n = ::send(socket_.native_handle(), out.data(), out.size(), MSG_NOSIGNAL);
            if (n > 0) {
                session.output_sent(static_cast<std::size_t>(n));
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                socket_.async_wait(asio::socket_base::wait_write,
                                   [self = self()](const asio::error_code& ec) { self->tls_on_writable(ec); });
                return Sent::Waiting;
            } else {
                tls_.send_error = n < 0 ? errno : EPIPE;
                return Sent::Failed;
            }
        }
        return Sent::All;
    }
    return Sent::Failed;
}

// Encrypts the next write_chunk of gather_ into the session's output.
template <class Stream>
bool TcpConnection<Stream>::tls_encrypt_chunk() {
    if constexpr (is_tls) {
        auto& t = tls_;
        auto& stage = stage_buffer();
        stage.clear();
        std::size_t budget = write_chunk;
        while (t.gather_at < gather_.size() && budget > 0) {
            const asio::const_buffer& piece = gather_[t.gather_at];
            const auto* from = static_cast<const std::byte*>(piece.data()) + t.gather_offset;
            std::size_t take = std::min(piece.size() - t.gather_offset, budget);
            if (stage.empty() && take >= record_size) {
                if (!t.session.write({from, take})) return false;
            } else {
                stage.insert(stage.end(), from, from + take);
            }
            budget -= take;
            t.gather_offset += take;
            if (t.gather_offset == piece.size()) {
                ++t.gather_at;
                t.gather_offset = 0;
            }
        }
        return stage.empty() || t.session.write(stage);
    }
    return false;
}

template <class Stream>
void TcpConnection<Stream>::tls_on_writable(const asio::error_code& ec) {
    if constexpr (is_tls) {
        if (phase_ == Phase::Closed) {
            writing_ = false;
            return;
        }
        if (phase_ == Phase::Handshake) {
            if (ec)
                on_handshake(ec);
            else
                tls_handshake_step();
            return;
        }
        if (ec) return on_written(ec);
        switch (tls_write()) {
            case Sent::All:
                on_written({});
                return;
            case Sent::Waiting:
                return;
            case Sent::Failed:
                on_written(tls_.send_error ? asio::error_code(tls_.send_error, asio::error::get_system_category())
                                           : tls_.session.error());
                return;
        }
    }
}

template void TcpConnection<TlsSession>::tls_handshake_step();
template void TcpConnection<TlsSession>::tls_on_readable(const asio::error_code&, bool);
template void TcpConnection<TlsSession>::tls_decrypt();
template void TcpConnection<TlsSession>::tls_flush();
template TcpConnection<TlsSession>::Sent TcpConnection<TlsSession>::tls_write();
template TcpConnection<TlsSession>::Sent TcpConnection<TlsSession>::tls_send();
template bool TcpConnection<TlsSession>::tls_encrypt_chunk();
template void TcpConnection<TlsSession>::tls_on_writable(const asio::error_code&);

}  // namespace warren::broker::net
