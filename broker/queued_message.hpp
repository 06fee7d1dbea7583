// A message's place in one queue: the shared message plus what is per-queue about it.
// 24 bytes: this is the per-message cost of a queue on top of the message itself.
#pragma once

#include <cstdint>

#include "broker/clock.hpp"
#include "broker/message.hpp"

namespace warren::broker {

using QueueId = std::uint64_t;

class QueuedMessage {
public:
    QueuedMessage() = default;
    QueuedMessage(MessageRef m, std::uint64_t seq, TimePoint expires = TimePoint{})
        : message(std::move(m)), expires_at(expires), packed_(seq & seq_mask) {}
    // A message coming back from disk, with the delivery count it had.
    QueuedMessage(MessageRef m, std::uint64_t seq, TimePoint expires, std::uint16_t delivery_count)
        : message(std::move(m)), expires_at(expires), packed_((seq & seq_mask) | std::uint64_t{delivery_count} << seq_bits) {}

    MessageRef message;
    TimePoint expires_at{};  // TimePoint{} means never

    // Position in the queue; a requeue restores it. 48 bits: 2.8e14 messages per queue.
    std::uint64_t seq() const { return packed_ & seq_mask; }
    // Times the message came back to the queue after a delivery (saturates at 65535).
    std::uint32_t delivery_count() const { return static_cast<std::uint32_t>(packed_ >> seq_bits); }
    void count_return() {
        if (delivery_count() < 0xFFFF) packed_ += std::uint64_t{1} << seq_bits;
    }
    // Every return to the queue counts, so a message is redelivered exactly when counted.
    bool redelivered() const { return delivery_count() > 0; }

    bool has_expiry() const { return expires_at != TimePoint{}; }
    bool is_expired(TimePoint now) const { return has_expiry() && expires_at <= now; }

    static constexpr int seq_bits = 48;
    static constexpr std::uint64_t seq_mask = (std::uint64_t{1} << seq_bits) - 1;

private:
    std::uint64_t packed_ = 0;
};

static_assert(sizeof(QueuedMessage) == 24);

}  // namespace warren::broker
