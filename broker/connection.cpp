// The connection core: frame loop, channel 0, heartbeats, closing. The handshake
// (start/tune/open) is in connection_handshake.cpp.
#include "broker/connection.hpp"

#include <fmt/format.h>

#include <cstring>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/log.hpp"
#include "broker/server_texts.hpp"
#include "broker/vhost.hpp"
#include "protocol/methods.hpp"
#include "protocol/reader.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
constexpr std::size_t min_read_chunk = 64 * 1024;
// Body frames at least this large are streamed to their channel as they arrive.
constexpr std::uint32_t stream_threshold = 16 * 1024;
// ... and once this much of one is still to come, read straight into the message.
constexpr std::uint32_t direct_read_threshold = 64 * 1024;
constexpr auto close_ok_timeout = std::chrono::seconds(10);
constexpr auto handshake_timeout = std::chrono::seconds(10);
}  // namespace

Connection::Connection(Broker& broker, ConnectionHost& host, PeerInfo peer)
    : broker_(broker),
      host_(host),
      peer_(std::move(peer)),
      output_high_water_(broker.config().connection_output_high_water) {
    id_ = broker_.register_connection(*this);
    // RabbitMQ's handshake_timeout: a peer that does not finish the handshake is dropped.
    close_timer_ = broker_.timers().schedule(broker_.now() + handshake_timeout, [this] {
        close_timer_ = 0;
        if (state_ != State::Open && state_ != State::Closed) {
            teardown("handshake timeout");
            host_.close_transport();
        }
    });
}

Connection::~Connection() {
    teardown(close_reason_.empty() ? "connection destroyed" : close_reason_);
}

// ---- input ----------------------------------------------------------------------------------

std::span<std::byte> Connection::read_space(std::size_t n) {
    // In the middle of a large body frame with nothing else buffered: read the rest of the
    // body straight into the message, with no copy through the read buffer.
    if (stream_remaining_ >= direct_read_threshold && input_pos_ == input_.size()) {
        if (Channel* c = channel(stream_channel_)) {
            auto space = c->body_write_space();
            if (space.size() >= stream_remaining_) {
                direct_read_ = true;
                return space.first(stream_remaining_);
            }
        }
    }
    direct_read_ = false;
    n = std::max(n, min_read_chunk);
    std::size_t used = input_.size();
    input_.reserve(used + n);
    return {input_.data() + used, input_.capacity() - used};
}

void Connection::on_read(std::size_t n) {
    bytes_received_ += n;
    if (direct_read_) {
        direct_read_ = false;
        stream_remaining_ -= static_cast<std::uint32_t>(n);
        Channel* c = channel(stream_channel_);
        Status status = c ? c->body_written(n) : std::nullopt;
        if (status) report_channel_status(*c, *status);
        process_input();
        return;
    }
    // The bytes were written into read_space(): account for them without copying.
    input_.extend(n);
    process_input();
}

void Connection::feed(std::span<const std::byte> bytes) {
    while (true) {
        auto space = read_space(bytes.size());
        std::size_t n = std::min(space.size(), bytes.size());
        if (n) std::memcpy(space.data(), bytes.data(), n);
        on_read(n);
        bytes = bytes.subspan(n);
        if (bytes.empty() || state_ == State::Closed) break;
    }
}

bool Connection::wants_read() const { return state_ != State::Closed && !blocked_; }

// A body frame whose payload is not all here yet: hand the payload to its channel as it
// arrives instead of buffering the whole frame. Only for a well-formed body frame on an open
// channel that is reading a body it fits in; anything else waits for the whole frame.
bool Connection::start_body_stream(std::span<const std::byte> available) {
    if (state_ != State::Open || available.size() < frame_header_size) return false;
    Reader r(available.first(frame_header_size));
    std::uint8_t type = r.u8();
    std::uint16_t channel_id = r.u16();
    std::uint32_t size = r.u32();
    if (type != static_cast<std::uint8_t>(FrameType::Body) || size < stream_threshold) return false;
    Channel* c = channel(channel_id);
    if (!c || c->is_closing() || !c->expects_body() || size > c->body_remaining()) return false;
    stream_channel_ = channel_id;
    stream_remaining_ = size;
    input_pos_ += frame_header_size;
    return true;
}

void Connection::process_input() {
    while (state_ != State::Closed) {
        auto available = input_.span().subspan(input_pos_);
        if (state_ == State::AwaitingHeader) {
            if (available.size() < 8) break;
            handle_protocol_header();
            continue;
        }
        if (stream_remaining_ > 0) {
            std::size_t n = std::min<std::size_t>(available.size(), stream_remaining_);
            if (n == 0) break;
            input_pos_ += n;
            stream_remaining_ -= static_cast<std::uint32_t>(n);
            if (Channel* c = channel(stream_channel_); c && !c->is_closing()) {
                if (Status status = c->on_body_frame(available.first(n))) report_channel_status(*c, *status);
            }
            continue;
        }
        if (stream_channel_ != 0) {
            // The streamed frame's end octet.
            if (available.empty()) break;
            std::uint8_t end = std::to_integer<std::uint8_t>(available[0]);
            if (end != frame_end) {
                FrameError e{FrameErrorKind::BadFrameEnd, static_cast<std::uint8_t>(FrameType::Body), stream_channel_};
                e.end_octet = end;
                close_with_error(AmqpError{ReplyCode::FrameError, e.text(), {}});
                break;
            }
            ++input_pos_;
            stream_channel_ = 0;
            continue;
        }
        FrameParse parsed = parse_frame(available, frame_max_);
        if (parsed.status == FrameStatus::NeedMore) {
            if (start_body_stream(available)) continue;
            break;
        }
        if (parsed.status == FrameStatus::Error) {
            // The frame boundary is lost: nothing after this can be read.
            close_with_error(AmqpError{ReplyCode::FrameError, parsed.error.text(), {}});
            input_pos_ = input_.size();
            break;
        }
        input_pos_ += parsed.consumed;
        if (!handle_frame(parsed.frame)) break;
    }
    if (state_ == State::Closed || state_ == State::Closing) input_pos_ = input_.size();
    input_.consume_front(input_pos_);
    input_pos_ = 0;
    // Keep a large read buffer only while large frames are arriving.
    if (input_.empty() && input_.capacity() > 4 * min_read_chunk) input_.shrink_to(min_read_chunk);

    for (auto& [id, channel] : channels_)
        if (channel->has_pending_confirms()) channel->flush_confirms();
}

void Connection::report_channel_status(Channel& channel, const AmqpError& error) {
    if (error.is_hard())
        close_with_error(error);
    else
        channel.begin_close(error);
}

void Connection::handle_protocol_header() {
    auto header = input_.span().subspan(input_pos_, 8);
    input_pos_ += 8;
    auto h = reinterpret_cast<const unsigned char*>(header.data());
    bool amqp = std::memcmp(h, "AMQP", 4) == 0;
    // RabbitMQ accepts 0-9-1 and the 0-9 header (1,1,0,9) for the 0-9-1 framing.
    bool v091 = amqp && h[4] == 0 && h[5] == 0 && h[6] == 9 && h[7] == 1;
    bool v09 = amqp && h[4] == 1 && h[5] == 1 && h[6] == 0 && h[7] == 9;
    if (!v091 && !v09) {
        // Answer with the header we support, then close (AMQP 0-9-1 section 4.2.2).
        pending_.bytes().append(protocol_header, sizeof protocol_header);
        notify_output();
        close_reason_ = amqp ? fmt::format("unsupported protocol version {}.{}.{}.{}", h[4], h[5], h[6], h[7])
                             : fmt::format("bad protocol header {}", erlang_binary(header));
        teardown(close_reason_);
        host_.close_transport();
        return;
    }
    send_start();
    state_ = State::AwaitingStartOk;
}

bool Connection::handle_frame(const Frame& frame) {
    if (state_ == State::Closing) {
        // After our connection.close only close-ok (or a crossing close) matters.
        if (frame.type == FrameType::Method && frame.channel == 0 && frame.payload.size() >= 4) {
            Reader r(frame.payload);
            MethodId id{r.u16(), r.u16()};
            if (id == ConnectionCloseOk::id || id == ConnectionClose::id) {
                if (id == ConnectionClose::id) send_method(0, ConnectionCloseOk{});
                on_close_ok();
                return false;
            }
        }
        return true;
    }
    if (frame.type == FrameType::Heartbeat) {
        // rabbit_command_assembler:analyze_frame/2 knows a heartbeat only with an empty payload.
        if (!frame.payload.empty()) {
            close_with_error(texts::heartbeat_with_payload(frame));
            return false;
        }
        if (frame.channel != 0) {
            close_with_error(texts::heartbeat_on_channel(frame));
            return false;
        }
        return true;
    }
    if (frame.channel == 0) {
        handle_channel0(frame);
    } else if (state_ != State::Open) {
        fail_handshake(texts::channel_frame_before_open(frame));
    } else {
        handle_channel_frame(frame);
    }
    return state_ != State::Closed && state_ != State::Closing;
}

void Connection::handle_channel0(const Frame& frame) {
    if (frame.type != FrameType::Method) {
        close_with_error(texts::unexpected_frame_on_channel0(frame));
        return;
    }
    Reader r(frame.payload);
    MethodId id{r.u16(), r.u16()};
    if (!r.ok()) {
        close_with_error(texts::method_frame_too_short(frame));
        return;
    }
    auto args = frame.payload.subspan(4);
    switch (state_) {
    case State::AwaitingStartOk:
        if (id == ConnectionStartOk::id) return on_start_ok(args);
        break;
    case State::AwaitingTuneOk:
        if (id == ConnectionTuneOk::id) return on_tune_ok(args);
        break;
    case State::AwaitingOpen:
        if (id == ConnectionOpen::id) return on_open(args);
        break;
    case State::Open:
        if (id == ConnectionClose::id) return on_close(args);
        if (id == ConnectionCloseOk::id) return on_unexpected_close();
        // A client may send these to a server that sent them first; nothing to do.
        if (id == ConnectionBlocked::id || id == ConnectionUnblocked::id) return;
        // There is no credential that expires yet: a new secret is accepted as it is.
        if (id == ConnectionUpdateSecret::id) {
            send_method(0, ConnectionUpdateSecretOk{});
            return;
        }
        break;
    default:
        break;
    }
    if (state_ == State::Open)
        close_with_error(texts::unexpected_method_channel0(id));
    else
        fail_handshake(texts::unexpected_method_in_handshake(id, state_));
}

void Connection::handle_channel_frame(const Frame& frame) {
    auto it = channels_.find(frame.channel);
    if (frame.type == FrameType::Method) {
        Reader r(frame.payload);
        MethodId id{r.u16(), r.u16()};
        if (!r.ok()) {
            close_with_error(texts::method_frame_too_short(frame));
            return;
        }
        auto args = frame.payload.subspan(4);
        if (it == channels_.end()) {
            if (id != ChannelOpen::id) {
                close_with_error(texts::expected_channel_open(id));
                return;
            }
            // RabbitMQ's channel_max caps how many channels are open, not the channel id.
            if (channel_max_ != 0 && channels_.size() >= channel_max_) {
                close_with_error(texts::too_many_channels(channels_.size(), channel_max_));
                return;
            }
            channels_.emplace(frame.channel, std::make_unique<Channel>(*this, frame.channel));
            send_method(frame.channel, ChannelOpenOk{});
            return;
        }
        Channel& channel = *it->second;
        if (channel.is_closing()) {
            // RabbitMQ drops every frame of a closing channel until close-ok; the channel id
            // is still taken, so a channel.open is a second open.
            if (id == ChannelCloseOk::id) {
                channels_.erase(it);
            } else if (id == ChannelClose::id) {
                send_method(frame.channel, ChannelCloseOk{});
            } else if (id == ChannelOpen::id) {
                close_with_error(texts::second_channel_open(id));
            }
            return;
        }
        if (channel.expects_content()) {
            close_with_error(texts::expected_content_header_or_body(channel.expects_body(), channel.content_method()));
            return;
        }
        if (id == ChannelOpen::id) {
            close_with_error(texts::second_channel_open(id));
            return;
        }
        Status status = channel.on_method_frame(id, args);
        if (status) {
            report_channel_status(channel, *status);
            return;
        }
        if (id == ChannelClose::id) channels_.erase(frame.channel);
        return;
    }
    // Content header or body.
    if (it == channels_.end()) {
        close_with_error(texts::content_on_closed_channel(frame));
        return;
    }
    Channel& channel = *it->second;
    if (channel.is_closing()) return;
    Status status = frame.type == FrameType::Header ? channel.on_header_frame(frame.payload)
                                                    : channel.on_body_frame(frame.payload);
    if (status) report_channel_status(channel, *status);
}

Channel* Connection::channel(std::uint16_t id) {
    auto it = channels_.find(id);
    return it == channels_.end() ? nullptr : it->second.get();
}

// ---- output ---------------------------------------------------------------------------------

void Connection::notify_output() {
    sent_since_tick_ = true;
    host_.output_ready();
}

void Connection::send_content(std::uint16_t channel, const MessageRef& message,
                              std::span<const std::byte> properties) {
    auto& bytes = pending_.bytes();
    write_content_header(bytes, channel, class_id::basic, message->body_size(), properties);
    auto body = message->body();
    const std::size_t max_chunk = frame_max_ - frame_overhead;
    while (!body.empty()) {
        std::size_t n = std::min(body.size(), max_chunk);
        Writer w(bytes);
        write_frame_header(w, FrameType::Body, channel, static_cast<std::uint32_t>(n));
        pending_.append_body(message, body.first(n));
        w.u8(frame_end);
        body = body.subspan(n);
    }
    notify_output();
}

const OutputQueue* Connection::begin_write() {
    if (writing_ || pending_.empty()) return nullptr;
    std::swap(pending_, in_flight_);
    writing_ = true;
    return &in_flight_;
}

void Connection::end_write() {
    writing_ = false;
    in_flight_.clear();
    in_flight_.trim(1024 * 1024);
    if (state_ == State::Open && is_writable()) {
        for (auto& [id, channel] : channels_) channel->on_output_drained();
    }
}

// ---- heartbeats -----------------------------------------------------------------------------

void Connection::start_heartbeats() {
    if (heartbeat_ == 0) return;
    // Tick at half the interval: send a heartbeat when nothing else went out during the last
    // tick; give up when nothing came in for two whole intervals (four ticks).
    auto period = std::chrono::milliseconds(heartbeat_ * 500);
    heartbeat_timer_ = broker_.timers().schedule(broker_.now() + period, [this] { on_heartbeat_tick(); });
}

void Connection::on_heartbeat_tick() {
    heartbeat_timer_ = 0;
    if (state_ == State::Closed) return;
    if (blocked_) {
        // A blocked connection is not read, so the client's heartbeats go unseen; RabbitMQ
        // pauses its heartbeat monitor while blocked (rabbit_heartbeat:pause_monitor/1).
        silent_ticks_ = 0;
    } else if (bytes_received_ == bytes_received_at_tick_) {
        if (++silent_ticks_ >= 4) {
            close_reason_ = fmt::format("missed heartbeats from client, timeout: {}s", heartbeat_);
            teardown(close_reason_);
            host_.close_transport();
            return;
        }
    } else {
        silent_ticks_ = 0;
    }
    bytes_received_at_tick_ = bytes_received_;
    if (!sent_since_tick_) {
        write_heartbeat(pending_.bytes());
        host_.output_ready();
    }
    sent_since_tick_ = false;
    start_heartbeats();
}

// ---- closing --------------------------------------------------------------------------------

void Connection::on_close(std::span<const std::byte> args) {
    Reader r(args);
    ConnectionClose m;
    decode_fields(r, m);
    close_reason_ = r.ok() ? fmt::format("client closed the connection ({} {})", m.reply_code, m.reply_text.view())
                           : "client closed the connection";
    send_method(0, ConnectionCloseOk{});
    teardown(close_reason_);
    host_.close_transport();
}

void Connection::on_close_ok() {
    teardown(close_reason_);
    host_.close_transport();
}

void Connection::on_unexpected_close() {
    // connection.close-ok without our close: RabbitMQ treats it as the end of the connection.
    close_reason_ = "client sent connection.close-ok";
    teardown(close_reason_);
    host_.close_transport();
}

void Connection::close_with_error(const AmqpError& error) {
    if (state_ == State::Closed || state_ == State::Closing) return;
    if (state_ != State::Open && state_ != State::AwaitingHeader) {
        fail_handshake(error);
        return;
    }
    close_reason_ = error.text;
    log::warning("connection {} error: {} (class {}, method {})", peer_.address, error.text, error.method.class_id,
                 error.method.method_id);
    for (auto& [id, channel] : channels_) channel->close_down();
    channels_.clear();
    const std::string text = wire_reply_text(error.text);
    send_method(0, ConnectionClose{static_cast<std::uint16_t>(error.code), text, error.method.class_id,
                                   error.method.method_id});
    state_ = State::Closing;
    host_.read_state_changed();
    if (close_timer_) broker_.timers().cancel(close_timer_);
    close_timer_ = broker_.timers().schedule(broker_.now() + close_ok_timeout, [this] {
        close_timer_ = 0;
        teardown(close_reason_);
        host_.close_transport();
    });
}

void Connection::on_transport_closed(std::string_view reason) {
    if (close_reason_.empty()) close_reason_ = std::string(reason);
    teardown(close_reason_);
}

void Connection::teardown(std::string_view reason) {
    if (torn_down_) return;
    torn_down_ = true;
    state_ = State::Closed;
    if (heartbeat_timer_) broker_.timers().cancel(heartbeat_timer_);
    if (close_timer_) broker_.timers().cancel(close_timer_);
    heartbeat_timer_ = close_timer_ = 0;
    for (auto& [id, channel] : channels_) channel->close_down();
    channels_.clear();
    if (vhost_) {
        for (std::uint64_t qid : exclusive_queues_)
            if (Queue* q = vhost_->queue_by_id(qid)) vhost_->delete_queue(*q);
    }
    exclusive_queues_.clear();
    log_closed(reason);
    broker_.unregister_connection(*this);
}

void Connection::log_closed(std::string_view reason) {
    if (logged_open_ || !user_.empty())
        log::info("connection closed: {} user '{}' vhost '{}': {}", peer_.address, user_,
                  vhost_ ? vhost_->name() : std::string_view{}, reason);
    else
        log::info("connection closed: {} before login: {}", peer_.address, reason);
}

// ---- memory alarm ---------------------------------------------------------------------------

void Connection::note_publish() {
    has_published_ = true;
    if (broker_.memory_alarm() && !blocked_) on_memory_alarm(true);
}

void Connection::on_memory_alarm(bool on) {
    if (state_ == State::Closed) return;
    if (on) {
        if (!has_published_ || blocked_) return;
        blocked_ = true;
        if (client_has_capability("connection.blocked") && !sent_blocked_) {
            send_method(0, ConnectionBlocked{"low on memory"});
            sent_blocked_ = true;
        }
        log::info("connection {} blocked: memory alarm", peer_.address);
    } else {
        if (!blocked_) return;
        blocked_ = false;
        if (sent_blocked_) {
            send_method(0, ConnectionUnblocked{});
            sent_blocked_ = false;
        }
        log::info("connection {} unblocked", peer_.address);
    }
    host_.read_state_changed();
}

}  // namespace warren::broker
