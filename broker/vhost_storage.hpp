// A vhost's persistent messages: the glue between its queues and its store::MessageLog. A
// persistent message routed to durable queues is written once, listing each of them with its
// position there; what then happens to it in each queue (delivered, returned with a count,
// settled) is written as events. Queues read paged-out messages back through here.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "broker/clock.hpp"
#include "broker/message.hpp"
#include "store/message_log.hpp"

namespace warren::broker {

class DelayedExchange;
class Queue;

class VHostStorage {
public:
    VHostStorage(store::MessageLog& log, const Clock& clock);

    store::MessageLog& log() { return log_; }

    // Writes `message` once for these queues (stored id and seq each) and records where.
    void append(Message& message, std::span<const store::QueueEntryRef> queues);
    // Writes a message held by delayed exchanges (their stored ids and seqs) until `delay_ms`
    // from now: the record's TTL field holds the delay, so its deadline is in the record itself.
    void append_delayed(Message& message, std::span<const store::QueueEntryRef> exchanges, std::uint32_t delay_ms);
    void delivered(std::uint64_t location, std::uint32_t queue_id);
    void returned(std::uint64_t location, std::uint32_t queue_id, std::uint32_t delivery_count);
    // Back in its queue but held until `hold_until_ms` (unix ms): a retry waiting for its backoff.
    void held(std::uint64_t location, std::uint32_t queue_id, std::uint32_t delivery_count, std::int64_t hold_until_ms);
    void settled(std::uint64_t location, std::uint32_t queue_id);
    // The queue that held it is gone (its deletion is recorded): settled without an event.
    void forget(std::uint64_t location) { log_.forget(location); }

    // Under memory pressure: writes records of their own for messages no durable queue stores
    // (no queue event will refer to them; recovery drops them), and flushes them at once, so
    // that they may leave memory now. locations[i] stays 0 where writing failed.
    void write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations);

    // Reads a message back; null (logged) when its record cannot be read. `read_ahead` 0: the
    // log's window (reading a queue in order); a small one for a reader that jumps around.
    MessageRef load(std::uint64_t location, std::size_t read_ahead = 0);
    bool is_written(std::uint64_t location) const { return log_.is_written(location); }

    // Queues that took messages this turn page out what exceeds their memory window once the
    // turn's records are written (page_out, at the end of the turn).
    void want_page_out(Queue& queue);
    void forget_queue(Queue& queue);
    // The same for delayed exchanges' held messages.
    void want_page_out(DelayedExchange& exchange);
    void forget_exchange(DelayedExchange& exchange);
    void page_out();

    // Appends and events so far: a transaction holds its commit-ok when it wrote any.
    std::uint64_t writes() const { return writes_; }
    std::uint64_t unreadable() const { return unreadable_; }
    std::uint64_t paged_transient() const { return paged_transient_; }
    // How the last start found this vhost's messages.
    const store::RecoveryStats& recovery() const { return recovery_; }
    void set_recovery(const store::RecoveryStats& stats) { recovery_ = stats; }

private:
    store::MessageLog& log_;
    const Clock& clock_;  // the broker's TurnClock: one read per loop turn, not per record
    std::vector<store::QueueEntryRef> scratch_;
    std::vector<Queue*> page_out_;
    std::vector<DelayedExchange*> page_out_exchanges_;
    std::uint64_t writes_ = 0;
    std::uint64_t unreadable_ = 0;
    std::uint64_t paged_transient_ = 0;
    store::RecoveryStats recovery_;
};

}  // namespace warren::broker
