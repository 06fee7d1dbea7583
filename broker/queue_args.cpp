// See queue_args.hpp. The validation rules and texts follow rabbit_amqqueue:declare_args/0.
#include "broker/queue_args.hpp"

#include <fmt/format.h>

#include <array>

#include "broker/rabbit_text.hpp"
#include "broker/stream_args.hpp"

namespace warren::broker {

namespace {

using protocol::FieldTable;
using protocol::FieldValue;

// RabbitMQ's largest timer value for TTLs and x-expires (?MAX_EXPIRY_TIMER).
constexpr std::uint64_t max_expiry_timer = 4294967295ull;

// RabbitMQ 3.10's list, plus the retry arguments (RabbitMQ 4.3 compares them on its quorum
// queues, whose queue-type arguments they are; a changed backoff should not pass silently).
constexpr std::array<std::string_view, 22> equivalence_checked = {
    args::expires,          args::message_ttl,
    args::dead_letter_exchange, args::dead_letter_routing_key,
    args::max_length,       args::max_length_bytes,
    args::max_in_memory_length, args::max_in_memory_bytes,
    args::max_priority,     args::overflow,
    args::queue_mode,       args::single_active_consumer,
    args::queue_type,       "x-quorum-initial-group-size",
    "x-max-age",            "x-stream-max-segment-size-bytes",
    "x-queue-leader-locator", args::delayed_retry_type,
    args::delayed_retry_min, args::delayed_retry_max,
    args::delayed_retry_multiplier, args::delayed_retry_jitter};

struct ArgError {
    std::string reason;  // the Erlang term RabbitMQ prints, e.g. {unacceptable_type,longstr}
};

std::string invalid_arg(std::string_view key, std::string_view queue_text, const ArgError& e) {
    return fmt::format("invalid arg '{}' for {}: {}", key, queue_text, e.reason);
}

// check_int_arg: any integer type. Its error is a string, which RabbitMQ prints with ~p
// (hence the double quotes).
std::optional<ArgError> require_int(const FieldValue& v) {
    if (v.as_integer()) return std::nullopt;
    return ArgError{fmt::format("\"expected integer, got {}\"", rabbit_type_name(v.type()))};
}

std::optional<ArgError> require_non_neg(const FieldValue& v) {
    if (auto e = require_int(v)) return e;
    if (*v.as_integer() < 0) return ArgError{fmt::format("{{value_negative,{}}}", *v.as_integer())};
    return std::nullopt;
}

std::optional<ArgError> require_string(const FieldValue& v) {
    if (v.as_string()) return std::nullopt;
    return ArgError{fmt::format("{{unacceptable_type,{}}}", rabbit_type_name(v.type()))};
}

}  // namespace

std::string_view queue_type_name(QueueType t) {
    switch (t) {
        case QueueType::Quorum:
            return "quorum";
        case QueueType::Stream:
            return "stream";
        case QueueType::Classic:
            break;
    }
    return "classic";
}

bool is_equivalence_checked_arg(std::string_view key) {
    for (auto k : equivalence_checked)
        if (k == key) return true;
    return false;
}

QueueArgsResult parse_queue_args(const FieldTable& table, std::string_view queue_text) {
    QueueArgs a;
    for (const auto& [key, v] : table.entries) {
        std::optional<ArgError> err;
        if (key == args::message_ttl) {
            err = require_non_neg(v);
            if (!err && static_cast<std::uint64_t>(*v.as_integer()) > max_expiry_timer)
                err = ArgError{fmt::format("{{value_too_large,{}}}", *v.as_integer())};
            if (!err) a.message_ttl_ms = static_cast<std::uint64_t>(*v.as_integer());
        } else if (key == args::expires) {
            err = require_int(v);
            if (!err && *v.as_integer() == 0) err = ArgError{"{value_zero,0}"};
            if (!err && *v.as_integer() < 0) err = ArgError{fmt::format("{{value_negative,{}}}", *v.as_integer())};
            if (!err && static_cast<std::uint64_t>(*v.as_integer()) > max_expiry_timer)
                err = ArgError{fmt::format("{{value_too_large,{}}}", *v.as_integer())};
            if (!err) a.expires_ms = static_cast<std::uint64_t>(*v.as_integer());
        } else if (key == args::dead_letter_exchange) {
            // rabbit_channel checks this one before declare_args, in its own words.
            if (!v.as_string())
                return {std::nullopt, fmt::format("invalid type '{}' for arg '{}' in {}", rabbit_type_name(v.type()),
                                                  key, queue_text)};
            a.dead_letter_exchange = *v.as_string();
        } else if (key == args::dead_letter_routing_key) {
            err = require_string(v);
            if (!err) a.dead_letter_routing_key = *v.as_string();
        } else if (key == args::max_length) {
            err = require_non_neg(v);
            if (!err) a.max_length = static_cast<std::uint64_t>(*v.as_integer());
        } else if (key == args::max_length_bytes) {
            err = require_non_neg(v);
            if (!err) a.max_length_bytes = static_cast<std::uint64_t>(*v.as_integer());
        } else if (key == args::max_in_memory_length || key == args::max_in_memory_bytes) {
            err = require_non_neg(v);  // accepted and ignored: every queue keeps messages in memory
        } else if (key == args::max_priority) {
            err = require_non_neg(v);
            if (!err && *v.as_integer() > 255)
                err = ArgError{fmt::format("{{max_value_exceeded,{}}}", *v.as_integer())};
            if (!err) a.max_priority = static_cast<std::uint8_t>(*v.as_integer());
        } else if (key == args::overflow) {
            err = require_string(v);
            if (!err) {
                const std::string& s = *v.as_string();
                if (s == "drop-head") a.overflow = Overflow::DropHead;
                else if (s == "reject-publish") a.overflow = Overflow::RejectPublish;
                else if (s == "reject-publish-dlx") a.overflow = Overflow::RejectPublishDlx;
                else err = ArgError{"invalid_overflow"};
            }
        } else if (key == args::single_active_consumer) {
            if (auto b = v.get_if<bool>()) a.single_active_consumer = *b;
            else err = ArgError{fmt::format("{{unacceptable_type,{}}}", rabbit_type_name(v.type()))};
        } else if (key == args::queue_type) {
            err = require_string(v);
            if (!err) {
                const std::string& s = *v.as_string();
                if (s == "classic") a.type = QueueType::Classic;
                else if (s == "quorum") a.type = QueueType::Quorum;
                else if (s == "stream")
                    a.type = QueueType::Stream;
                else err = ArgError{fmt::format("\"unsupported queue type '{}'\"", s)};
            }
        } else if (key == args::queue_mode) {
            err = require_string(v);
            if (!err && *v.as_string() != "default" && *v.as_string() != "lazy")
                err = ArgError{fmt::format("\"unsupported queue mode '{}'\"", *v.as_string())};
        } else if (key == args::queue_version) {
            err = require_int(v);  // accepted and ignored
        } else if (key == args::delivery_limit) {
            // RabbitMQ's quorum queues also take the limit as a decimal string ("5").
            const std::string* text = v.as_string();
            if (text && !text->empty() && text->size() < 19 &&
                text->find_first_not_of("0123456789") == std::string::npos) {
                a.delivery_limit = std::stoull(*text);
            } else {
                err = require_non_neg(v);
                if (!err) a.delivery_limit = static_cast<std::uint64_t>(*v.as_integer());
            }
        } else if (key == stream_args::max_age) {
            err = require_string(v);
            if (!err) {
                a.max_age_ms = parse_max_age_ms(*v.as_string());
                if (!a.max_age_ms) err = ArgError{"invalid_max_age"};
            }
        } else if (key == stream_args::max_segment_size) {
            err = require_non_neg(v);
            if (!err) a.stream_segment_bytes = static_cast<std::uint64_t>(*v.as_integer());
        } else if (key.starts_with("x-delayed-retry-")) {
            std::string reason;
            if (parse_retry_arg(std::string_view(key).substr(2), v, a.retry, reason) && !reason.empty())
                err = ArgError{std::move(reason)};
        }
        if (err) return {std::nullopt, invalid_arg(key, queue_text, *err)};
    }
    // rabbit_stream_queue's capabilities: the arguments a stream refuses (retry with backoff is
    // a Warren extension for queues that redeliver; a stream never takes a message back).
    if (a.type == QueueType::Stream) {
        for (std::string_view key : {args::max_length, args::message_ttl, args::expires, args::dead_letter_exchange,
                                     args::dead_letter_routing_key, args::max_priority, args::overflow,
                                     args::single_active_consumer, args::delivery_limit})
            if (table.find(key))
                return {std::nullopt,
                        fmt::format("invalid arg '{}' for {} of queue type rabbit_stream_queue", key, queue_text)};
        for (const auto& [key, value] : table.entries)
            if (std::string_view(key).starts_with("x-delayed-retry-"))
                return {std::nullopt,
                        fmt::format("invalid arg '{}' for {} of queue type rabbit_stream_queue", key, queue_text)};
    }
    if (auto e = check_retry_args(a.retry))
        return {std::nullopt, invalid_arg(fmt::format("x-{}", e->key), queue_text, {std::move(e->reason)})};
    if (a.dead_letter_routing_key && !a.dead_letter_exchange)
        return {std::nullopt, invalid_arg(args::dead_letter_routing_key, queue_text, {"routing_key_but_no_dlx_defined"})};
    // DECISIONS.md: quorum queues get RabbitMQ 4's default delivery limit of 20.
    if (a.type == QueueType::Quorum && !a.delivery_limit) a.delivery_limit = 20;
    return {std::move(a), {}};
}

namespace {

// rabbit_misc:val/1: a value with its type when the other side is missing, bare otherwise.
std::string describe(const FieldValue* v) {
    if (!v) return "none";
    return fmt::format("the value '{}' of type '{}'", rabbit_value_text(*v), rabbit_type_name(v->type()));
}

std::string describe_bare(const FieldValue& v) { return fmt::format("'{}'", rabbit_value_text(v)); }

bool is_classic_type(const FieldValue* v) { return v && v->as_string() && *v->as_string() == "classic"; }

bool equivalent(const FieldValue& a, const FieldValue& b) {
    if (rabbit_type_class(a.type()) != rabbit_type_class(b.type())) return false;
    if (auto ia = a.as_integer()) return ia == b.as_integer();
    if (a.as_string() && b.as_string()) return *a.as_string() == *b.as_string();
    return a == b;
}

}  // namespace

std::optional<std::string> check_args_equivalence(const FieldTable& current, const FieldTable& requested,
                                                  std::string_view queue_text) {
    for (auto key : equivalence_checked) {
        const FieldValue* was = current.find(key);
        const FieldValue* now = requested.find(key);
        if (!was && !now) continue;
        if (was && now && equivalent(*was, *now)) continue;
        // A classic queue has no x-queue-type of its own; "classic" on either side matches it
        // (rabbit_misc:assert_field_equivalence/4).
        if (key == args::queue_type && ((!was && is_classic_type(now)) || (!now && is_classic_type(was)))) continue;
        if (was && now)
            return fmt::format("inequivalent arg '{}' for {}: received {} but current is {}", key, queue_text,
                               describe_bare(*now), describe_bare(*was));
        return fmt::format("inequivalent arg '{}' for {}: received {} but current is {}", key, queue_text,
                           describe(now), describe(was));
    }
    return std::nullopt;
}

}  // namespace warren::broker
