// See server_texts.hpp.
#include "broker/server_texts.hpp"

#include <fmt/format.h>

#include "protocol/methods.hpp"

namespace warren::broker::texts {

using protocol::AmqpError;
using protocol::amqp_error;
using protocol::MethodId;
using protocol::ReplyCode;

namespace {
// RabbitMQ writes method names with underscores in texts: 'channel.open', 'basic.publish'.
std::string rabbit_method_name(MethodId id) {
    std::string name(protocol::method_name(id));
    for (char& c : name)
        if (c == '-') c = '_';
    return name;
}
}  // namespace

AmqpError heartbeat_on_channel(std::uint16_t channel) {
    return amqp_error(ReplyCode::FrameError, fmt::format("heartbeat frame on non-zero channel {}", channel));
}

AmqpError channel_frame_before_open(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::ChannelError,
                      fmt::format("channel {} used before connection.open completed", frame.channel));
}

AmqpError unexpected_frame_on_channel0(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::UnexpectedFrame,
                      fmt::format("unexpected frame of type {} on channel 0", static_cast<int>(frame.type)));
}

AmqpError method_frame_too_short(const protocol::Frame& frame) {
    return amqp_error(ReplyCode::FrameError,
                      fmt::format("type 1, all octets = {}: method frame too short",
                                  protocol::erlang_binary(frame.payload)));
}

AmqpError not_implemented(MethodId id) {
    return amqp_error(ReplyCode::NotImplemented, fmt::format("{} not implemented", rabbit_method_name(id)), id);
}

AmqpError unexpected_method_channel0(MethodId id) {
    return amqp_error(ReplyCode::CommandInvalid,
                      fmt::format("{} is not allowed on channel 0", rabbit_method_name(id)), id);
}

AmqpError unexpected_method_in_handshake(MethodId id, Connection::State state) {
    std::string_view expected = "connection.start_ok";
    if (state == Connection::State::AwaitingTuneOk) expected = "connection.tune_ok";
    if (state == Connection::State::AwaitingOpen) expected = "connection.open";
    return amqp_error(ReplyCode::CommandInvalid,
                      fmt::format("expected '{}', got '{}'", expected, rabbit_method_name(id)), id);
}

AmqpError expected_channel_open(MethodId id) {
    return amqp_error(ReplyCode::ChannelError, "expected 'channel.open'", id);
}

AmqpError channel_id_too_large(std::uint16_t channel, std::uint16_t channel_max, MethodId id) {
    return amqp_error(ReplyCode::NotAllowed,
                      fmt::format("number of channels opened ({}) has reached the negotiated channel_max ({})",
                                  channel, channel_max),
                      id);
}

AmqpError expected_content_header_or_body(std::uint16_t channel, MethodId id) {
    (void)channel;
    return amqp_error(ReplyCode::UnexpectedFrame,
                      fmt::format("expected content header for class 60, got non content header frame instead"),
                      id);
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

AmqpError malformed_method(MethodId id) {
    return amqp_error(ReplyCode::SyntaxError,
                      fmt::format("malformed arguments for {}", rabbit_method_name(id)), id);
}

AmqpError unimplemented_method(MethodId id) {
    return amqp_error(ReplyCode::CommandInvalid, "unimplemented method", id);
}

}  // namespace warren::broker::texts
