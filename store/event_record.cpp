// Encoding and decoding sidecar events.
#include "store/event_record.hpp"

#include "store/bytes.hpp"

namespace warren::store {

void append_event(Buffer& out, const Event& e) {
    std::byte* p = out.extend(event_size);
    put_u32(p, e.offset);
    put_u32(p + 4, e.queue_id);
    put_u16(p + 8, e.delivery_count);
    put_u8(p + 10, static_cast<std::uint8_t>(e.kind));
    put_u8(p + 11, 0);
}

std::size_t event_count(std::span<const std::byte> payload) {
    if (payload.empty() || payload.size() % event_size) return 0;
    return payload.size() / event_size;
}

std::optional<Event> decode_event(std::span<const std::byte> payload, std::size_t i) {
    const std::byte* p = payload.data() + i * event_size;
    std::uint8_t kind = get_u8(p + 10);
    if (kind < 1 || kind > 3 || get_u8(p + 11) != 0) return std::nullopt;
    return Event{get_u32(p), get_u32(p + 4), get_u16(p + 8), static_cast<EventKind>(kind)};
}

}  // namespace warren::store
