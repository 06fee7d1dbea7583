// The x-delay header as the delayed-message exchange reads it (rabbit_delayed_message_utils in
// rabbitmq-delayed-message-exchange): integers as they are, a decimal string as its integer, a
// float or decimal truncated. A delay above 0 and at most 2^32-1 ms holds the message; a
// missing, zero or negative one routes it at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/table_view.hpp"

namespace warren::broker {

inline constexpr std::string_view x_delay_header = "x-delay";
// The plugin's largest delay (Erlang's largest timer): 2^32-1 ms, 49.7 days.
inline constexpr std::int64_t max_delay_ms = 4294967295ll;

struct DelayHeader {
    bool present = false;
    std::optional<std::int64_t> ms;  // the value read; nullopt when it is not a number
    std::string problem;             // why it cannot delay, when it cannot be read or is too large

    // Whether the message waits: a number above 0 and at most max_delay_ms.
    bool delays() const { return ms && *ms > 0 && *ms <= max_delay_ms; }
    // A header the plugin would quietly ignore (routing the message at once) and Warren refuses
    // at the exchange it is published to: not a number, or more than max_delay_ms.
    bool is_invalid() const { return !problem.empty(); }
};

DelayHeader read_delay_header(protocol::TableView headers);

}  // namespace warren::broker
