// Where a queue keeps its ready messages: the one small interface a queue's storage
// implements (in memory now; on disk later). Ready messages are ordered by priority
// (highest first), then by seq, so that a requeued message goes back to its original place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "broker/queued_message.hpp"

namespace warren::broker {

class MessageStore {
public:
    virtual ~MessageStore() = default;

    // A newly published message: its seq is higher than any the store has seen.
    virtual void push(QueuedMessage message) = 0;
    // A message coming back from a consumer: it goes to its seq position.
    virtual void requeue(QueuedMessage message) = 0;
    // The next message to deliver, or nullptr when empty.
    virtual QueuedMessage* front() = 0;
    virtual QueuedMessage pop_front() = 0;
    // Takes out one message wherever it is (TTL expiry); nullopt if it is no longer here.
    virtual std::optional<QueuedMessage> remove(std::uint64_t seq, std::uint8_t priority) = 0;
    // The message that drop-head overflow would drop: the oldest of the lowest priority.
    virtual std::optional<QueuedMessage> pop_oldest_lowest() = 0;

    virtual std::size_t size() const = 0;
    virtual std::uint64_t body_bytes() const = 0;
    // Calls f for each ready message (no particular order).
    virtual void for_each(const std::function<void(const QueuedMessage&)>& f) const = 0;
    // Removes everything; calls f for each message in delivery order.
    virtual void drain(const std::function<void(QueuedMessage&&)>& f) = 0;
};

// Memory-backed storage; priority levels 0..max_priority (0 for a queue without priorities).
std::unique_ptr<MessageStore> make_memory_store(std::uint8_t max_priority);

}  // namespace warren::broker
