// A consumer: one basic.consume on one channel, attached to one queue. Owned by its Channel;
// the Queue holds a non-owning pointer, removed by Queue::remove_consumer() when the consumer
// is cancelled, its channel closes, or the queue is deleted.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "broker/stream_args.hpp"

namespace warren::broker {

class Channel;
class Queue;

struct Consumer {
    std::string tag;
    Channel* channel = nullptr;  // not owned; owns this consumer
    Queue* queue = nullptr;      // not owned; Queue::remove_consumer() unlinks
    bool no_ack = false;
    bool exclusive = false;
    std::int32_t priority = 0;   // x-priority: higher priorities are served first
    std::uint32_t unacked = 0;   // deliveries not yet settled
    std::uint16_t prefetch = 0;  // basic.qos global=false in force when it was created; 0: none
    std::uint64_t serial = 0;    // registration order, for single active consumer

    // Consumers of a stream queue only.
    std::uint64_t stream_next = 0;  // the next offset to look at
    StreamFilter stream_filter;     // x-stream-filter, x-stream-match-unfiltered
    std::string stream_name;        // x-stream-consumer-name: its offset is tracked by the broker
    // For a named consumer: its deliveries not yet acked (offset, acked), oldest first.
    std::deque<std::pair<std::uint64_t, bool>> stream_outstanding;
    // x-stream-group: a member of that consumer group, which reads only while it owns the
    // partition (its offset is tracked under the group's name, in the group's ledger).
    std::string stream_group;
    bool group_owner = false;
};

}  // namespace warren::broker
