// The load generator's connection: socket I/O (optionally TLS, through OpenSSL on the non-blocking
// socket) and the client side of the AMQP handshake.
#include "bench/connection.hpp"

#include <fmt/format.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>

#include "protocol/field_table.hpp"
#include "protocol/frame_writer.hpp"
#include "protocol/methods.hpp"

namespace warren::bench {

namespace {

using namespace warren::protocol;

constexpr std::size_t max_read_chunk = 1024 * 1024;
constexpr std::size_t client_read_chunk = 8 * 1024;

// Announced like a real client, so that brokers send connection.blocked and basic.nack.
const ByteBuffer& client_properties() {
    static const ByteBuffer bytes = [] {
        FieldTable capabilities;
        capabilities.set("publisher_confirms", true);
        capabilities.set("basic.nack", true);
        capabilities.set("consumer_cancel_notify", true);
        capabilities.set("connection.blocked", true);
        FieldTable props;
        props.set("product", "warren-bench");
        props.set("capabilities", std::move(capabilities));
        return encode_table_body(props);
    }();
    return bytes;
}

SSL_CTX* tls_context = nullptr;

std::string tls_error(const char* what) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    return fmt::format("{}: {}", what, buf);
}

MethodId peek_method_id(const Frame& frame) {
    Reader r(frame.payload);
    std::uint16_t class_id = r.u16();
    std::uint16_t method_id = r.u16();
    return {class_id, method_id};
}

}  // namespace

bool enable_tls(std::string& error) {
    if (tls_context) return true;
    tls_context = SSL_CTX_new(TLS_client_method());
    if (!tls_context) {
        error = tls_error("SSL_CTX_new");
        return false;
    }
    SSL_CTX_set_verify(tls_context, SSL_VERIFY_NONE, nullptr);
    // A write may end after a record, and be retried from a buffer that has moved (out_ grows).
    SSL_CTX_set_mode(tls_context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read what the socket has, not a record header and then its body: two recv per record.
    SSL_CTX_set_read_ahead(tls_context, 1);
    return true;
}

Connection::~Connection() {
    release();
}

void Connection::release() {
    if (ssl_) SSL_free(ssl_);
    ssl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);  // also leaves the epoll set
    fd_ = -1;
}

bool Connection::start(int epoll_fd, const sockaddr_in& addr, void* tag) {
    epoll_fd_ = epoll_fd;
    tag_ = tag;
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        fail(fmt::format("socket: {}", std::strerror(errno)));
        return false;
    }
    // We batch frames ourselves; Nagle would only add latency to the last frame of a batch.
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
        fail(fmt::format("connect: {}", std::strerror(errno)));
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = tag_;
    want_write_ = true;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd_, &ev) != 0) {
        fail(fmt::format("epoll_ctl: {}", std::strerror(errno)));
        return false;
    }
    state_ = ConnState::Connecting;
    return true;
}

void Connection::on_connected() {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        fail(fmt::format("connect: {}", std::strerror(err)));
        return;
    }
    if (tls_context) {
        ssl_ = SSL_new(tls_context);
        if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
            fail(tls_error("SSL_new"));
            return;
        }
        SSL_set_connect_state(ssl_);
        tls_handshaking_ = true;
        continue_tls_handshake();
        return;
    }
    begin_amqp();
}

// The TLS handshake, a step per socket event; the connection stays Connecting until it is done.
void Connection::continue_tls_handshake() {
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        tls_handshaking_ = false;
        begin_amqp();
        return;
    }
    switch (SSL_get_error(ssl_, r)) {
        case SSL_ERROR_WANT_READ:
            set_want_write(false);
            break;
        case SSL_ERROR_WANT_WRITE:
            set_want_write(true);
            break;
        default:
            fail(tls_error("TLS handshake"));
    }
}

void Connection::begin_amqp() {
    state_ = ConnState::Handshake;
    out_.append(protocol_header, sizeof protocol_header);
    flush();
}

void Connection::set_want_write(bool on) {
    if (on == want_write_ || fd_ < 0) return;
    want_write_ = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.ptr = tag_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_, &ev);
}

// Pipelined: at least the adaptive chunk (and whatever room the buffer has). Client-like: 8 KiB,
// or the rest of the frame at the head of the buffer if that is more.
std::size_t Connection::next_read_size() const {
    if (!client_like_) return read_chunk_;
    std::size_t need = 0;
    if (in_.size() >= frame_header_size) {
        const std::byte* h = in_.data();
        std::size_t payload =
            std::size_t(h[3]) << 24 | std::size_t(h[4]) << 16 | std::size_t(h[5]) << 8 | std::size_t(h[6]);
        std::size_t whole = frame_header_size + payload + 1;
        if (whole > in_.size()) need = whole - in_.size();
    }
    return std::max(client_read_chunk, need);
}

// TLS: records until none is complete. OpenSSL reads ahead from the socket, so what it holds
// would not wake epoll again: everything readable is decrypted now, whatever the read size.
std::size_t Connection::read_tls() {
    std::size_t total = 0;
    while (true) {
        in_.reserve(in_.size() + 32 * 1024);
        int n = SSL_read(ssl_, in_.data() + in_.size(), static_cast<int>(in_.capacity() - in_.size()));
        if (n > 0) {
            in_.extend(static_cast<std::size_t>(n));
            total += static_cast<std::size_t>(n);
            continue;
        }
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return total;
        if (state_ == ConnState::Closing) {
            state_ = ConnState::Closed;
            release();
        } else {
            fail(e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                     ? std::string("the broker closed the connection")
                     : tls_error("TLS read"));
        }
        ERR_clear_error();
        return total;
    }
}

std::size_t Connection::read_some() {
    if (ssl_) return read_tls();
    std::size_t space = next_read_size();
    in_.reserve(in_.size() + space);
    if (!client_like_) space = in_.capacity() - in_.size();
    ssize_t n = ::recv(fd_, in_.data() + in_.size(), space, 0);
    if (n > 0) {
        in_.extend(static_cast<std::size_t>(n));
        if (!client_like_ && static_cast<std::size_t>(n) == space && read_chunk_ < max_read_chunk) read_chunk_ *= 2;
        return static_cast<std::size_t>(n);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (state_ == ConnState::Closing) {
        state_ = ConnState::Closed;
        release();
    } else {
        fail(n == 0 ? std::string("the broker closed the connection") : fmt::format("recv: {}", std::strerror(errno)));
    }
    return 0;
}

std::size_t Connection::write_some(const std::byte* data, std::size_t size) {
    if (ssl_) {
        // One record per call (partial writes); a record that does not fit is retried with the
        // same bytes on EPOLLOUT, as OpenSSL requires.
        int n = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
        if (n > 0) return static_cast<std::size_t>(n);
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            write_blocked_ = true;
        } else {
            fail(tls_error("TLS write"));
        }
        return 0;
    }
    while (true) {
        ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
        if (n > 0) return static_cast<std::size_t>(n);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            write_blocked_ = true;
        } else {
            fail(fmt::format("send: {}", std::strerror(errno)));
        }
        return 0;
    }
}

void Connection::flush() {
    while (fd_ >= 0 && !write_blocked_ && out_pos_ < out_.size()) {
        out_pos_ += write_some(out_.data() + out_pos_, out_.size() - out_pos_);
    }
    if (fd_ < 0) return;
    if (out_pos_ == out_.size()) {
        out_.clear();
        out_pos_ = 0;
    } else if (out_pos_ > max_read_chunk) {
        out_.consume_front(out_pos_);
        out_pos_ = 0;
    }
    if (state_ != ConnState::Connecting) set_want_write(write_blocked_);
}

void Connection::send_whole(std::span<const std::byte> bytes) {
    if (fd_ < 0) return;
    if (pending_output() > 0 || write_blocked_) {
        out_.append(bytes);
        flush();
        return;
    }
    std::size_t sent = write_some(bytes.data(), bytes.size());
    if (fd_ < 0 || sent == bytes.size()) return;
    out_.append(bytes.subspan(sent));
    flush();  // a short write: the rest now, or on EPOLLOUT once the socket has room
}

void Connection::close() {
    if (state_ == ConnState::Open || state_ == ConnState::Handshake) {
        write_method_frame(out_, 0, ConnectionClose{200, "Goodbye", 0, 0});
        state_ = ConnState::Closing;
        flush();
    } else if (state_ == ConnState::Connecting || state_ == ConnState::Idle) {
        state_ = ConnState::Closed;
        release();
    }
}

void Connection::fail(std::string error) {
    if (!is_live()) return;
    error_ = std::move(error);
    state_ = ConnState::Failed;
    release();
}

bool Connection::is_internal(const Frame& frame) const {
    if (state_ != ConnState::Open) return true;
    if (frame.channel == 0) return true;
    if (frame.type != FrameType::Method) return false;
    return peek_method_id(frame) == ChannelClose::id;
}

void Connection::on_internal_frame(const Frame& frame) {
    if (frame.type == FrameType::Heartbeat) return;  // we ask for none; tolerate them anyway
    if (frame.type != FrameType::Method) {
        if (state_ == ConnState::Closing) return;  // deliveries still in flight while closing
        fail(
            fmt::format("unexpected frame type {} on channel {} during the handshake", int(frame.type), frame.channel));
        return;
    }
    Reader r(frame.payload);
    MethodId id{r.u16(), r.u16()};
    bool known = visit_method(id, r, [&](auto& m) {
        using M = std::remove_cvref_t<decltype(m)>;
        if (!r.ok()) {
            fail(fmt::format("malformed {}", M::name));
        } else if constexpr (std::is_same_v<M, ConnectionClose>) {
            write_method_frame(out_, 0, ConnectionCloseOk{});
            flush();
            if (state_ == ConnState::Closing) {
                state_ = ConnState::Closed;
                release();
            } else {
                fail(fmt::format("the broker closed the connection: {} {}", m.reply_code, m.reply_text.view()));
            }
        } else if constexpr (std::is_same_v<M, ConnectionCloseOk>) {
            state_ = ConnState::Closed;
            release();
        } else if constexpr (std::is_same_v<M, ChannelClose>) {
            if (state_ != ConnState::Closing) {
                fail(fmt::format("the broker closed channel {}: {} {} (method {}.{})", frame.channel, m.reply_code,
                                 m.reply_text.view(), m.class_id, m.method_id));
            }
        } else if constexpr (std::is_same_v<M, ConnectionBlocked>) {
            blocked_ = true;
        } else if constexpr (std::is_same_v<M, ConnectionUnblocked>) {
            blocked_ = false;
        } else if (state_ == ConnState::Closing) {
            // Anything else in flight is dropped until close-ok.
        } else if constexpr (std::is_same_v<M, ConnectionStart>) {
            ConnectionStartOk ok;
            ok.client_properties = TableView::trusted(client_properties().span());
            ok.mechanism = "PLAIN";
            ok.response = std::string_view("\0guest\0guest", 12);
            ok.locale = "en_US";
            write_method_frame(out_, 0, ok);
        } else if constexpr (std::is_same_v<M, ConnectionTune>) {
            // Take the broker's frame_max (131072 if it sets none) and no heartbeats: the bench
            // runs are short and every connection is busy or deliberately idle.
            frame_max_ = m.frame_max == 0 ? 131072 : m.frame_max;
            write_method_frame(out_, 0, ConnectionTuneOk{m.channel_max, frame_max_, 0});
            write_method_frame(out_, 0, ConnectionOpen{"/", "", false});
        } else if constexpr (std::is_same_v<M, ConnectionOpenOk>) {
            write_method_frame(out_, 1, ChannelOpen{});
        } else if constexpr (std::is_same_v<M, ChannelOpenOk>) {
            state_ = ConnState::Open;
        } else {
            fail(fmt::format("unexpected {} on channel {} during the handshake", M::name, frame.channel));
        }
    });
    if (!known) fail(fmt::format("unknown method {}.{}", id.class_id, id.method_id));
}

}  // namespace warren::bench
