// AMQP reply codes and the error value handlers return. A hard error (the spec's class)
// closes the connection; a soft error closes only the channel.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/method_id.hpp"

namespace warren::protocol {

enum class ReplyCode : std::uint16_t {
    Success = 200,
    ContentTooLarge = 311,
    NoRoute = 312,
    NoConsumers = 313,
    ConnectionForced = 320,
    InvalidPath = 402,
    AccessRefused = 403,
    NotFound = 404,
    ResourceLocked = 405,
    PreconditionFailed = 406,
    FrameError = 501,
    SyntaxError = 502,
    CommandInvalid = 503,
    ChannelError = 504,
    UnexpectedFrame = 505,
    ResourceError = 506,
    NotAllowed = 530,
    NotImplemented = 540,
    InternalError = 541,
};

constexpr bool is_hard_error(ReplyCode code) {
    switch (code) {
    case ReplyCode::ContentTooLarge:
    case ReplyCode::NoRoute:
    case ReplyCode::NoConsumers:
    case ReplyCode::AccessRefused:
    case ReplyCode::NotFound:
    case ReplyCode::ResourceLocked:
    case ReplyCode::PreconditionFailed:
        return false;
    default:
        return true;
    }
}

// RabbitMQ's name for a code, the prefix of its reply texts ("NOT_FOUND - no queue 'q' ...").
constexpr const char* reply_code_name(ReplyCode code) {
    switch (code) {
    case ReplyCode::Success: return "OK";
    case ReplyCode::ContentTooLarge: return "CONTENT_TOO_LARGE";
    case ReplyCode::NoRoute: return "NO_ROUTE";
    case ReplyCode::NoConsumers: return "NO_CONSUMERS";
    case ReplyCode::ConnectionForced: return "CONNECTION_FORCED";
    case ReplyCode::InvalidPath: return "INVALID_PATH";
    case ReplyCode::AccessRefused: return "ACCESS_REFUSED";
    case ReplyCode::NotFound: return "NOT_FOUND";
    case ReplyCode::ResourceLocked: return "RESOURCE_LOCKED";
    case ReplyCode::PreconditionFailed: return "PRECONDITION_FAILED";
    case ReplyCode::FrameError: return "FRAME_ERROR";
    case ReplyCode::SyntaxError: return "SYNTAX_ERROR";
    case ReplyCode::CommandInvalid: return "COMMAND_INVALID";
    case ReplyCode::ChannelError: return "CHANNEL_ERROR";
    case ReplyCode::UnexpectedFrame: return "UNEXPECTED_FRAME";
    case ReplyCode::ResourceError: return "RESOURCE_ERROR";
    case ReplyCode::NotAllowed: return "NOT_ALLOWED";
    case ReplyCode::NotImplemented: return "NOT_IMPLEMENTED";
    case ReplyCode::InternalError: return "INTERNAL_ERROR";
    }
    return "UNKNOWN";
}

// A protocol or semantic failure, returned (not thrown) by handlers. `text` is the full reply
// text, RabbitMQ style: "<NAME> - <detail>". class_id/method_id name the offending method.
struct AmqpError {
    ReplyCode code = ReplyCode::InternalError;
    std::string text;
    MethodId method{};

    bool is_hard() const { return is_hard_error(code); }
};

// A reply text as it goes on the wire: a shortstr holds 255 bytes, and RabbitMQ cuts longer
// texts to 252 bytes followed by "..." (rabbit_binary_generator:amqp_exception_explanation/2).
inline std::string wire_reply_text(std::string_view text) {
    if (text.size() <= 255) return std::string(text);
    std::string cut(text.substr(0, 252));
    cut += "...";
    return cut;
}

// Builds an AmqpError with RabbitMQ's "NAME - detail" text.
inline AmqpError amqp_error(ReplyCode code, std::string_view detail, MethodId method = {}) {
    std::string text = reply_code_name(code);
    text += " - ";
    text += detail;
    return AmqpError{code, std::move(text), method};
}

}  // namespace warren::protocol
