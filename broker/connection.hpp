// One AMQP connection, sans-IO: bytes in (frames parsed in place from the read buffer),
// frames out (appended to an OutputQueue that the net layer writes). Runs the handshake,
// heartbeats, channel 0, and hands channel frames to its Channels. The same object is driven
// by a TcpConnection in the server and by a test harness in the unit tests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/auth.hpp"
#include "broker/life_token.hpp"
#include "broker/output_queue.hpp"
#include "broker/stats.hpp"
#include "broker/timer_queue.hpp"
#include "protocol/byte_buffer.hpp"
#include "protocol/frame.hpp"
#include "protocol/frame_writer.hpp"
#include "protocol/reply_code.hpp"

namespace warren::broker {

class Broker;
class Channel;
class VHost;
class Queue;

// What the transport provides to a connection.
class ConnectionHost {
public:
    virtual ~ConnectionHost() = default;
    // There is output to write: write it all in one gathered write, soon.
    virtual void output_ready() = 0;
    // Write what is pending, then close the socket.
    virtual void close_transport() = 0;
    // Close the socket now, dropping what is pending (a client that does not read its output).
    virtual void abort_transport() = 0;
    // Write what is pending and keep reading into the connection, but leave the socket open
    // for the peer to close: we sent close-ok, and its recipient closes first. The connection
    // bounds the wait with a timer and then calls close_transport().
    virtual void await_peer_close() = 0;
    // wants_read() may have changed (memory alarm, closing).
    virtual void read_state_changed() = 0;
};

// What a TLS handshake established, for the EXTERNAL mechanism.
struct TlsPeer {
    bool verify_peer = false;  // the listener asks for client certificates and verifies them
    // The client's certificate, verified against the listener's CAs (only asked for under
    // verify_peer), and its subject's common names joined with "," (as RabbitMQ does).
    bool has_certificate = false;
    std::optional<std::string> common_name;
};

struct PeerInfo {
    std::string address;  // "127.0.0.1:53422"
    bool is_loopback = true;
    std::string local_address;  // "127.0.0.1:5672": the listener's end (the management API's names)
    std::optional<TlsPeer> tls;  // set on a TLS listener's connections
};

class Connection {
public:
    enum class State { AwaitingHeader, AwaitingStartOk, AwaitingTuneOk, AwaitingOpen, Open, Closing, Closed };

    Connection(Broker& broker, ConnectionHost& host, PeerInfo peer);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // ---- input
    // Space for at least `n` more bytes at the end of the read buffer; read into it, then
    // call on_read with the count. Complete frames are handled in place.
    std::span<std::byte> read_space(std::size_t n);
    void on_read(std::size_t n);
    void feed(std::span<const std::byte> bytes);  // read_space + copy + on_read
    void feed(std::string_view bytes) { feed(std::as_bytes(std::span(bytes.data(), bytes.size()))); }
    // False while the connection must not be read: blocked by the memory alarm (unless it is
    // waiting for close-ok), its answers to its own input piling up unread
    // (output_pauses_reading), or closed.
    bool wants_read() const;

    // ---- output
    bool has_output() const { return !pending_.empty(); }
    // Moves pending output to the in-flight buffer and returns it; the net layer writes it
    // and calls end_write(). Returns nullptr if a write is already in flight or nothing is pending.
    const OutputQueue* begin_write();
    void end_write();
    std::size_t output_level() const { return pending_.size() + in_flight_.size(); }
    // A reply that promises something stored (a durable declare-ok, tx.commit-ok) is in the
    // output: nothing more is written until storage ticket `ticket` is settled. If storing
    // fails, the held output is dropped and the connection closed with 541.
    void hold_output_until(std::uint64_t ticket);
    bool output_held() const { return output_holds_ > 0; }
    // Below the output high-water mark: deliveries may be added.
    bool is_writable() const { return output_level() < output_high_water_ && !closing_soon_; }
    // Output that is not deliveries from queues (replies, returns, get-ok: answers to this
    // connection's input; and direct reply-to deliveries) above the high-water mark: the
    // connection is not read until it drains, so a client that sends and never reads cannot
    // make it grow. Deliveries from queues do not count: they stop at the mark by themselves,
    // and a consumer's acks must still be read while they wait.
    bool output_pauses_reading() const {
        return output_level() - pending_.paced() - in_flight_.paced() >= output_high_water_;
    }
    // A direct reply-to delivery (output caused by another connection) may be added: false once
    // more than connection_output_limit bytes of them wait unsent, and the connection is then
    // closed (at once, dropping its output; its unacked messages go back to their queues).
    bool accepts_foreign_output();
    // Bytes of input and output held in this connection's buffers, for the memory alarm (bodies
    // sent by reference are counted with their messages; reserved, untouched capacity is not).
    std::size_t buffered_bytes() const {
        return input_.size() + pending_.buffered_bytes() + in_flight_.buffered_bytes();
    }

    // ---- lifecycle
    // The socket closed or failed: tear everything down (unacked messages are requeued).
    void on_transport_closed(std::string_view reason);
    bool is_closed() const { return state_ == State::Closed; }
    // Closed after sending close-ok; the client has not closed its socket yet.
    bool is_awaiting_peer_close() const { return awaiting_peer_close_; }
    State state() const { return state_; }
    // Sends connection.close with the error and waits for close-ok; channels are torn down now.
    void close_with_error(const protocol::AmqpError& error);
    // The same from a place that must not tear channels down (a queue delivering, a channel
    // walking its ledger): done by a timer due now, and meanwhile nothing more is delivered.
    // With no error, the transport is aborted instead (a client that does not read).
    void close_soon(std::string reason, std::optional<protocol::AmqpError> error);
    // An operator's action (its vhost or user was deleted): 320 CONNECTION_FORCED with `text`,
    // and the connection lets go of its vhost at once (exclusive queues deleted), since the
    // vhost may be destroyed before the client's close-ok.
    void force_close(std::string_view text);
    // A heartbeat or close timeout; the event loop calls broker.timers().fire_due().

    // ---- for channels
    Broker& broker() const { return broker_; }
    VHost* vhost() const { return vhost_; }
    std::uint64_t id() const { return id_; }
    const PeerInfo& peer() const { return peer_; }
    const std::string& user() const { return user_; }
    // The user's permissions in this connection's vhost, looked up again after any change.
    const Access& access() {
        if (access_.epoch != broker_auth_epoch()) refresh_access();
        return access_;
    }
    std::uint32_t frame_max() const { return frame_max_; }
    bool client_has_capability(std::string_view name) const;

    OutputQueue& out() { return pending_; }
    template <class M>
    void send_method(std::uint16_t channel, const M& method) {
        protocol::write_method_frame(pending_.bytes(), channel, method);
        notify_output();
    }
    // Content header and body frames, the body split at frame_max. `properties` are the
    // encoded properties to send (the message's own, or a modified copy).
    void send_content(std::uint16_t channel, const MessageRef& message, std::span<const std::byte> properties);
    void notify_output();

    // A channel saw a publish: while a resource alarm is on, this connection gets blocked.
    void note_publish();
    // A memory or disk alarm was raised or cleared: `on` says whether publishers are blocked.
    void on_alarm(bool on);
    bool is_blocked() const { return blocked_; }

    // Exclusive queues this connection declared (deleted when it closes).
    void add_exclusive_queue(std::uint64_t queue_id) { exclusive_queues_.push_back(queue_id); }

    // Channel access for tests and the broker.
    Channel* channel(std::uint16_t id);
    std::size_t channel_count() const { return channels_.size(); }

    // ---- for the management API (read only)
    const std::map<std::uint16_t, std::unique_ptr<Channel>>& channels() const { return channels_; }
    Stats& stats() { return stats_; }
    const Stats& stats() const { return stats_; }
    const protocol::FieldTable& client_properties() const { return client_properties_; }
    std::uint16_t channel_max() const { return channel_max_; }
    std::uint16_t heartbeat() const { return heartbeat_; }
    // Wall-clock milliseconds since the epoch when the connection was accepted.
    std::int64_t connected_at_ms() const { return connected_at_ms_; }

private:
    void process_input();
    bool start_body_stream(std::span<const std::byte> available);
    std::size_t partial_frame_rest() const;
    bool partial_frame_is_content() const;
    void report_channel_status(Channel& channel, const protocol::AmqpError& error);
    bool handle_frame(const protocol::Frame& frame);  // false: stop processing input
    void handle_protocol_header();
    void handle_channel0(const protocol::Frame& frame);
    void handle_channel_frame(const protocol::Frame& frame);
    void on_start_ok(std::span<const std::byte> args);
    void login_external();
    void accept_login(std::string user);
    void refuse_login(std::string_view mechanism, std::string_view refusal);
    void on_tune_ok(std::span<const std::byte> args);
    void on_open(std::span<const std::byte> args);
    void on_close(std::span<const std::byte> args);
    void on_close_ok();
    void await_client_close();
    void cancel_close_timer();
    void send_start();
    void start_heartbeats();
    void on_heartbeat_tick();
    void close_channel(std::uint16_t id);
    void teardown(std::string_view reason);
    void fail_handshake(const protocol::AmqpError& error);
    void on_unexpected_close();
    void log_closed(std::string_view reason);
    std::uint64_t broker_auth_epoch() const;
    void refresh_access();
    // connection.open's checks, in RabbitMQ's order (rabbit_reader:handle_method0/2).
    std::optional<protocol::AmqpError> check_vhost_open(VHost& vhost);

    Broker& broker_;
    ConnectionHost& host_;
    PeerInfo peer_;
    std::uint64_t id_ = 0;
    State state_ = State::AwaitingHeader;

    protocol::ByteBuffer input_;
    std::size_t input_pos_ = 0;  // bytes of input_ already handled
    // A large body frame being streamed: its channel (0: none) and payload bytes still to come;
    // after them, its frame-end octet.
    std::uint16_t stream_channel_ = 0;
    std::uint32_t stream_remaining_ = 0;
    // The message the last read_space() pointed into (empty: it pointed into input_). Held
    // so that the read cannot land in freed memory if the channel drops the message meanwhile.
    MessageRef direct_target_;
    // The connection is publishing large bodies: reads stop short of the next body (see
    // read_space), so that the body is read into its message rather than into input_.
    bool large_bodies_ = false;
    bool large_body_seen_ = false;  // a large body frame was handled during this read
    bool peeked_ = false;           // the last read_space() was a short one (large_bodies_)
    OutputQueue pending_;
    OutputQueue in_flight_;
    bool writing_ = false;
    std::size_t output_high_water_;
    std::size_t output_limit_;
    bool output_was_full_ = false;
    bool closing_soon_ = false;  // close_soon() was called

    std::uint32_t frame_max_ = protocol::frame_min_size;  // until tune-ok
    std::uint16_t channel_max_ = 0;
    std::uint16_t heartbeat_ = 0;
    std::string user_;
    VHost* vhost_ = nullptr;
    std::string vhost_name_;  // for the log, after a forced close lets go of vhost_
    Access access_;           // epoch 0: not looked up yet
    protocol::FieldTable client_properties_;
    bool auth_failure_close_ = false;

    std::map<std::uint16_t, std::unique_ptr<Channel>> channels_;

    TimerId heartbeat_timer_ = 0;
    std::uint64_t bytes_received_ = 0;
    std::uint64_t bytes_received_at_tick_ = 0;
    int silent_ticks_ = 0;
    bool sent_since_tick_ = false;
    TimerId close_timer_ = 0;

    bool has_published_ = false;
    bool blocked_ = false;          // not reading: a resource alarm
    bool sent_blocked_ = false;
    bool torn_down_ = false;
    bool awaiting_peer_close_ = false;  // close-ok sent; the client closes the socket
    bool logged_open_ = false;
    std::string close_reason_;

    std::vector<std::uint64_t> exclusive_queues_;

    int output_holds_ = 0;
    Stats stats_;
    std::int64_t connected_at_ms_ = 0;
    LifeToken life_;
};

}  // namespace warren::broker
