// One client connection of the load generator: a non-blocking socket registered with the
// generator's epoll, the client side of the handshake (PLAIN guest/guest, tune, open, channel 1),
// frame splitting over large reads, and batched output (or, client-like, a send per message and
// small reads). What a connection does once channel 1 is open (publish, consume, declare) is the
// load generator's business (load_generator.cpp).
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "protocol/byte_buffer.hpp"
#include "protocol/frame.hpp"

struct ssl_st;

namespace warren::bench {

// From now on every new connection speaks TLS (warren-bench --tls): an OpenSSL client context
// that does not verify the broker (the bench measures, it does not authenticate). False, with
// `error`, if OpenSSL cannot make one.
bool enable_tls(std::string& error);

enum class ConnState { Idle, Connecting, Handshake, Open, Closing, Closed, Failed };

class Connection {
public:
    Connection() = default;
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Starts a non-blocking connect; epoll events for the socket carry `tag` in data.ptr.
    bool start(int epoll_fd, const sockaddr_in& addr, void* tag);

    // Reads as the common clients do: at most 8 KiB per recv (the Java client's buffered stream;
    // the Go client's is 4 KiB), or the rest of a larger frame in one recv, as both read bodies.
    void set_client_like() { client_like_ = true; }

    ConnState state() const { return state_; }
    bool is_open() const { return state_ == ConnState::Open; }
    bool is_live() const { return state_ != ConnState::Closed && state_ != ConnState::Failed; }
    const std::string& error() const { return error_; }
    std::uint32_t frame_max() const { return frame_max_; }
    bool is_blocked() const { return blocked_; }  // connection.blocked from the broker
    // When the bytes being handed to on_frame were read (steady clock, ns): set at each read of
    // an event's rounds, so a frame read in a later round is not timed at the event's start.
    std::uint64_t read_at_ns() const { return read_at_ns_; }

    // Handles an epoll event: completes the connect, reads everything available, answers the
    // handshake, and hands each frame for channel 1 after the handshake to on_frame(const Frame&).
    // Output appended by on_frame is flushed once, after the whole read.
    template <class OnFrame>
    void on_event(std::uint32_t events, OnFrame&& on_frame);

    // Output: append whole frames, then flush(). can_write() is false while the socket is full.
    protocol::ByteBuffer& out() { return out_; }
    std::size_t pending_output() const { return out_.size() - out_pos_; }
    bool can_write() const { return state_ == ConnState::Open && !write_blocked_; }
    void flush();
    // Writes one message with one send (what is left after a short write waits in out()).
    void send_whole(std::span<const std::byte> bytes);

    // Sends connection.close; the connection is Closed when close-ok arrives.
    void close();
    void fail(std::string error);

private:
    std::size_t read_some();  // bytes read; 0 when nothing is available or the socket failed
    std::size_t next_read_size() const;
    // One send; returns the bytes written (0 if the socket is full or failed).
    std::size_t write_some(const std::byte* data, std::size_t size);
    template <class OnFrame>
    void process_frames(OnFrame& on_frame);
    // Handshake, connection-level methods and channel.close. Returns false if the frame is the
    // role's business.
    bool is_internal(const protocol::Frame& frame) const;
    void on_internal_frame(const protocol::Frame& frame);
    void on_connected();
    void continue_tls_handshake();
    void begin_amqp();
    std::size_t read_tls();
    void set_want_write(bool on);
    void release();

    int fd_ = -1;
    ssl_st* ssl_ = nullptr;  // with --tls
    bool tls_handshaking_ = false;
    int epoll_fd_ = -1;
    void* tag_ = nullptr;
    ConnState state_ = ConnState::Idle;
    std::string error_;
    std::uint32_t frame_max_ = 131072;  // until tune: what any broker's connection.start fits in
    bool blocked_ = false;
    bool write_blocked_ = false;
    bool want_write_ = false;
    bool client_like_ = false;
    protocol::ByteBuffer in_;
    std::uint64_t read_at_ns_ = 0;
    std::size_t read_chunk_ = 16 * 1024;  // grows to 1 MiB for busy connections, stays small for idle ones
    protocol::ByteBuffer out_;
    std::size_t out_pos_ = 0;  // bytes of out_ already sent
};

template <class OnFrame>
void Connection::on_event(std::uint32_t events, OnFrame&& on_frame) {
    if (state_ == ConnState::Connecting) {
        if (tls_handshaking_)
            continue_tls_handshake();
        else if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected();
        if (state_ != ConnState::Handshake) return;
    }
    if ((events & EPOLLOUT) && write_blocked_) {
        write_blocked_ = false;
        flush();
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        // A few rounds at most, so that one busy connection cannot starve the others.
        for (int round = 0; round < 4 && is_live(); ++round) {
            std::size_t space = next_read_size();
            std::size_t got = read_some();
            if (got == 0) break;
            read_at_ns_ = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                         std::chrono::steady_clock::now().time_since_epoch())
                                                         .count());
            process_frames(on_frame);
            if (got < space) break;
        }
        if (is_live()) flush();
    }
}

template <class OnFrame>
void Connection::process_frames(OnFrame& on_frame) {
    std::size_t pos = 0;
    while (is_live()) {
        auto parse = protocol::parse_frame(in_.span().subspan(pos), frame_max_);
        if (parse.status == protocol::FrameStatus::NeedMore) break;
        if (parse.status == protocol::FrameStatus::Error) {
            fail(parse.error.text());
            return;
        }
        pos += parse.consumed;
        if (is_internal(parse.frame)) {
            on_internal_frame(parse.frame);
        } else {
            on_frame(parse.frame);
        }
    }
    in_.consume_front(pos);
}

}  // namespace warren::bench
