// A message that left a queue by a side door (rejected, expired, over the length limit, past the
// delivery limit) and waits on the broker's dead-letter work list to be republished to its
// queue's dead-letter exchange. Queues push these instead of republishing on the spot; the broker
// drains the list iteratively (Broker::drain_dead_letters), so dead-lettering never recurses.
#pragma once

#include <optional>
#include <string>

#include "broker/queue.hpp"
#include "broker/queued_message.hpp"

namespace warren::broker {

class VHost;

struct DeadLetter {
    VHost* vhost = nullptr;
    // The queue it left and that queue's dead-letter arguments, copied: the queue may be
    // deleted before the dead letter is routed (an auto-delete queue losing its consumer).
    std::string queue;
    std::string exchange;
    std::optional<std::string> routing_key;
    QueuedMessage message;
    DeadLetterReason reason = DeadLetterReason::Rejected;
};

}  // namespace warren::broker
