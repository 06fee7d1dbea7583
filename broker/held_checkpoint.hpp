// The checkpoint entry of a held message, built the same way for a delayed exchange's waiting
// messages and a queue's retrying ones (a clean shutdown writes these; the next start reads them
// instead of the segments). The holder says what the entry's deadlines mean.
#pragma once

#include <cstdint>
#include <optional>

#include "broker/delayed_messages.hpp"
#include "store/message_log.hpp"

namespace warren::broker {

// `t` on the wall clock, given that the loop's `now` is `now_ms` there.
std::int64_t wall_ms(TimePoint t, TimePoint now, std::int64_t now_ms);

// The entry for `v` under `stored_id`, or nullopt when the checkpoint does not keep it: a
// message in memory whose holder's copy is not in the log (`stored` false), or one paged out to
// a record of its own under memory pressure (transient). Its deadline fields are left for the
// holder: has_deadline is set, deadline_ms is -1 (none), hold_until_ms is unset.
std::optional<store::RecoveredEntry> held_checkpoint_entry(const DelayedMessages::View& v, std::uint32_t stored_id,
                                                           bool stored);

}  // namespace warren::broker
