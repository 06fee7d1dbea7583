// Queue arguments (x-message-ttl, x-dead-letter-exchange, ...) parsed and validated once, at
// declare, with RabbitMQ's rules and texts. The original table is kept for redeclare
// equivalence checks and for listing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/retry_settings.hpp"
#include "protocol/field_table.hpp"

namespace warren::broker {

namespace args {
inline constexpr std::string_view message_ttl = "x-message-ttl";
inline constexpr std::string_view expires = "x-expires";
inline constexpr std::string_view dead_letter_exchange = "x-dead-letter-exchange";
inline constexpr std::string_view dead_letter_routing_key = "x-dead-letter-routing-key";
inline constexpr std::string_view max_length = "x-max-length";
inline constexpr std::string_view max_length_bytes = "x-max-length-bytes";
inline constexpr std::string_view overflow = "x-overflow";
inline constexpr std::string_view max_priority = "x-max-priority";
inline constexpr std::string_view single_active_consumer = "x-single-active-consumer";
inline constexpr std::string_view queue_type = "x-queue-type";
inline constexpr std::string_view queue_mode = "x-queue-mode";
inline constexpr std::string_view queue_version = "x-queue-version";
inline constexpr std::string_view delivery_limit = "x-delivery-limit";
inline constexpr std::string_view max_in_memory_length = "x-max-in-memory-length";
inline constexpr std::string_view max_in_memory_bytes = "x-max-in-memory-bytes";
inline constexpr std::string_view alternate_exchange = "alternate-exchange";
}  // namespace args

enum class Overflow : std::uint8_t { DropHead, RejectPublish, RejectPublishDlx };
enum class QueueType : std::uint8_t { Classic, Quorum, Stream };
// "classic", "quorum", "stream": the management API's and definitions' type field.
std::string_view queue_type_name(QueueType t);

struct QueueArgs {
    std::optional<std::uint64_t> message_ttl_ms;
    std::optional<std::uint64_t> expires_ms;
    std::optional<std::string> dead_letter_exchange;
    std::optional<std::string> dead_letter_routing_key;
    std::optional<std::uint64_t> max_length;
    std::optional<std::uint64_t> max_length_bytes;
    Overflow overflow = Overflow::DropHead;
    std::uint8_t max_priority = 0;  // 0: no priorities
    bool single_active_consumer = false;
    std::optional<std::uint64_t> delivery_limit;
    QueueType type = QueueType::Classic;
    // Streams: x-max-age in ms and x-stream-max-segment-size-bytes (x-max-length-bytes above).
    std::optional<std::uint64_t> max_age_ms;
    std::optional<std::uint64_t> stream_segment_bytes;
    RetryArgs retry;  // x-delayed-retry-*, as declared (see retry_settings.hpp)
};

struct QueueArgsResult {
    std::optional<QueueArgs> args;
    std::string error;  // the 406 detail when args is empty
};

// `queue_text` is RabbitMQ's resource name for the queue ("queue 'q' in vhost '/'").
QueueArgsResult parse_queue_args(const protocol::FieldTable& table, std::string_view queue_text);

// The keys RabbitMQ compares on redeclare; other keys may differ freely.
bool is_equivalence_checked_arg(std::string_view key);

// RabbitMQ's check of a redeclare's arguments against the queue's: the 406 detail, or nothing.
std::optional<std::string> check_args_equivalence(const protocol::FieldTable& current,
                                                  const protocol::FieldTable& requested,
                                                  std::string_view queue_text);

}  // namespace warren::broker
