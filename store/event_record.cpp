// Encoding and decoding sidecar events.
#include "store/event_record.hpp"

#include "store/bytes.hpp"

namespace warren::store {

std::size_t encoded_event_size(const Event& e) {
    return e.kind == EventKind::Hold ? 2 * event_size : event_size;
}

void append_event(Buffer& out, const Event& e) {
    std::byte* p = out.extend(encoded_event_size(e));
    put_u32(p, e.offset);
    put_u32(p + 4, e.queue_id);
    put_u16(p + 8, e.delivery_count);
    put_u8(p + 10, static_cast<std::uint8_t>(e.kind));
    put_u8(p + 11, 0);
    if (e.kind == EventKind::Hold) {
        put_u64(p + 12, static_cast<std::uint64_t>(e.hold_until_ms));
        put_u32(p + 20, 0);
    }
}

std::size_t event_count(std::span<const std::byte> payload) {
    if (payload.empty() || payload.size() % event_size) return 0;
    return payload.size() / event_size;
}

bool EventCursor::next(Event& out) {
    while (at_ + event_size <= payload_.size()) {
        const std::byte* p = payload_.data() + at_;
        at_ += event_size;
        const std::uint8_t kind = get_u8(p + 10);
        if (kind < 1 || kind > 4 || get_u8(p + 11) != 0) {
            ++bad_;
            continue;
        }
        out = Event{get_u32(p), get_u32(p + 4), get_u16(p + 8), static_cast<EventKind>(kind), -1};
        if (out.kind != EventKind::Hold) return true;
        if (at_ + event_size > payload_.size()) {
            ++bad_;
            continue;
        }
        at_ += event_size;  // the second slot is this Hold's, readable or not
        if (get_u32(p + 20) != 0) {
            ++bad_;
            continue;
        }
        out.hold_until_ms = static_cast<std::int64_t>(get_u64(p + 12));
        return true;
    }
    return false;
}

}  // namespace warren::store
