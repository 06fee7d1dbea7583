// A queue's ready messages: one seq-ordered sequence per priority level (highest delivered
// first), so a requeued message goes back to its original place. A message is either in memory
// or, once its record is written to the vhost's message log, paged out: the queue then keeps
// 32 bytes of it (where it is, its size, seq, delivery count, deadline) and reads it back when
// it nears the front. Memory-only queues never page out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "broker/queued_message.hpp"
#include "broker/ready_slot.hpp"

namespace warren::broker {

// How a queue's ready messages reach the disk and come back.
class Pager {
public:
    virtual ~Pager() = default;
    // The message stored at `location`, read back; null when it cannot be read (the pager has
    // logged and settled it). `transient`: a record written by write_transient, let go once read.
    virtual MessageRef load(std::uint64_t location, bool transient) = 0;
    // Whether `message` may leave memory: stored for this queue, and its record written (a
    // record still buffered could yet be lost to a failed write).
    virtual bool can_page_out(const Message& message) const = 0;
    // Under memory pressure: writes records for messages that are not stored (transient ones),
    // now, and sets locations[i] where message i was written (0 where it was not).
    virtual void write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations) = 0;
};

class ReadyMessages {
public:
    // `pager` null: everything stays in memory.
    ReadyMessages(std::uint8_t max_priority, Pager* pager);
    ReadyMessages(const ReadyMessages&) = delete;
    ReadyMessages& operator=(const ReadyMessages&) = delete;

    // A newly published message: its seq is higher than any this queue has seen.
    void push(QueuedMessage message);
    // A message coming back from a consumer: to its seq position.
    void requeue(QueuedMessage message);
    // Recovery: a message on disk, in seq order within its priority (out of order is sorted in).
    void push_paged(const PagedMessage& message);

    bool empty() const { return live_ == 0; }
    std::size_t size() const { return live_; }
    std::uint64_t body_bytes() const { return bytes_; }
    std::size_t in_memory() const { return in_memory_; }

    // The next message to deliver (read back from disk if it is paged out); nullopt when empty.
    std::optional<QueuedMessage> pop_front();
    // Takes out one message wherever it is (TTL expiry); nullopt if it is no longer here.
    std::optional<QueuedMessage> remove(std::uint64_t seq, std::uint8_t priority);
    // The message that drop-head overflow drops: the oldest of the lowest priority.
    std::optional<QueuedMessage> pop_oldest_lowest();

    // What a ready message is, without reading it back (for a checkpoint).
    struct Entry {
        const Message* message = nullptr;  // null when paged out
        std::uint64_t location = 0;
        std::uint64_t seq = 0;
        std::uint16_t delivery_count = 0;
        TimePoint expires_at{};
        std::uint64_t body_size = 0;
        std::uint8_t priority = 0;
        bool transient = false;  // paged out under memory pressure: a record of its own
    };
    void for_each(const std::function<void(const Entry&)>& f) const;

    // Reading without taking (the dead-letter workbench): a walk in delivery order that can
    // stop and go on later. A cursor names the priority level and the last seq seen there;
    // seqs only grow within a level, so it stays valid while messages come and go.
    struct Cursor {
        std::uint16_t level = 0xFFFF;  // 0xFFFF: the start (the highest level)
        std::uint64_t after_seq = 0;   // 0: the level's start
        bool done = false;
    };
    // Calls f for each ready message after `from`, looking at no more than `budget` slots
    // (tombstones count), until f returns false; returns where to go on from (a message f
    // returned false for is not passed: the walk goes on with it). Paged-out messages
    // are not read back: f gets their location.
    Cursor walk(Cursor from, std::size_t budget, const std::function<bool(const Entry&)>& f) const;
    // The ready message with this seq (any priority level), or nullopt.
    std::optional<Entry> find(std::uint64_t seq) const;
    // The lowest seq among the ready messages: the one that has waited longest. Looks at the
    // front of each level only (taking the front drops the tombstones behind it).
    std::optional<std::uint64_t> oldest_seq() const;

    // Calls f(seq, priority, expires_at) for each ready message with a deadline.
    void for_each_deadline(const std::function<void(std::uint64_t, std::uint8_t, TimePoint)>& f) const;
    // Removes everything without reading it back; calls f(message, or null when paged out;
    // location; whether it was paged out under memory pressure with a record of its own) for
    // each, in delivery order.
    void drain(const std::function<void(const Message*, std::uint64_t, bool)>& f);

    // Moves messages that may leave memory to disk, newest first, until each priority level
    // keeps at most `keep` in memory: stored ones, and with `transient_too` (memory pressure)
    // the others, written for the purpose. Looks only at what arrived since the last call,
    // unless `everything`.
    std::size_t page_out(std::size_t keep, bool transient_too = false, bool everything = false);
    // How many messages are read back at once when the front is on disk.
    void set_read_ahead(std::size_t n) { read_ahead_ = n; }

private:
    using Slot = ReadySlot;
    struct Level {
        std::deque<Slot> items;
        std::size_t live = 0;
        std::size_t tombstones = 0;
        std::size_t in_memory = 0;
        std::size_t unexamined = 0;  // entries at the back that page_out has not looked at
    };

    Level& level(std::uint8_t priority);
    std::optional<QueuedMessage> take(Level& l, std::deque<Slot>::iterator it);
    bool load(Level& l, Slot& slot);
    void read_ahead(Level& l, std::size_t from);
    void skip_tombstones(Level& l);
    void compact(Level& l);

    std::vector<Level> levels_;
    Pager* pager_;
    std::size_t live_ = 0;
    std::size_t in_memory_ = 0;
    std::uint64_t bytes_ = 0;
    std::size_t read_ahead_ = 256;
    std::vector<Message*> transient_scratch_;
    std::vector<std::size_t> transient_index_;
    std::vector<std::uint64_t> transient_locations_;
};

}  // namespace warren::broker
