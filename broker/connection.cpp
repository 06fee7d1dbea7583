// The connection core: frame dispatch, channel 0, output, heartbeats, closing. Reading and
// framing input is in connection_input.cpp, the handshake (start/tune/open) in
// connection_handshake.cpp.
#include "broker/connection.hpp"

#include <fmt/format.h>

#include <cstring>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/message.hpp"
#include "broker/server_texts.hpp"
#include "broker/vhost.hpp"
#include "protocol/methods.hpp"
#include "protocol/reader.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
constexpr auto close_ok_timeout = std::chrono::seconds(10);
constexpr auto handshake_timeout = std::chrono::seconds(10);
// After our close-ok, how long the client gets to close its socket: RabbitMQ's reader waits
// for the heartbeat interval, at most 30 s.
constexpr std::uint16_t peer_close_timeout_max_s = 30;

bool is_connection_method(const Frame& frame, MethodId id) {
    if (frame.type != FrameType::Method || frame.channel != 0 || frame.payload.size() < 4) return false;
    Reader r(frame.payload);
    return MethodId{r.u16(), r.u16()} == id;
}
}  // namespace

Connection::Connection(Broker& broker, ConnectionHost& host, PeerInfo peer)
    : broker_(broker),
      host_(host),
      peer_(std::move(peer)),
      output_high_water_(broker.config().connection_output_high_water),
      output_limit_(broker.config().connection_output_limit) {
    id_ = broker_.register_connection(*this);
    connected_at_ms_ = broker_.clock().unix_ms();
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
    cancel_close_timer();
}

bool Connection::handle_frame(const Frame& frame) {
    if (state_ == State::Closed) {
        // Waiting for the client to close its socket after our close-ok: as RabbitMQ does,
        // answer every further connection.close (a client may send several at once) and
        // ignore everything else.
        if (awaiting_peer_close_ && is_connection_method(frame, ConnectionClose::id))
            send_method(0, ConnectionCloseOk{});
        return awaiting_peer_close_;
    }
    if (state_ == State::Closing) {
        // After our connection.close only close-ok (or a crossing close) matters.
        if (is_connection_method(frame, ConnectionCloseOk::id)) {
            on_close_ok();
        } else if (is_connection_method(frame, ConnectionClose::id)) {
            // A crossing close: the client gets close-ok and closes first.
            send_method(0, ConnectionCloseOk{});
            await_client_close();
        }
        return state_ != State::Closed || awaiting_peer_close_;
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
    return state_ != State::Closed || awaiting_peer_close_;
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
            // rabbit_reader:create_channel/2: the user's max-channels limit.
            if (const User* u = broker_.auth().find_user(user_); u && u->limits.max_channels)
                if (auto limit = limit_reached(u->limits.max_channels, broker_.channels_of_user(user_))) {
                    close_with_error(texts::user_channel_limit(user_, *limit));
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
        // A method that changed durable definitions answers once they are stored.
        Durability* durability = broker_.durability();
        const std::uint64_t definitions_before = durability ? durability->definition_appends() : 0;
        Status status = channel.on_method_frame(id, args);
        if (durability && durability->definition_appends() != definitions_before)
            hold_output_until(durability->ticket());
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

void Connection::hold_output_until(std::uint64_t ticket) {
    ++output_holds_;
    broker_.durability()->when_stored(ticket, [this, alive = life_.watch()](bool ok) {
        if (alive.expired()) return;
        --output_holds_;
        if (ok) {
            host_.output_ready();
            return;
        }
        // The reply in the output promised what the disk does not have: it must not go out.
        pending_.clear();
        close_with_error(amqp_error(ReplyCode::InternalError,
                                    "the broker could not store the change (see its log)"));
    });
}

const OutputQueue* Connection::begin_write() {
    if (writing_ || pending_.empty() || output_holds_ > 0) return nullptr;
    std::swap(pending_, in_flight_);
    writing_ = true;
    stats_.add(Stat::send_oct, in_flight_.size());
    stats_.add(Stat::send_cnt);
    if (vhost_) {
        vhost_->stats().add(Stat::send_oct, in_flight_.size());
        vhost_->stats().add(Stat::send_cnt);
    }
    return &in_flight_;
}

void Connection::end_write() {
    const bool was_paused = output_pauses_reading();
    // Deliveries stop only at the high-water mark (Channel::can_deliver), and only a write's end
    // takes output away: a connection that was below the mark held back no queue, and waking
    // its queues again would cost a dispatch pass and a loop turn per write.
    const bool was_writable = is_writable();
    writing_ = false;
    in_flight_.clear();
    in_flight_.trim(1024 * 1024);
    if (state_ == State::Open && !was_writable && is_writable()) {
        for (auto& [id, channel] : channels_) channel->on_output_drained();
    }
    if (was_paused && wants_read()) host_.read_state_changed();
}

bool Connection::accepts_foreign_output() {
    if (closing_soon_ || state_ != State::Open) return false;
    const std::size_t unsent = pending_.foreign() + in_flight_.foreign();
    if (unsent <= output_limit_) return true;
    // Like redis's client-output-buffer-limit: the client does not read what others send it.
    std::string reason = fmt::format(
        "output limit: {} bytes of direct reply-to deliveries unsent, over "
        "connection_output_limit ({} bytes); the client is not reading",
        unsent, output_limit_);
    log::peer(log::Level::Warning, peer_.address, "connection {} closed: {}", peer_.address, reason);
    close_soon(std::move(reason), std::nullopt);
    return false;
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
    if (!wants_read()) {
        // A connection we do not read (memory alarm, or its output piling up unread) cannot
        // show us its heartbeats; RabbitMQ pauses its heartbeat monitor while blocked
        // (rabbit_heartbeat:pause_monitor/1).
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
    await_client_close();
}

// We sent close-ok, which "tells the recipient that it is safe to release resources for the
// connection and close the socket" (AMQP 0-9-1, connection.close-ok): the client closes first.
// Closing our end at once let a client's reader see the end of the stream before it had handed
// close-ok to the caller (the Go client then reports 501 "EOF"). RabbitMQ's reader waits for the
// client for the heartbeat interval, at most 30 s, then closes; so does this.
void Connection::await_client_close() {
    teardown(close_reason_);
    awaiting_peer_close_ = true;
    const std::uint16_t wait_s =
        heartbeat_ > 0 && heartbeat_ < peer_close_timeout_max_s ? heartbeat_ : peer_close_timeout_max_s;
    close_timer_ = broker_.timers().schedule(broker_.now() + std::chrono::seconds(wait_s), [this] {
        close_timer_ = 0;
        awaiting_peer_close_ = false;
        host_.close_transport();
    });
    host_.await_peer_close();
}

void Connection::cancel_close_timer() {
    if (close_timer_) broker_.timers().cancel(close_timer_);
    close_timer_ = 0;
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
    log::peer(log::Level::Warning, peer_.address, "connection {} error: {} (class {}, method {})", peer_.address,
              log::escaped(error.text, 512), error.method.class_id, error.method.method_id);
    for (auto& [id, channel] : channels_) channel->close_down();
    channels_.clear();
    const std::string text = wire_reply_text(error.text);
    send_method(0, ConnectionClose{static_cast<std::uint16_t>(error.code), text, error.method.class_id,
                                   error.method.method_id});
    state_ = State::Closing;
    host_.read_state_changed();
    cancel_close_timer();
    close_timer_ = broker_.timers().schedule(broker_.now() + close_ok_timeout, [this] {
        close_timer_ = 0;
        teardown(close_reason_);
        host_.close_transport();
    });
}

void Connection::close_soon(std::string reason, std::optional<AmqpError> error) {
    if (closing_soon_ || state_ == State::Closed) return;
    closing_soon_ = true;
    close_reason_ = std::move(reason);
    if (close_timer_) broker_.timers().cancel(close_timer_);
    close_timer_ = broker_.timers().schedule(broker_.now(), [this, error = std::move(error)] {
        close_timer_ = 0;
        if (error) {
            close_with_error(*error);
            host_.close_transport();
        } else {
            teardown(close_reason_);
            host_.abort_transport();
        }
    });
}

void Connection::force_close(std::string_view text) {
    close_with_error(amqp_error(ReplyCode::ConnectionForced, text));
    if (vhost_) {
        for (std::uint64_t qid : exclusive_queues_)
            if (Queue* q = vhost_->queue_by_id(qid)) vhost_->delete_queue(*q);
    }
    exclusive_queues_.clear();
    vhost_ = nullptr;
}

std::uint64_t Connection::broker_auth_epoch() const { return broker_.auth_epoch(); }

void Connection::refresh_access() { access_ = broker_.access(user_, vhost_name_); }

void Connection::on_transport_closed(std::string_view reason) {
    if (close_reason_.empty()) close_reason_ = std::string(reason);
    teardown(close_reason_);
    awaiting_peer_close_ = false;
    cancel_close_timer();
}

void Connection::teardown(std::string_view reason) {
    if (torn_down_) return;
    torn_down_ = true;
    state_ = State::Closed;
    if (heartbeat_timer_) broker_.timers().cancel(heartbeat_timer_);
    heartbeat_timer_ = 0;
    cancel_close_timer();
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
        log::peer(log::Level::Info, peer_.address, "connection closed: {} user '{}' vhost '{}': {}", peer_.address,
                  log::escaped(user_), log::escaped(vhost_name_),
                  log::escaped(reason, 512));
    else
        log::peer(log::Level::Info, peer_.address, "connection closed: {} before login: {}", peer_.address,
                  log::escaped(reason, 512));
}

// ---- memory alarm ---------------------------------------------------------------------------

void Connection::note_publish() {
    has_published_ = true;
    // The messages alone are past the watermark: measure now rather than at the next sample,
    // so that a fast publisher cannot overshoot by what it sends between two samples.
    if (!broker_.memory_alarm() && live_message_bytes() > broker_.memory_limit()) broker_.check_memory();
    if (broker_.publishing_blocked() && !blocked_) on_alarm(true);
}

void Connection::on_alarm(bool on) {
    if (state_ == State::Closed) return;
    if (on) {
        if (!has_published_ || blocked_) return;
        blocked_ = true;
        if (client_has_capability("connection.blocked") && !sent_blocked_) {
            send_method(0, ConnectionBlocked{std::string(broker_.alarm_reason())});
            sent_blocked_ = true;
        }
        log::peer(log::Level::Info, peer_.address, "connection {} blocked: {}", peer_.address, broker_.alarm_reason());
    } else {
        if (!blocked_) return;
        blocked_ = false;
        if (sent_blocked_) {
            send_method(0, ConnectionUnblocked{});
            sent_blocked_ = false;
        }
        log::peer(log::Level::Info, peer_.address, "connection {} unblocked", peer_.address);
    }
    host_.read_state_changed();
}

}  // namespace warren::broker
