// Messages held until a deadline each: a delayed exchange's waiting messages, and a queue's
// returned messages waiting out their retry backoff. A binary min-heap of 24-byte entries (the
// deadline; seq and delivery count; the message, or where its record is on disk), so that ten
// million held messages cost 240 MB with their bodies on disk, and one timer armed at the
// earliest deadline. Released in deadline order (equal deadlines in seq order), a bounded batch
// per loop turn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "broker/chunked_heap.hpp"
#include "broker/queued_message.hpp"
#include "broker/ready_messages.hpp"
#include "broker/timer_queue.hpp"

namespace warren::broker {

class DelayedMessages {
public:
    // `pager` reads paged-out messages back and decides which may leave memory (null: all stay
    // in memory). `on_due` runs when the earliest deadline has come: it takes what is due with
    // pop_due() and calls rearm().
    DelayedMessages(TimerQueue& timers, Pager* pager, std::function<void()> on_due);
    ~DelayedMessages();
    DelayedMessages(const DelayedMessages&) = delete;
    DelayedMessages& operator=(const DelayedMessages&) = delete;

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::size_t in_memory() const { return in_memory_; }
    // Entries the heap has room for: its memory is 24 bytes each (it grows by 8,192 at a time).
    std::size_t heap_capacity() const { return heap_.capacity(); }

    // Holds `m` (its seq, delivery count and TTL deadline are kept) until `at`. `defer`: the
    // entry waits in a short list for page_out(), which the caller asks for at the end of the
    // turn (its record, if any, is written then); otherwise it joins the heap at once, in memory.
    void hold(QueuedMessage m, TimePoint at, bool defer);
    // Recovery: a message on disk (its record at `location`), held until `at`; a deadline in the
    // past releases it at the first timer, in deadline order.
    void restore(std::uint64_t location, std::uint64_t seq, std::uint16_t delivery_count, TimePoint at,
                 TimePoint expires_at);

    std::optional<TimePoint> next_deadline() const;
    // The earliest message if its deadline is at or before `now`, read back from disk if it was
    // paged out; nullopt when nothing is due. A message that cannot be read back is dropped (the
    // pager logged and settled it) and the next one is tried. `deadline` gets the message's.
    std::optional<QueuedMessage> pop_due(TimePoint now, TimePoint* deadline = nullptr);
    // Arms the timer at the earliest deadline left (after a batch of pop_due()).
    void rearm();
    // The timer off (the owner is going away, or the broker is shutting down).
    void shut_down();

    // End of the turn, once the turn's records are written: the entries that arrived join the
    // heap, and leave memory when their record is written (or, with `transient_too`, once one is
    // written for them alone), unless they are due within a second of `now`. `everything`:
    // the entries already in the heap are looked at too (memory pressure has just begun).
    void page_out(TimePoint now, bool transient_too, bool everything);
    bool has_pending_page_out() const { return !fresh_.empty(); }

    // What a held message is, without reading it back (checkpoint, purge, deletion).
    struct View {
        const Message* message = nullptr;  // null when paged out
        std::uint64_t location = 0;
        std::uint64_t seq = 0;
        std::uint16_t delivery_count = 0;
        TimePoint at{};
        TimePoint expires_at{};
        bool transient = false;  // paged out under memory pressure: a record of its own
    };
    void for_each(const std::function<void(const View&)>& f) const;
    // Removes everything without reading it back, calling f for each.
    void drain(const std::function<void(const View&)>& f);

private:
    struct Entry {
        std::int64_t at;       // TimePoint's count
        std::uint64_t packed;  // seq | delivery count << 48, as QueuedMessage
        std::uint64_t word;    // a Message* (one reference held), or location | paged_bit [| transient_bit]
    };
    static_assert(sizeof(Entry) == 24, "the per-message cost of a held message");
    static constexpr std::uint64_t paged_bit = std::uint64_t{1} << 63;
    static constexpr std::uint64_t transient_bit = std::uint64_t{1} << 62;
    static constexpr std::uint64_t location_mask = transient_bit - 1;

    // The heap's order: the earliest deadline first, equal deadlines in seq order.
    struct Before {
        bool operator()(const Entry& a, const Entry& b) const {
            return a.at != b.at ? a.at < b.at
                                : (a.packed & QueuedMessage::seq_mask) < (b.packed & QueuedMessage::seq_mask);
        }
    };

    static bool is_paged(const Entry& e) { return (e.word & paged_bit) != 0; }
    static Message* message_of(const Entry& e) { return is_paged(e) ? nullptr : reinterpret_cast<Message*>(e.word); }
    static std::uint64_t seq_of(const Entry& e) { return e.packed & QueuedMessage::seq_mask; }
    View view_of(const Entry& e) const;
    void admit_due(std::int64_t now);
    void release_entry(Entry& e);  // drops what an entry holds in memory
    void arm(std::int64_t at);

    TimerQueue& timers_;
    Pager* pager_;
    std::function<void()> on_due_;
    ChunkedHeap<Entry, Before> heap_;  // by (at, seq); grows without copying
    std::vector<Entry> fresh_;  // held this turn, waiting for page_out()
    std::int64_t fresh_min_ = INT64_MAX;
    // TTL deadlines of held messages that have one (a retried message keeps its own), by seq.
    std::unordered_map<std::uint64_t, TimePoint> expiry_;
    std::size_t size_ = 0;
    std::size_t in_memory_ = 0;
    TimerId timer_ = 0;
    std::int64_t timer_at_ = 0;
    std::vector<Message*> transient_scratch_;
    std::vector<std::size_t> transient_index_;
    std::vector<std::uint64_t> transient_locations_;
};

}  // namespace warren::broker
