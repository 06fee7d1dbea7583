// Consumer groups on a stream partition (consumer argument x-stream-group): inside a group one
// consumer reads the partition at a time, chosen by rank; a new owner takes over only once the
// previous owner's deliveries are acked or returned, and starts where the group left off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warren::broker {

class Channel;
struct Consumer;

struct StreamGroup {
    enum class State : std::uint8_t { Pending, Acked, Returned };
    struct Outstanding {
        std::uint64_t offset = 0;
        const Channel* channel = nullptr;  // compared only: identifies the delivery with `tag`
        std::uint64_t tag = 0;
        State state = State::Pending;
    };

    std::string name;
    Consumer* owner = nullptr;            // reads the partition now
    Consumer* wanted = nullptr;           // takes over once `outstanding` holds nothing pending
    std::optional<std::uint64_t> resume;  // where the next owner starts (the last owner's cursor)
    std::deque<Outstanding> outstanding;  // deliveries of the group not yet acked, by offset
};

// The partition number of a super stream's partition "<name>-<n>"; 0 for any other name.
std::uint64_t partition_index(std::string_view queue_name);

// Rank inside a group: by connection (oldest first), channel number, then consumer, so that every
// partition ranks a client's channel the same way.
bool ranks_before(const Consumer& a, const Consumer& b);

// Which of `members` consumers (in rank order) reads partition `partition`: RabbitMQ's rule for
// super stream single active consumers, partition mod members. With more members than
// partitions the last ones read nothing and wait, as in a Kafka group.
std::size_t owner_index(std::uint64_t partition, std::size_t members);

}  // namespace warren::broker
