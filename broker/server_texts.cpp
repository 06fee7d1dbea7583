// See server_texts.hpp.
#include "broker/server_texts.hpp"

#include <fmt/format.h>

#include "protocol/methods.hpp"

namespace warren::broker::texts {

using protocol::AmqpError;
using protocol::amqp_error;
using protocol::MethodId;
using protocol::ReplyCode;

// rabbit_reader:payload_snippet/1: at most the first 16 octets of the payload.
std::string payload_snippet(std::span<const std::byte> payload) {
    return fmt::format("{} octets = {}", payload.size() <= 16 ? "all" : "first 16",
                       protocol::erlang_binary(payload.size() <= 16 ? payload : payload.first(16)));
}

// rabbit_reader:unexpected_frame/4: a frame that is valid but not allowed where it came.
AmqpError unexpected_frame(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::UnexpectedFrame,
                      fmt::format("type {}, {}", static_cast<int>(frame.type), payload_snippet(frame.payload)));
}

AmqpError heartbeat_on_channel(const protocol::Frame& frame) { return unexpected_frame(frame); }

AmqpError heartbeat_with_payload(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::FrameError, fmt::format("type {}, {}: unknown_frame", static_cast<int>(frame.type),
                                                         payload_snippet(frame.payload)));
}

AmqpError channel_frame_before_open(const protocol::Frame& frame) { return unexpected_frame(frame); }

AmqpError unexpected_frame_on_channel0(const protocol::Frame& frame) { return unexpected_frame(frame); }

// rabbit_command_assembler:analyze_frame/2 does not match a method payload shorter than the
// two ids, so the reader reports an unknown frame.
AmqpError method_frame_too_short(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::FrameError, fmt::format("type 1, {}: unknown_frame", payload_snippet(frame.payload)));
}

// rabbit_reader:handle_method0/2's last clause, with RabbitMQ's names for the states.
AmqpError unexpected_method_channel0(MethodId id) {
    return amqp_error(ReplyCode::ChannelError, "unexpected method in connection state running", id);
}

AmqpError unexpected_method_in_handshake(MethodId id, Connection::State state) {
    std::string_view name = "starting";
    if (state == Connection::State::AwaitingTuneOk) name = "tuning";
    if (state == Connection::State::AwaitingOpen) name = "opening";
    return amqp_error(ReplyCode::ChannelError, fmt::format("unexpected method in connection state {}", name), id);
}

AmqpError expected_channel_open(MethodId id) {
    return amqp_error(ReplyCode::ChannelError, "expected 'channel.open'", id);
}

// rabbit_reader:create_channel/2, reported without a method (0/0).
AmqpError too_many_channels(std::size_t open, std::uint16_t channel_max) {
    return amqp_error(ReplyCode::NotAllowed,
                      fmt::format("number of channels opened ({}) has reached the negotiated channel_max ({})",
                                  open, channel_max));
}

AmqpError user_channel_limit(std::string_view user, std::int64_t limit) {
    return amqp_error(ReplyCode::NotAllowed,
                      fmt::format("number of channels opened for user '{}' has reached the maximum allowed user "
                                  "limit of ({})",
                                  user, limit));
}

// rabbit_binary_parser:assert_utf8/1, raised while decoding, so without a method (0/0).
AmqpError malformed_utf8() { return amqp_error(ReplyCode::FrameError, "Malformed UTF-8 in shortstr"); }

// rabbit_command_assembler:process/2: the error names the method whose content is awaited.
AmqpError expected_content_header_or_body(bool expecting_body, MethodId content_method) {
    return amqp_error(ReplyCode::UnexpectedFrame,
                      expecting_body ? "expected content body, got non content body frame instead"
                                     : "expected content header for class 60, got non content header frame instead",
                      content_method);
}

AmqpError second_channel_open(MethodId id) {
    return amqp_error(ReplyCode::ChannelError, "second 'channel.open' seen", id);
}

AmqpError content_on_closed_channel(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::ChannelError,
                      fmt::format("unexpected content frame on channel {} (not open)", frame.channel));
}

AmqpError unknown_method(MethodId id) {
    return amqp_error(ReplyCode::CommandInvalid,
                      fmt::format("unknown method (class {}, method {})", id.class_id, id.method_id), id);
}

// rabbit_misc:frame_error/2: the arguments as Erlang's ~w prints a binary (always numbers).
// Only the first 128 bytes: they fill more than the 255 bytes of the reply text on the wire, and
// the whole of a 128 KiB frame would make a 500 KB text (and log line).
AmqpError malformed_method(MethodId id, std::span<const std::byte> args) {
    constexpr std::size_t shown = 128;
    std::string bytes;
    for (std::size_t i = 0; i < args.size() && i < shown; ++i) {
        if (i) bytes += ',';
        bytes += std::to_string(std::to_integer<unsigned>(args[i]));
    }
    if (args.size() > shown) bytes += ",...";
    return amqp_error(ReplyCode::FrameError, fmt::format("cannot decode <<{}>>", bytes), id);
}

AmqpError unimplemented_method(MethodId id) {
    return amqp_error(ReplyCode::CommandInvalid, "unimplemented method", id);
}

}  // namespace warren::broker::texts
