// An exchange in a vhost: its name, type, flags and arguments, and its router (the bindings).
// Owned by the VHost; bindings point at queues and exchanges by id.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/stats.hpp"
#include "exchanges/exchange.hpp"
#include "protocol/field_table.hpp"

namespace warren::broker {

struct ExchangeEntry {
    std::uint64_t id = 0;
    std::string name;
    exchanges::ExchangeType type = exchanges::ExchangeType::Direct;
    bool durable = false;
    bool auto_delete = false;
    bool internal = false;
    protocol::FieldTable arguments;
    std::optional<std::string> alternate_exchange;  // the alternate-exchange argument
    std::unique_ptr<exchanges::Exchange> router;
    // Bindings where this exchange is the destination: source exchange id -> count.
    std::uint32_t bound_as_destination = 0;
    std::uint64_t route_mark = 0;  // de-duplicates visits within one publish
    Stats stats;                   // publish_in, publish_out

    exchanges::Destination as_destination() const { return {exchanges::DestinationKind::Exchange, id}; }
};

}  // namespace warren::broker
