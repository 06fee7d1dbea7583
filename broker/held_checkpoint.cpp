// See held_checkpoint.hpp.
#include "broker/held_checkpoint.hpp"

namespace warren::broker {

std::int64_t wall_ms(TimePoint t, TimePoint now, std::int64_t now_ms) {
    return now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
}

std::optional<store::RecoveredEntry> held_checkpoint_entry(const DelayedMessages::View& v, std::uint32_t stored_id,
                                                           bool stored) {
    if (v.message ? !stored : v.transient) return std::nullopt;
    store::RecoveredEntry e;
    e.queue_id = stored_id;
    e.queue_seq = v.seq;
    e.location = v.location;
    e.body_size = v.message ? static_cast<std::uint32_t>(v.message->body_size()) : 0;
    e.priority = v.message ? v.message->priority() : 0;
    e.delivery_count = v.delivery_count;
    e.has_deadline = true;
    e.deadline_ms = -1;
    return e;
}

}  // namespace warren::broker
