// What happened to a stored message in one queue, as written to its segment's sidecar (.evt):
// delivered, returned to the queue with a delivery count, held back until a deadline (a retry
// with backoff, format version 2), or acknowledged (settled). One Events record per flush per
// sidecar holds them all, in the order they happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "store/buffer.hpp"

namespace warren::store {

enum class EventKind : std::uint8_t { Deliver = 1, Return = 2, Ack = 3, Hold = 4 };

struct Event {
    std::uint32_t offset = 0;  // of the message record in the segment
    std::uint32_t queue_id = 0;
    std::uint16_t delivery_count = 0;  // Return and Hold: the message's count from now on
    EventKind kind = EventKind::Deliver;
    std::int64_t hold_until_ms = -1;  // Hold: back in the queue, not ready before this (unix ms)
};

// On disk, in 12-byte slots: offset u32, queue_id u32, delivery_count u16, kind u8, reserved u8
// (zero). A Hold takes a second slot: hold_until_ms i64, reserved u32 (zero).
inline constexpr std::size_t event_size = 12;
std::size_t encoded_event_size(const Event& e);

void append_event(Buffer& out, const Event& e);
std::size_t event_count(std::span<const std::byte> payload);  // slots; 0 for a malformed payload

// Walks the events of one payload in order. An event it cannot read (an unknown kind, reserved
// bytes set, a Hold without its second slot) is skipped, one slot, and counted in bad().
class EventCursor {
public:
    explicit EventCursor(std::span<const std::byte> payload) : payload_(payload) {}
    // The next readable event; false at the end.
    bool next(Event& out);
    std::size_t bad() const { return bad_; }

private:
    std::span<const std::byte> payload_;
    std::size_t at_ = 0;  // byte offset of the next slot
    std::size_t bad_ = 0;
};

}  // namespace warren::store
