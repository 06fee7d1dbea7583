// See test_client.hpp.
#include "support/test_client.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "protocol/frame_writer.hpp"

namespace warren::testing {

TestBroker::TestBroker(Config config, std::shared_ptr<store::FileSystem> fs, std::int64_t unix_base_seconds) {
    clock.set_unix_base(unix_base_seconds);
    // Quiet unless asked: WARREN_TEST_LOG=debug|info|... shows the broker's log lines.
    warren::log::Level level = warren::log::Level::None;
    if (const char* env = std::getenv("WARREN_TEST_LOG")) warren::log::parse_level(env, level);
    warren::log::set_level(level);
    broker = std::make_unique<Broker>(std::move(config), clock);
    broker->memory_probe = [this] { return memory_used; };
    std::string error = broker->start_storage([this](std::function<void()> f) {
        {
            std::lock_guard lock(posted_mutex_);
            posted_.push_back(std::move(f));
        }
        posted_cv_.notify_all();
    }, std::move(fs));
    if (!error.empty()) throw std::runtime_error("storage: " + error);
}

TestBroker::~TestBroker() {
    // The sync thread may still post: stop it (with the broker) before the queue goes.
    broker.reset();
}

bool TestBroker::run_posted() {
    std::vector<std::function<void()>> batch;
    {
        std::lock_guard lock(posted_mutex_);
        batch.swap(posted_);
    }
    for (auto& f : batch) f();
    return !batch.empty();
}

void TestBroker::settle() {
    for (int i = 0; i < 10000; ++i) {
        broker->run_pending();
        bool ran = false;
        if (Durability* d = broker->durability()) {
            broker->end_turn_storage();
            // A sync's completion is posted after the sync thread settles it: wait for the post.
            while (block_on_syncs && d->has_syncs_in_flight()) {
                d->wait_for_syncs();
                std::unique_lock lock(posted_mutex_);
                if (!posted_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !posted_.empty(); }))
                    throw std::runtime_error("the sync thread posted nothing");
                lock.unlock();
                ran = run_posted() || ran;
            }
            ran = run_posted() || ran;
        }
        // Timers due now (a connection closed soon) run in the next turn, as in the event loop.
        auto next = broker->timers().next_deadline();
        if (!broker->has_pending() && !ran && !(next && *next <= clock.now())) return;
    }
    throw std::runtime_error("broker did not settle");
}

void TestBroker::advance(std::chrono::milliseconds ms) {
    clock.advance(ms);
    settle();
}

Queue* TestBroker::queue(std::string_view name) { return broker->default_vhost().find_queue(name); }

std::vector<std::string> default_capabilities() {
    return {"consumer_cancel_notify", "connection.blocked", "authentication_failure_close", "publisher_confirms"};
}

FieldTable Delivery::headers() const {
    BasicProperties p = properties();
    return p.has(property_flag::headers) ? p.headers.to_table() : FieldTable{};
}

std::uint64_t Delivery::delivery_tag() const {
    if (auto d = method.as<BasicDeliver>()) return d->delivery_tag;
    if (auto g = method.as<BasicGetOk>()) return g->delivery_tag;
    return 0;
}

bool Delivery::redelivered() const {
    if (auto d = method.as<BasicDeliver>()) return d->redelivered;
    if (auto g = method.as<BasicGetOk>()) return g->redelivered;
    return false;
}

std::string Delivery::exchange() const {
    if (auto d = method.as<BasicDeliver>()) return std::string(d->exchange.view());
    if (auto g = method.as<BasicGetOk>()) return std::string(g->exchange.view());
    if (auto r = method.as<BasicReturn>()) return std::string(r->exchange.view());
    return {};
}

std::string Delivery::routing_key() const {
    if (auto d = method.as<BasicDeliver>()) return std::string(d->routing_key.view());
    if (auto g = method.as<BasicGetOk>()) return std::string(g->routing_key.view());
    if (auto r = method.as<BasicReturn>()) return std::string(r->routing_key.view());
    return {};
}

std::string Delivery::consumer_tag() const {
    if (auto d = method.as<BasicDeliver>()) return std::string(d->consumer_tag.view());
    return {};
}

MethodId ServerFrame::method() const {
    Reader r(payload);
    std::uint16_t c = r.u16();
    std::uint16_t m = r.u16();
    return {c, m};
}

TestClient::TestClient(TestBroker& broker, bool handshake, bool loopback, std::vector<std::string> capabilities)
    : broker_(broker) {
    connection_ = std::make_unique<Connection>(*broker_.broker, host_,
                                               PeerInfo{loopback ? "127.0.0.1:1" : "192.0.2.1:1", loopback});
    if (!handshake) return;
    send_protocol_header();
    send_start_ok("guest", "guest", capabilities);
    auto tune = take<ConnectionTune>();
    if (tune.empty()) throw std::runtime_error("no connection.tune");
    send_tune_ok(tune[0].channel_max, tune[0].frame_max, 0);
    send_open("/");
    if (take<ConnectionOpenOk>().empty()) throw std::runtime_error("no connection.open-ok");
    frames();  // drop connection.start and anything else
}

TestClient::TestClient(TestBroker& broker, PeerInfo peer) : broker_(broker) {
    connection_ = std::make_unique<Connection>(*broker_.broker, host_, std::move(peer));
}

void TestClient::send_protocol_header() { send_raw(std::string_view(protocol_header, 8)); }

void TestClient::send_start_ok(std::string_view user, std::string_view password,
                               const std::vector<std::string>& capabilities, std::string_view mechanism) {
    FieldTable caps;
    for (auto& c : capabilities) caps.set(c, true);
    FieldTable client_props;
    client_props.set("product", std::string("warren-tests"));
    client_props.set("capabilities", caps);
    ByteBuffer props = encode_table_body(client_props);
    ConnectionStartOk start_ok;
    start_ok.client_properties = TableView::trusted(props.span());
    start_ok.mechanism = mechanism;
    std::string response;
    response += '\0';
    response += user;
    response += '\0';
    response += password;
    start_ok.response = response;
    start_ok.locale = "en_US";
    send(0, start_ok);
}

void TestClient::send_tune_ok(std::uint16_t channel_max, std::uint32_t frame_max, std::uint16_t heartbeat) {
    send(0, ConnectionTuneOk{channel_max, frame_max, heartbeat});
}

void TestClient::send_open(std::string_view vhost) { send(0, ConnectionOpen{vhost}); }

bool TestClient::handshake(std::uint16_t channel_max, std::uint32_t frame_max, std::uint16_t heartbeat) {
    send_protocol_header();
    send_start_ok();
    if (take<ConnectionTune>().empty()) return false;
    send_tune_ok(channel_max, frame_max, heartbeat);
    send_open("/");
    return !take<ConnectionOpenOk>().empty();
}

TestClient::~TestClient() {
    connection_.reset();
    broker_.settle();
}

void TestClient::send_raw(std::span<const std::byte> bytes) {
    connection_->feed(bytes);
    broker_.settle();
}

void TestClient::pump() {
    broker_.settle();
    while (!hold_output_) {
        const OutputQueue* out = connection_->begin_write();
        if (!out) break;
        out->for_each_piece([&](std::span<const std::byte> piece) { pending_.insert(pending_.end(), piece.begin(), piece.end()); });
        connection_->end_write();
        broker_.settle();
    }
    std::size_t pos = 0;
    // A refused protocol header is answered with the 8-byte header itself.
    if (!header_skipped_ && pending_.size() >= 8 && std::memcmp(pending_.data(), "AMQP", 4) == 0) {
        pos = 8;
        header_skipped_ = true;
        ServerFrame f{FrameType::Heartbeat, 0xFFFF, std::vector<std::byte>(pending_.begin(), pending_.begin() + 8)};
        inbox_.push_back(std::move(f));
    }
    header_skipped_ = true;
    while (true) {
        auto parsed = parse_frame(std::span<const std::byte>(pending_).subspan(pos), 0);
        if (parsed.status != FrameStatus::Ready) break;
        inbox_.push_back(ServerFrame{parsed.frame.type, parsed.frame.channel,
                                     std::vector<std::byte>(parsed.frame.payload.begin(), parsed.frame.payload.end())});
        pos += parsed.consumed;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pos));
}

std::vector<ServerFrame> TestClient::frames() {
    pump();
    std::vector<ServerFrame> out(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.end()));
    inbox_.clear();
    return out;
}

std::vector<Delivery> TestClient::deliveries() {
    pump();
    std::vector<Delivery> out;
    std::deque<ServerFrame> rest;
    for (std::size_t i = 0; i < inbox_.size(); ++i) {
        ServerFrame& f = inbox_[i];
        MethodId id = f.type == FrameType::Method ? f.method() : MethodId{};
        bool content = id == BasicDeliver::id || id == BasicGetOk::id || id == BasicReturn::id;
        if (!content || i + 1 >= inbox_.size()) {
            rest.push_back(std::move(f));
            continue;
        }
        Delivery d;
        d.method = std::move(f);
        ServerFrame& header = inbox_[++i];
        Reader r(header.payload);
        r.u16();
        r.u16();
        std::uint64_t size = r.u64();
        auto props = r.rest();
        d.properties_bytes.assign(props.begin(), props.end());
        while (d.body.size() < size && i + 1 < inbox_.size() && inbox_[i + 1].type == FrameType::Body) {
            auto& body = inbox_[++i].payload;
            d.body.append(reinterpret_cast<const char*>(body.data()), body.size());
        }
        out.push_back(std::move(d));
    }
    inbox_ = std::move(rest);
    for (auto& d : out) keep_.push_back(d.method);
    return out;
}

std::optional<ConnectionClose> TestClient::connection_close() {
    auto closes = take<ConnectionClose>();
    if (closes.empty()) return std::nullopt;
    return closes.back();
}

std::optional<ChannelClose> TestClient::channel_close(std::uint16_t channel) {
    pump();
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
        if (it->channel != channel) continue;
        if (auto m = it->as<ChannelClose>()) {
            keep_.push_back(std::move(*it));
            inbox_.erase(it);
            return *keep_.back().as<ChannelClose>();
        }
    }
    return std::nullopt;
}

void TestClient::open_channel(std::uint16_t channel) {
    send(channel, ChannelOpen{});
    take<ChannelOpenOk>();
}

void TestClient::close_channel(std::uint16_t channel) {
    send(channel, ChannelClose{200, "bye", 0, 0});
    take<ChannelCloseOk>();
}

void TestClient::close_connection() { send(0, ConnectionClose{200, "bye", 0, 0}); }

void TestClient::publish(std::uint16_t channel, std::string_view exchange, std::string_view routing_key,
                         std::string_view body, const BasicProperties& props, bool mandatory) {
    send_raw(encode_publish(channel, exchange, routing_key, body, props, mandatory));
}

std::vector<std::byte> TestClient::encode_publish(std::uint16_t channel, std::string_view exchange,
                                                  std::string_view routing_key, std::string_view body,
                                                  const BasicProperties& props, bool mandatory) {
    ByteBuffer out;
    BasicPublish p;
    p.exchange = exchange;
    p.routing_key = routing_key;
    p.mandatory = mandatory;
    write_method_frame(out, channel, p);
    ByteBuffer prop_bytes;
    encode_properties(prop_bytes, props);
    write_content_header(out, channel, class_id::basic, body.size(), prop_bytes.span());
    const std::size_t chunk = connection_->frame_max() - frame_overhead;
    for (std::size_t at = 0; at < body.size(); at += chunk) {
        auto piece = body.substr(at, chunk);
        Writer w(out);
        write_frame_header(w, FrameType::Body, channel, static_cast<std::uint32_t>(piece.size()));
        w.bytes(piece);
        w.u8(frame_end);
    }
    return std::vector<std::byte>(out.span().begin(), out.span().end());
}

void TestClient::publish_n(std::uint16_t channel, std::string_view exchange, std::string_view routing_key, int n) {
    for (int i = 1; i <= n; ++i) publish(channel, exchange, routing_key, "m" + std::to_string(i));
}

void TestClient::declare_queue(std::uint16_t channel, std::string_view name, const FieldTable& args, bool durable,
                               bool exclusive, bool auto_delete) {
    ByteBuffer arg_bytes = encode_table_body(args);
    QueueDeclare d;
    d.queue = name;
    d.durable = durable;
    d.exclusive = exclusive;
    d.auto_delete = auto_delete;
    d.arguments = TableView::trusted(arg_bytes.span());
    send(channel, d);
}

void TestClient::bind_queue(std::uint16_t channel, std::string_view queue, std::string_view exchange,
                            std::string_view key, const FieldTable& args) {
    ByteBuffer arg_bytes = encode_table_body(args);
    QueueBind b;
    b.queue = queue;
    b.exchange = exchange;
    b.routing_key = key;
    b.arguments = TableView::trusted(arg_bytes.span());
    send(channel, b);
}

void TestClient::declare_exchange(std::uint16_t channel, std::string_view name, std::string_view type,
                                  const FieldTable& args) {
    ByteBuffer arg_bytes = encode_table_body(args);
    ExchangeDeclare d;
    d.exchange = name;
    d.type = type;
    d.arguments = TableView::trusted(arg_bytes.span());
    send(channel, d);
}

void TestClient::consume(std::uint16_t channel, std::string_view queue, std::string_view tag, bool no_ack,
                         const FieldTable& args, bool exclusive) {
    ByteBuffer arg_bytes = encode_table_body(args);
    BasicConsume c;
    c.queue = queue;
    c.consumer_tag = tag;
    c.no_ack = no_ack;
    c.exclusive = exclusive;
    c.arguments = TableView::trusted(arg_bytes.span());
    send(channel, c);
}

void TestClient::qos(std::uint16_t channel, std::uint16_t prefetch, bool global) {
    send(channel, BasicQos{0, prefetch, global});
}

void TestClient::ack(std::uint16_t channel, std::uint64_t tag, bool multiple) { send(channel, BasicAck{tag, multiple}); }

void TestClient::nack(std::uint16_t channel, std::uint64_t tag, bool multiple, bool requeue) {
    send(channel, BasicNack{tag, multiple, requeue});
}

void TestClient::reject(std::uint16_t channel, std::uint64_t tag, bool requeue) {
    send(channel, BasicReject{tag, requeue});
}

void TestClient::get(std::uint16_t channel, std::string_view queue, bool no_ack) {
    BasicGet g;
    g.queue = queue;
    g.no_ack = no_ack;
    send(channel, g);
}

void TestClient::cancel(std::uint16_t channel, std::string_view tag) {
    BasicCancel c;
    c.consumer_tag = tag;
    send(channel, c);
}

void TestClient::delete_queue(std::uint16_t channel, std::string_view queue, bool if_unused, bool if_empty) {
    QueueDelete d;
    d.queue = queue;
    d.if_unused = if_unused;
    d.if_empty = if_empty;
    send(channel, d);
}

void TestClient::purge_queue(std::uint16_t channel, std::string_view queue) {
    QueuePurge p;
    p.queue = queue;
    send(channel, p);
}

std::vector<std::byte> raw_frame(std::uint8_t type, std::uint16_t channel, std::span<const std::byte> payload,
                                 std::uint8_t end) {
    ByteBuffer out;
    Writer w(out);
    w.u8(type);
    w.u16(channel);
    w.u32(static_cast<std::uint32_t>(payload.size()));
    w.bytes(payload);
    w.u8(end);
    return std::vector<std::byte>(out.span().begin(), out.span().end());
}

std::vector<std::byte> hex(std::string_view text) {
    std::vector<std::byte> out;
    int nibble = -1;
    for (char c : text) {
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else continue;
        if (nibble < 0) {
            nibble = v;
        } else {
            out.push_back(std::byte(nibble * 16 + v));
            nibble = -1;
        }
    }
    return out;
}

}  // namespace warren::testing
