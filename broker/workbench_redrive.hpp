// The dead-letter workbench's actions on ready messages: redrive (publish a copy back to the
// exchange and routing key the message was dead-lettered from, or to a chosen pair, then take
// the original out) and delete. A message that cannot be routed everywhere it should go stays
// where it is. A stored original is settled only once its stored copy is (a storage ticket):
// a crash in between brings back the original, never neither. Bounded work per call.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker/queue.hpp"
#include "broker/workbench_browse.hpp"
#include "broker/workbench_filter.hpp"

namespace warren::broker::workbench {

// Which ready messages: the handles given, or else those the filter matches (all of them
// with an empty filter).
struct Selection {
    std::vector<MessageHandle> handles;
    MessageFilter filter;
};

// Where a redriven message goes. No exchange: each message's own origin (x-death's latest
// entry: exchange and first routing key). An exchange without a key: the origin's key, or
// the message's own routing key when it has no x-death.
struct RedriveTarget {
    std::optional<std::string> exchange;
    std::optional<std::string> routing_key;
};

struct ActionRequest {
    Selection selection;
    bool dry_run = false;  // count what would happen; change nothing
    // A filter's walk goes on from `from` and handles at most `max_messages` per call (and
    // reads at most `max_paged_reads` paged-out messages); pass `next` and `seq_limit` back
    // to go on. Only messages with seq below seq_limit are taken (0: the queue's next seq now),
    // so copies redriven back into the same queue are not met again.
    ReadyMessages::Cursor from;
    std::size_t max_messages = 1000;
    std::size_t max_paged_reads = 256;
    std::uint64_t seq_limit = 0;
};

struct Failure {
    MessageHandle handle;
    std::string reason;
};

struct ActionResult {
    std::size_t matched = 0;  // selected and still ready
    std::size_t done = 0;     // moved (redrive) or deleted; with dry_run, would be
    std::size_t failed = 0;   // stayed, each with a reason (the first max_failures listed)
    std::vector<Failure> failures;
    ReadyMessages::Cursor next;  // next.done: the selection is complete
    std::uint64_t seq_limit = 0;
    // Nonzero when copies were stored: the moved originals are settled once this ticket is
    // stored (Durability::when_stored tells when; a caller may answer only then).
    std::uint64_t ticket = 0;
    static constexpr std::size_t max_failures = 100;
};

// Whether the caller may publish to an exchange (the management API's write permission, checked
// per message since each may go back to a different origin); unset: any exchange.
using MayPublish = std::function<bool(std::string_view exchange)>;

ActionResult redrive(Queue& queue, const ActionRequest& request, const RedriveTarget& target,
                     const MayPublish& may_publish = {});
ActionResult delete_messages(Queue& queue, const ActionRequest& request);

}  // namespace warren::broker::workbench
