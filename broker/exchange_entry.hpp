// An exchange in a vhost: its name, type, flags and arguments, and its router (the bindings).
// Owned by the VHost; bindings point at queues and exchanges by id. A delayed exchange (the
// x-delayed-message type, or x-delayed-exchange) also holds the messages waiting for their delay.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/policy.hpp"
#include "broker/stats.hpp"
#include "exchanges/exchange.hpp"
#include "protocol/field_table.hpp"

namespace warren::broker {

class DelayedExchange;

struct ExchangeEntry {
    ExchangeEntry();
    ~ExchangeEntry();
    ExchangeEntry(const ExchangeEntry&) = delete;
    ExchangeEntry& operator=(const ExchangeEntry&) = delete;

    std::uint64_t id = 0;
    std::string name;
    exchanges::ExchangeType type = exchanges::ExchangeType::Direct;
    bool durable = false;
    bool auto_delete = false;
    bool internal = false;
    protocol::FieldTable arguments;
    // The alternate-exchange argument, or else the policy's (policy.hpp).
    std::optional<std::string> alternate_exchange;
    PolicyRef policy, operator_policy;  // the ones that apply now (null: none)
    std::unique_ptr<exchanges::Exchange> router;
    // Declared as the plugin's x-delayed-message type (routing as its x-delayed-type argument says).
    bool plugin_delayed_type = false;
    // Declared delayed: the plugin's type or x-delayed-exchange = true.
    bool declared_delayed = false;
    // Holds messages with a positive x-delay now: declared so, or its policy's delayed-message.
    bool delaying = false;
    // Non-null once the exchange has delayed (the messages waiting for their x-delay). It stays
    // when a policy stops making the exchange delayed: what waits is still released when due.
    std::unique_ptr<DelayedExchange> delayed;
    // Bindings where this exchange is the destination: source exchange id -> count.
    std::uint32_t bound_as_destination = 0;
    std::uint64_t route_mark = 0;  // de-duplicates visits within one publish
    Stats stats;                   // publish_in, publish_out

    exchanges::Destination as_destination() const { return {exchanges::DestinationKind::Exchange, id}; }
    // The type as declared and listed: "x-delayed-message" for the plugin's type.
    std::string_view type_name() const;
    // Messages waiting for their delay (0 for an exchange that is not delayed); constant time.
    std::size_t messages_delayed() const;
};

}  // namespace warren::broker
