// Reply texts the channel handlers share, in RabbitMQ's wording.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "broker/rabbit_text.hpp"
#include "protocol/reply_code.hpp"

namespace warren::broker::errors {

inline protocol::AmqpError no_exchange(std::string_view name, std::string_view vhost) {
    return protocol::amqp_error(protocol::ReplyCode::NotFound,
                                fmt::format("no {}", resource_name("exchange", name, vhost)));
}

inline protocol::AmqpError no_queue(std::string_view name, std::string_view vhost) {
    return protocol::amqp_error(protocol::ReplyCode::NotFound, fmt::format("no {}", resource_name("queue", name, vhost)));
}

inline protocol::AmqpError default_exchange_refused() {
    return protocol::amqp_error(protocol::ReplyCode::AccessRefused, "operation not permitted on the default exchange");
}

inline protocol::AmqpError reserved_name(std::string_view kind, std::string_view name) {
    return protocol::amqp_error(protocol::ReplyCode::AccessRefused,
                                fmt::format("{} name '{}' contains reserved prefix 'amq.*'", kind, name));
}

inline protocol::AmqpError resource_locked(std::string_view queue, std::string_view vhost) {
    return protocol::amqp_error(
        protocol::ReplyCode::ResourceLocked,
        fmt::format("cannot obtain exclusive access to locked {}. It could be originally declared on another "
                    "connection or the exclusive property value does not match that of the original declaration.",
                    resource_name("queue", queue, vhost)));
}

inline protocol::AmqpError inequivalent(std::string_view field, std::string_view resource, std::string_view received,
                                        std::string_view current) {
    return protocol::amqp_error(protocol::ReplyCode::PreconditionFailed,
                                fmt::format("inequivalent arg '{}' for {}: received '{}' but current is '{}'", field,
                                            resource, received, current));
}

inline protocol::AmqpError precondition(std::string detail) {
    return protocol::amqp_error(protocol::ReplyCode::PreconditionFailed, detail);
}

inline std::string_view bool_text(bool b) { return b ? "true" : "false"; }

// The error with the class/method it names (errors raised outside a method frame's handler,
// such as content checks, must name basic.publish themselves).
inline protocol::AmqpError with_method(protocol::AmqpError error, protocol::MethodId method) {
    error.method = method;
    return error;
}

}  // namespace warren::broker::errors
