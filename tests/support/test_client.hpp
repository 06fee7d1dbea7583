// A harness that drives the sans-IO broker core without sockets: a TestBroker with a manual
// clock, and TestClients whose Connections are fed encoded frames and whose output is parsed
// back into frames. Nothing sleeps; time moves only through TestBroker::advance().
#pragma once

#include <deque>
#include <functional>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/clock.hpp"
#include "broker/connection.hpp"
#include "protocol/basic_properties.hpp"
#include "protocol/frame.hpp"
#include "protocol/frame_writer.hpp"
#include "protocol/methods.hpp"

namespace warren::testing {

using namespace warren::broker;
using namespace warren::protocol;

class TestBroker {
public:
    // With config.data_dir set, the broker stores and recovers as the real one does; the sync
    // thread's completions run in settle(), which waits for them.
    // `fs` (null: the real file system) and the wall clock's start (for deadlines that outlive
    // a restart) matter only with storage.
    explicit TestBroker(Config config = {}, std::shared_ptr<store::FileSystem> fs = nullptr,
                        std::int64_t unix_base_seconds = 1'700'000'000);
    ~TestBroker();
    ManualClock clock;
    std::unique_ptr<Broker> broker;
    // Memory use the broker sees (its memory probe); tests set it to raise the alarm.
    std::uint64_t memory_used = 0;

    // Runs due timers and pending dispatches until nothing is left; with storage, ends the turn
    // as the event loop does (writes, syncs) and runs what the sync thread posted.
    void settle();
    // With syncs held in the file system, settle() must not wait for them.
    bool block_on_syncs = true;
    void advance(std::chrono::milliseconds ms);

    // The default vhost's queue of that name, or nullptr.
    Queue* queue(std::string_view name);

private:
    bool run_posted();
    std::mutex posted_mutex_;
    std::condition_variable posted_cv_;
    std::vector<std::function<void()>> posted_;
};

// One frame the broker sent, owning its bytes.
struct ServerFrame {
    FrameType type;
    std::uint16_t channel;
    std::vector<std::byte> payload;
    MethodId method() const;  // method frames only
    template <class M>
    std::optional<M> as() const {
        if (type != FrameType::Method || !(method() == M::id)) return std::nullopt;
        Reader r(std::span<const std::byte>(payload).subspan(4));
        M m;
        decode_fields(r, m);
        if (!r.ok()) return std::nullopt;
        return m;
    }
};

// A message as a client receives it: the method frame, then header and body.
struct Delivery {
    ServerFrame method;
    std::vector<std::byte> properties_bytes;
    std::string body;
    BasicProperties properties() const { return *decode_properties(properties_bytes); }
    // The headers property as an owned table (empty when absent).
    FieldTable headers() const;
    // From basic.deliver or basic.get-ok (0 for basic.return).
    std::uint64_t delivery_tag() const;
    bool redelivered() const;
    std::string exchange() const;
    std::string routing_key() const;
    std::string consumer_tag() const;  // basic.deliver only
    bool is_return() const { return method.method() == BasicReturn::id; }
};

// Client capabilities the harness advertises by default.
std::vector<std::string> default_capabilities();

class TestClient {
public:
    // Connects: protocol header, start-ok (PLAIN guest/guest), tune-ok, open.
    explicit TestClient(TestBroker& broker, bool handshake = true, bool loopback = true,
                        std::vector<std::string> capabilities = default_capabilities());
    // A connection from `peer` (a TLS one, say), before the protocol header.
    TestClient(TestBroker& broker, PeerInfo peer);
    ~TestClient();

    Connection& connection() { return *connection_; }
    TestBroker& test_broker() { return broker_; }
    bool transport_closed() const { return host_.closed; }
    // Closed at once, its output dropped (ConnectionHost::abort_transport).
    bool transport_aborted() const { return host_.aborted; }
    // Times the connection said wants_read() may have changed.
    int read_state_changes() const { return host_.read_state_changes; }
    // The next ConnectionHost::output_ready() throws, as a transport out of memory would.
    void fail_next_output_ready() { host_.fail_next_output_ready = true; }
    // The broker sent close-ok and waits for this client to close its socket.
    bool transport_awaits_client_close() const { return host_.awaiting_peer_close && !host_.closed; }

    // ---- sending
    void send_raw(std::span<const std::byte> bytes);
    void send_raw(std::string_view bytes) { send_raw(std::as_bytes(std::span(bytes.data(), bytes.size()))); }
    template <class M>
    void send(std::uint16_t channel, const M& method) {
        ByteBuffer out;
        write_method_frame(out, channel, method);
        send_raw(out.span());
    }
    // The handshake step by step, for a client constructed with handshake = false.
    void send_protocol_header();
    void send_start_ok(std::string_view user = "guest", std::string_view password = "guest",
                       const std::vector<std::string>& capabilities = default_capabilities(),
                       std::string_view mechanism = "PLAIN");
    void send_tune_ok(std::uint16_t channel_max, std::uint32_t frame_max, std::uint16_t heartbeat);
    void send_open(std::string_view vhost = "/");
    // Header, start-ok and tune-ok with the given values, open; returns whether open-ok came.
    bool handshake(std::uint16_t channel_max, std::uint32_t frame_max, std::uint16_t heartbeat);

    void open_channel(std::uint16_t channel);
    // channel.close from the client; takes the close-ok.
    void close_channel(std::uint16_t channel);
    // channel.close-ok, in answer to the broker's channel.close.
    void close_ok(std::uint16_t channel) { send(channel, ChannelCloseOk{}); }
    // connection.close from the client.
    void close_connection();
    // The socket went away without a close.
    void lose_transport() { connection_->on_transport_closed("test: transport lost"); broker_.settle(); }
    // basic.publish with header and body frames (body split at frame_max).
    void publish(std::uint16_t channel, std::string_view exchange, std::string_view routing_key, std::string_view body,
                 const BasicProperties& props = {}, bool mandatory = false);
    void publish_n(std::uint16_t channel, std::string_view exchange, std::string_view routing_key, int n);
    // The frames of one publish, to send several in one batch of input (one send_raw).
    std::vector<std::byte> encode_publish(std::uint16_t channel, std::string_view exchange,
                                          std::string_view routing_key, std::string_view body,
                                          const BasicProperties& props = {}, bool mandatory = false);
    void declare_queue(std::uint16_t channel, std::string_view name, const FieldTable& args = {},
                       bool durable = false, bool exclusive = false, bool auto_delete = false);
    void bind_queue(std::uint16_t channel, std::string_view queue, std::string_view exchange, std::string_view key,
                    const FieldTable& args = {});
    void declare_exchange(std::uint16_t channel, std::string_view name, std::string_view type,
                          const FieldTable& args = {});
    void consume(std::uint16_t channel, std::string_view queue, std::string_view tag = "", bool no_ack = false,
                 const FieldTable& args = {}, bool exclusive = false);
    void qos(std::uint16_t channel, std::uint16_t prefetch, bool global = false);
    void ack(std::uint16_t channel, std::uint64_t tag, bool multiple = false);
    void nack(std::uint16_t channel, std::uint64_t tag, bool multiple = false, bool requeue = true);
    void reject(std::uint16_t channel, std::uint64_t tag, bool requeue = true);
    void get(std::uint16_t channel, std::string_view queue, bool no_ack = false);
    void cancel(std::uint16_t channel, std::string_view tag);
    void confirm_select(std::uint16_t channel) { send(channel, ConfirmSelect{}); }
    void tx_select(std::uint16_t channel) { send(channel, TxSelect{}); }
    void tx_commit(std::uint16_t channel) { send(channel, TxCommit{}); }
    void tx_rollback(std::uint16_t channel) { send(channel, TxRollback{}); }
    void delete_queue(std::uint16_t channel, std::string_view queue, bool if_unused = false, bool if_empty = false);
    void purge_queue(std::uint16_t channel, std::string_view queue);

    // ---- output flow
    // While held, the harness leaves the broker's output in the Connection (nothing is written),
    // as a slow socket would. Releasing lets the next receive drain it.
    void hold_output(bool hold) { hold_output_ = hold; }

    // ---- receiving
    // Every frame the broker has sent since the last call.
    std::vector<ServerFrame> frames();
    // Methods of type M the broker has sent (other frames are kept for later calls).
    template <class M>
    std::vector<M> take() {
        pump();
        std::vector<M> out;
        for (auto it = inbox_.begin(); it != inbox_.end();) {
            if (auto m = it->as<M>()) {
                keep_.push_back(std::move(*it));
                it = inbox_.erase(it);
                out.push_back(*keep_.back().as<M>());
            } else {
                ++it;
            }
        }
        return out;
    }
    // Deliveries (basic.deliver, basic.get-ok or basic.return with their content), in order.
    std::vector<Delivery> deliveries();
    // The connection.close or channel.close the broker sent, if any.
    std::optional<ConnectionClose> connection_close();
    std::optional<ChannelClose> channel_close(std::uint16_t channel);

private:
    struct Host : ConnectionHost {
        bool closed = false;
        bool aborted = false;
        bool fail_next_output_ready = false;
        bool awaiting_peer_close = false;
        int read_state_changes = 0;
        void output_ready() override {
            // A transport that fails to take output (in the server: memory for its flush list).
            if (fail_next_output_ready) {
                fail_next_output_ready = false;
                throw std::runtime_error("test: output_ready failed");
            }
        }
        void close_transport() override { closed = true; }
        void abort_transport() override { closed = aborted = true; }
        void await_peer_close() override { awaiting_peer_close = true; }
        void read_state_changed() override { ++read_state_changes; }
    };
    void pump();

    TestBroker& broker_;
    Host host_;
    std::unique_ptr<Connection> connection_;
    std::vector<std::byte> pending_;   // partial frames of broker output
    std::deque<ServerFrame> inbox_;    // parsed, not yet taken
    std::deque<ServerFrame> keep_;     // taken frames stay alive: decoded views point into them
    bool header_skipped_ = false;
    bool hold_output_ = false;
};

// A byte vector from hex text ("01 00 0a ...", spaces optional).
std::vector<std::byte> hex(std::string_view text);

// One raw frame: type, channel, size, payload, end octet.
std::vector<std::byte> raw_frame(std::uint8_t type, std::uint16_t channel, std::span<const std::byte> payload,
                                 std::uint8_t end = frame_end);
inline std::vector<std::byte> raw_frame(std::uint8_t type, std::uint16_t channel, std::string_view payload,
                                        std::uint8_t end = frame_end) {
    return raw_frame(type, channel, std::as_bytes(std::span(payload.data(), payload.size())), end);
}
// A method's payload: class id, method id and the encoded arguments.
template <class M>
std::vector<std::byte> method_payload(const M& method) {
    ByteBuffer out;
    Writer w(out);
    encode_method(w, method);
    return std::vector<std::byte>(out.span().begin(), out.span().end());
}
// A field table from key/value pairs, in order: table({{"x-message-ttl", std::int32_t{100}}}).
inline FieldTable table(std::initializer_list<std::pair<std::string, FieldValue>> entries) {
    FieldTable t;
    for (const auto& [k, v] : entries) t.set(k, v);
    return t;
}
// Reply text of a close as a std::string.
inline std::string text_of(const ConnectionClose& c) { return std::string(c.reply_text.view()); }
inline std::string text_of(const ChannelClose& c) { return std::string(c.reply_text.view()); }

}  // namespace warren::testing
