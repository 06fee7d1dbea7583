// What happened to a stored message in one queue, as written to its segment's sidecar (.evt):
// delivered, returned to the queue with a delivery count, or acknowledged (settled). One
// Events record per flush per sidecar holds them all, in the order they happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "store/buffer.hpp"

namespace warren::store {

enum class EventKind : std::uint8_t { Deliver = 1, Return = 2, Ack = 3 };

struct Event {
    std::uint32_t offset = 0;  // of the message record in the segment
    std::uint32_t queue_id = 0;
    std::uint16_t delivery_count = 0;  // Return: the message's count from now on
    EventKind kind = EventKind::Deliver;
};

// On disk: offset u32, queue_id u32, delivery_count u16, kind u8, reserved u8 (zero).
inline constexpr std::size_t event_size = 12;

void append_event(Buffer& out, const Event& e);
std::size_t event_count(std::span<const std::byte> payload);  // 0 for a malformed payload
// The i-th event; nullopt for an unknown kind.
std::optional<Event> decode_event(std::span<const std::byte> payload, std::size_t i);

}  // namespace warren::store
