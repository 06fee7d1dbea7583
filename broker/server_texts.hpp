// The errors the connection core sends, with RabbitMQ's codes and texts in one place
// (see docs/rabbitmq-reference.md for what RabbitMQ 3.10 sends in each case).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "broker/connection.hpp"
#include "protocol/frame.hpp"
#include "protocol/method_id.hpp"
#include "protocol/reply_code.hpp"

namespace warren::broker::texts {

protocol::AmqpError unexpected_frame(const protocol::Frame& frame);
protocol::AmqpError heartbeat_on_channel(const protocol::Frame& frame);
protocol::AmqpError heartbeat_with_payload(const protocol::Frame& frame);
protocol::AmqpError channel_frame_before_open(const protocol::Frame& frame);
protocol::AmqpError unexpected_frame_on_channel0(const protocol::Frame& frame);
protocol::AmqpError method_frame_too_short(const protocol::Frame& frame);
protocol::AmqpError unexpected_method_channel0(protocol::MethodId id);
protocol::AmqpError unexpected_method_in_handshake(protocol::MethodId id, Connection::State state);
protocol::AmqpError expected_channel_open(protocol::MethodId id);
protocol::AmqpError too_many_channels(std::size_t open, std::uint16_t channel_max);
// rabbit_reader:create_channel/2: the user's max-channels limit (530, closes the connection).
protocol::AmqpError user_channel_limit(std::string_view user, std::int64_t limit);
protocol::AmqpError malformed_utf8();
protocol::AmqpError expected_content_header_or_body(bool expecting_body, protocol::MethodId content_method);
protocol::AmqpError second_channel_open(protocol::MethodId id);
protocol::AmqpError content_on_closed_channel(const protocol::Frame& frame);
protocol::AmqpError unknown_method(protocol::MethodId id);
protocol::AmqpError malformed_method(protocol::MethodId id, std::span<const std::byte> args);
protocol::AmqpError unimplemented_method(protocol::MethodId id);

}  // namespace warren::broker::texts
