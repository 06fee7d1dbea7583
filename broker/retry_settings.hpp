// Retry with backoff: a delivery that comes back to its queue (nack or reject with requeue, a
// closed channel) waits before it is ready again. The queue arguments of RabbitMQ 4.3
// (x-delayed-retry-type, -min, -max) and LavinMQ 2.11 (-min, -max, -multiplier), plus
// x-delayed-retry-jitter of Warren's, are parsed here, and resolve_retry() is the one place that
// turns a queue's arguments and its policies' delayed-retry-* keys into what it does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/field_table.hpp"

namespace warren::broker {

namespace args {
inline constexpr std::string_view delayed_retry_type = "x-delayed-retry-type";
inline constexpr std::string_view delayed_retry_min = "x-delayed-retry-min";
inline constexpr std::string_view delayed_retry_max = "x-delayed-retry-max";
inline constexpr std::string_view delayed_retry_multiplier = "x-delayed-retry-multiplier";
inline constexpr std::string_view delayed_retry_jitter = "x-delayed-retry-jitter";
}  // namespace args

// Which returns wait (RabbitMQ 4.3's x-delayed-retry-type).
enum class RetryType : std::uint8_t { Disabled, All, Failed, Returned };
std::string_view retry_type_name(RetryType type);

// Why a delivery came back to its queue. RabbitMQ 4.3 counts a reject and a lost channel as a
// failed delivery and a nack as a plain return; its consumer timeout and basic.recover are
// plain returns too.
enum class ReturnReason : std::uint8_t { Rejected, Nacked, ChannelClosed, Recovered, TimedOut };

// Retry settings as one source gives them (a queue's arguments, or a policy's keys): each
// optional, so that two sources can be merged.
struct RetryArgs {
    std::optional<RetryType> type;
    std::optional<std::uint64_t> min_ms;
    std::optional<std::uint64_t> max_ms;
    std::optional<std::uint64_t> multiplier;
    std::optional<std::uint64_t> jitter_percent;
    bool empty() const { return !type && !min_ms && !max_ms && !multiplier && !jitter_percent; }
    bool operator==(const RetryArgs&) const = default;
};

// Takes one setting, named without the "x-" prefix as policies name them ("delayed-retry-min").
// Returns false when `name` is not a retry setting; sets `error` (the reason, as RabbitMQ's
// invalid-argument texts give it) when the value is not acceptable.
bool parse_retry_arg(std::string_view name, const protocol::FieldValue& value, RetryArgs& out, std::string& error);
// The checks across settings of one source: nullopt, or the offending key and the reason.
struct RetryArgsError {
    std::string_view key;  // without the "x-" prefix
    std::string reason;
};
std::optional<RetryArgsError> check_retry_args(const RetryArgs& args);

// The largest delay: RabbitMQ's largest timer, 2^32-1 ms (49.7 days).
inline constexpr std::uint64_t max_retry_delay_ms = 4294967295ull;

// What a queue does, once its sources are merged.
struct RetrySettings {
    RetryType type = RetryType::Disabled;
    std::uint64_t min_ms = 0;
    std::uint64_t max_ms = max_retry_delay_ms;
    std::optional<std::uint64_t> multiplier;  // none: linear; 1: constant; 2 and more: exponential
    std::uint64_t jitter_percent = 0;

    bool enabled() const { return type != RetryType::Disabled; }
    // Whether a return for this reason waits.
    bool applies_to(ReturnReason reason) const;
    // The backoff before attempt `attempt` (the message's delivery count once returned, from 1),
    // without jitter: min x attempt (linear), min (constant) or min x multiplier^(attempt-1)
    // (exponential), at most max.
    std::uint64_t backoff_ms(std::uint32_t attempt) const;
    // With jitter: up to jitter_percent of the backoff taken off, by `random` (any 64 bits).
    std::uint64_t delay_ms(std::uint32_t attempt, std::uint64_t random) const;
};

// The one place a queue's retry settings come from. A queue declared with only
// x-delayed-retry-min retries every return (LavinMQ's reading; RabbitMQ 4.3 would not retry):
// see the README. With x-delayed-retry-type and no multiplier, max defaults to min (RabbitMQ
// 4.3); otherwise there is no cap but 2^32-1 ms. `policy` (effective_retry_policy, policy.hpp):
// its type, multiplier and jitter win over the arguments; min and max take the lower of the two
// (rabbit_quorum_queue:get_delayed_retry_config/1).
RetrySettings resolve_retry(const RetryArgs& arguments, const RetryArgs* policy = nullptr);

// The delivery limit retries have when none is declared (RabbitMQ 4's quorum queues, LavinMQ).
inline constexpr std::uint64_t default_retry_delivery_limit = 20;

}  // namespace warren::broker
