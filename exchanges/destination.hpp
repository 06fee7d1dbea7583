// What a binding points at: a queue or an exchange, by the broker's id for it. exchanges/
// knows nothing of queues; the broker (VHost) resolves ids to objects after routing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "protocol/table_view.hpp"

namespace warren::exchanges {

enum class DestinationKind : std::uint8_t { Queue, Exchange };

struct Destination {
    DestinationKind kind = DestinationKind::Queue;
    std::uint64_t id = 0;

    friend bool operator==(const Destination&, const Destination&) = default;
};

struct DestinationHash {
    std::size_t operator()(const Destination& d) const noexcept {
        return std::hash<std::uint64_t>{}(d.id * 2 + static_cast<std::uint64_t>(d.kind));
    }
};

// What routing looks at in a published message.
struct RoutingInput {
    std::string_view routing_key;
    protocol::TableView headers;  // the message's headers property; empty when absent
    // The message's encoded property list, decoded only by an exchange that hashes a property.
    std::span<const std::byte> properties{};
};

}  // namespace warren::exchanges
