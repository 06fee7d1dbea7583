// The input side of a connection: reads into a reused buffer, frames parsed in place, the
// protocol header, and large body frames read straight into their message (or streamed there).
#include <fmt/format.h>

#include <cstring>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "broker/server_texts.hpp"
#include "protocol/reader.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
constexpr std::size_t min_read_chunk = 64 * 1024;
// Body frames at least this large are streamed to their channel as they arrive, and what is
// still to come of one is read straight into the message.
constexpr std::uint32_t stream_threshold = 16 * 1024;
// While a connection publishes large bodies, a read with no body frame in progress takes at
// most this much (plus the rest of a frame already begun): enough for the frame-end octet and
// the next publish's method and content header frames, or the next body frame's header. The
// body after them is then read into its message, not into input_ and copied from there. Two
// system calls per body frame cost less than copying 16 KiB or more through a cold cache.
constexpr std::size_t peek_size = 512;
}  // namespace

std::span<std::byte> Connection::read_space(std::size_t n) {
    direct_target_.reset();
    peeked_ = false;
    const bool buffer_empty = input_pos_ == input_.size();
    // In the middle of a large body frame with nothing else buffered: read the rest of the
    // body straight into the message, with no copy through the read buffer.
    if (stream_remaining_ > 0 && buffer_empty) {
        if (Channel* c = channel(stream_channel_); c && !c->is_closing()) {
            auto space = c->body_write_space();
            if (space.size() >= stream_remaining_) {
                direct_target_ = c->body_message();
                return space.first(stream_remaining_);
            }
        }
    }
    std::size_t used = input_.size();
    if (large_bodies_ && stream_remaining_ == 0) {
        std::size_t want = partial_frame_rest() + peek_size;
        input_.reserve(used + want);
        peeked_ = true;
        return {input_.data() + used, want};
    }
    n = std::max(n, min_read_chunk);
    input_.reserve(used + n);
    return {input_.data() + used, input_.capacity() - used};
}

// Bytes still missing from the frame begun at the end of the read buffer (0: none begun, or
// its header not all here).
std::size_t Connection::partial_frame_rest() const {
    auto buffered = input_.span().subspan(input_pos_);
    if (buffered.size() < frame_header_size) return 0;
    Reader r(buffered.first(frame_header_size));
    r.u8();
    r.u16();
    std::uint32_t size = r.u32();
    if (frame_max_ != 0 && size > frame_max_) return 0;  // refused once parsed
    std::size_t total = std::size_t{size} + frame_overhead;
    return total > buffered.size() ? total - buffered.size() : 0;
}

// The frame begun at the end of the read buffer may lead to a body: a content header or body
// frame, or one whose type is not here yet.
bool Connection::partial_frame_is_content() const {
    auto buffered = input_.span().subspan(input_pos_);
    if (buffered.empty()) return false;
    auto type = std::to_integer<std::uint8_t>(buffered[0]);
    return type == static_cast<std::uint8_t>(FrameType::Header) || type == static_cast<std::uint8_t>(FrameType::Body);
}

void Connection::on_read(std::size_t n) {
    bytes_received_ += n;
    broker_.input().bytes += n;
    stats_.add(Stat::recv_oct, n);
    stats_.add(Stat::recv_cnt);
    if (vhost_) {
        vhost_->stats().add(Stat::recv_oct, n);
        vhost_->stats().add(Stat::recv_cnt);
    }
    if (direct_target_) {
        MessageRef target = std::move(direct_target_);
        stream_remaining_ -= static_cast<std::uint32_t>(n);
        // The channel may have dropped the message while the read was pending (it was closed,
        // or the connection was): the bytes are then part of a frame nobody wants.
        Channel* c = channel(stream_channel_);
        if (c && c->body_message().get() == target.get()) {
            if (Status status = c->body_written(n)) report_channel_status(*c, *status);
        }
        process_input();
        return;
    }
    const bool peeked = std::exchange(peeked_, false);
    large_body_seen_ = false;
    // The bytes were written into read_space(): account for them without copying.
    input_.extend(n);
    process_input();
    // A short read that brought no large body and does not end inside a content frame: the
    // connection has moved on to other traffic, which is read in large chunks again.
    if (peeked && !large_body_seen_ && stream_remaining_ == 0 && !partial_frame_is_content()) large_bodies_ = false;
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

// A blocked connection that we are closing is read again: its close-ok must be seen.
bool Connection::wants_read() const {
    return state_ != State::Closed && (!blocked_ || state_ == State::Closing) && !output_pauses_reading();
}

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
    large_bodies_ = large_body_seen_ = true;
    input_pos_ += frame_header_size;
    return true;
}

void Connection::process_input() {
    while (state_ != State::Closed || awaiting_peer_close_) {
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
        ++broker_.input().frames;
        if (parsed.frame.type == FrameType::Body && parsed.frame.payload.size() >= stream_threshold)
            large_bodies_ = large_body_seen_ = true;
        if (!handle_frame(parsed.frame)) break;
    }
    // Closed for good: nothing more is read. (While closing, a partial close-ok waits for the rest.)
    if (state_ == State::Closed && !awaiting_peer_close_) input_pos_ = input_.size();
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

}  // namespace warren::broker
