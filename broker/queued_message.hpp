// A message's place in one queue: the shared message plus what is per-queue about it.
#pragma once

#include <cstdint>

#include "broker/clock.hpp"
#include "broker/message.hpp"

namespace warren::broker {

using QueueId = std::uint64_t;

struct QueuedMessage {
    MessageRef message;
    std::uint64_t seq = 0;           // position in the queue; a requeue restores it
    TimePoint expires_at{};          // TimePoint{} means never
    std::uint32_t delivery_count = 0;  // times returned to the queue after a delivery
    std::uint8_t priority = 0;       // the message's priority, capped at the queue's maximum
    bool redelivered = false;

    bool has_expiry() const { return expires_at != TimePoint{}; }
    bool is_expired(TimePoint now) const { return has_expiry() && expires_at <= now; }
};

}  // namespace warren::broker
