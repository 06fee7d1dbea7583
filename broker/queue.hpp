// A queue: ready messages in a MessageStore, the consumers attached to it, and the rules that
// apply on the way in (TTL, length limits) and on the way out (round-robin push to consumers
// with credit, consumer priorities, single active consumer). Owned by its VHost.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/arrival_index.hpp"
#include "broker/consumer.hpp"
#include "broker/delayed_messages.hpp"
#include "broker/policy.hpp"
#include "broker/ready_messages.hpp"
#include "broker/retry_settings.hpp"
#include "broker/stats.hpp"
#include "store/message_log.hpp"
#include "broker/queue_args.hpp"
#include "broker/queued_message.hpp"
#include "broker/timer_queue.hpp"
#include "exchanges/destination.hpp"

namespace warren::broker {

class VHost;
class Stream;

enum class DeadLetterReason : std::uint8_t { Rejected, Expired, Maxlen, DeliveryLimit };
std::string_view dead_letter_reason_name(DeadLetterReason reason);

struct QueueFlags {
    bool durable = false;
    bool exclusive = false;
    bool auto_delete = false;
};

enum class EnqueueOutcome : std::uint8_t {
    Enqueued,
    Rejected,      // x-overflow reject-publish: the publisher gets basic.nack
    DeadLettered,  // x-overflow reject-publish-dlx: refused and dead-lettered (also nacked)
};

class Queue {
public:
    Queue(VHost& vhost, QueueId id, std::string name, QueueFlags flags, QueueArgs args,
          protocol::FieldTable raw_args, std::uint64_t owner_connection);
    ~Queue();
    Queue(const Queue&) = delete;
    Queue& operator=(const Queue&) = delete;

    QueueId id() const { return id_; }
    const std::string& name() const { return name_; }
    VHost& vhost() const { return vhost_; }
    const QueueFlags& flags() const { return flags_; }
    // The arguments the queue acts on: its own (as declared) with its policies applied.
    const QueueArgs& args() const { return args_; }
    const QueueArgs& declared_args() const { return declared_args_; }
    const protocol::FieldTable& raw_args() const { return raw_args_; }
    std::uint64_t exclusive_owner() const { return owner_; }  // connection id; 0 if not exclusive
    // The queue's id in its vhost's data directory; 0 when it is not stored (transient or
    // exclusive, or no data directory). Never reused, so a stale record cannot reach a new queue.
    std::uint32_t stored_id() const { return stored_id_; }
    void set_stored_id(std::uint32_t id) { stored_id_ = id; }
    exchanges::Destination as_destination() const { return {exchanges::DestinationKind::Queue, id_}; }

    // Ready messages (queue.declare-ok's count, as RabbitMQ's messages_ready); messages waiting
    // out a retry backoff are counted apart. A stream counts the messages it keeps.
    std::size_t message_count() const { return stream_ ? stream_message_count() : ready_.size(); }
    std::uint64_t message_bytes() const { return ready_.body_bytes(); }
    std::size_t messages_in_memory() const { return ready_.in_memory() + retrying_.in_memory(); }
    // Returned messages waiting out their retry backoff (RabbitMQ 4.3's messages_delayed);
    // constant time.
    std::size_t messages_delayed() const { return retrying_.size(); }

    // ---- retry with backoff (retry_settings.hpp)
    const RetrySettings& retry() const { return retry_; }
    // The settings a policy gives (null: none), merged with the queue's arguments (set_policies
    // calls it). Messages already waiting keep their deadlines.
    void apply_retry_policy(const RetryArgs* policy);
    // x-delivery-limit as declared, or 20 when retries are on and none is declared.
    std::optional<std::uint64_t> delivery_limit() const;
    std::size_t consumer_count() const { return consumers_.size(); }
    const std::vector<Consumer*>& consumers() const { return consumers_; }
    bool has_exclusive_consumer() const { return exclusive_consumer_; }
    // A stream queue's log (x-queue-type stream); null for every other queue.
    Stream* stream() const { return stream_.get(); }

    // ---- in
    // Whether enqueue() would take the message (x-overflow reject-publish[-dlx] refuses it when
    // the queue is full): a message is stored only for the queues that take it.
    bool accepts(const Message& message) const;
    // The seq the next enqueued message gets (its position, written with a stored message).
    // (A stream's messages are stored under their offset + 1.)
    std::uint64_t next_seq() const { return stream_ ? stream_next_seq() : next_seq_; }
    EnqueueOutcome enqueue(const MessageRef& message);
    // A delivered message coming back (nack/reject with requeue, recover, channel close).
    // Goes back to its original position, marked redelivered; past the delivery limit it is
    // dead-lettered instead. With retries on for `reason`, it waits out its backoff first.
    void requeue(QueuedMessage message, ReturnReason reason = ReturnReason::Rejected);
    // A message of this queue leaves it by a side door (rejected, expired, over a limit): it is
    // settled here and goes to the dead-letter exchange, if there is one.
    void dead_letter(QueuedMessage message, DeadLetterReason reason);

    // ---- storage (the vhost's message log; nothing happens for a queue or message not stored)
    // Whether this queue's copy of `message` is in the message log: a persistent message (any
    // message, for a quorum queue, which RabbitMQ stores whole) in a durable queue.
    bool is_stored(const Message& message) const;
    // A delivery of one of its messages went out: settled at once for no-ack consumers.
    void on_delivered(const QueuedMessage& message, bool settled_now);
    // A consumer acknowledged it.
    void on_acked(const QueuedMessage& message);
    // Recovery: a message on disk goes back in its place.
    void restore(const PagedMessage& message);
    // Moves what exceeds the memory window to disk (called when the turn's writes are done):
    // stored messages, and under memory pressure the others too; `everything` looks at the whole
    // queue, not only at what arrived since the last time.
    void page_out(bool everything = false);
    bool page_out_wanted() const { return page_out_wanted_; }
    void set_page_out_wanted(bool w) { page_out_wanted_ = w; }
    // The queue is being deleted: its stored messages are let go (its deletion is recorded).
    void forget_stored();
    // A clean shutdown: this queue's stored messages, as the checkpoint keeps them (deadlines
    // as unix ms, from `now` and `now_ms`, which name the same instant).
    void checkpoint(std::vector<store::RecoveredEntry>& out, TimePoint now, std::int64_t now_ms) const;

    // ---- out
    // Delivers ready messages to consumers with credit, at most `budget` of them; returns
    // whether more could be delivered (the broker then runs it again next turn).
    bool dispatch(std::size_t budget);
    // basic.get: the next live message, or nothing.
    std::optional<QueuedMessage> take_one();
    // A message taken out whose delivery failed: back to its place, not counted as returned.
    void put_back(QueuedMessage message);
    std::size_t purge();

    // ---- consumers
    void add_consumer(Consumer& consumer);
    void remove_consumer(Consumer& consumer);
    // The consumer that single-active-consumer mode lets receive messages.
    Consumer* active_consumer() const;
    bool has_had_consumers() const { return had_consumers_; }

    // ---- the dead-letter workbench (broker/workbench_*.cpp): reading and moving ready messages
    const ReadyMessages& ready() const { return ready_; }
    // A ready message to look at, its slot untouched: the message itself when in memory, a copy
    // read from the message log when paged out (null when it cannot be read).
    MessageRef peek(const ReadyMessages::Entry& entry) const;
    // Takes a ready message out by seq (read back if paged out). Its stored pair, if any, is
    // left for the caller to settle (settle_taken) or to hand over.
    std::optional<QueuedMessage> take_seq(std::uint64_t seq);
    void settle_taken(const Message& message) { settle_stored(message); }
    // When the ready messages arrived (the age of the oldest), and how many have.
    const ArrivalIndex& arrivals() const { return arrivals_; }
    // Messages this queue dead-lettered (it has a dead-letter exchange), by DeadLetterReason, and
    // dead letters routed into it since the broker started (what makes it a dead-letter queue
    // for Prometheus). Counted off the publish path, as dead letters are routed.
    const std::array<std::uint64_t, 4>& dead_lettered() const { return dead_lettered_; }
    std::uint64_t dead_letters_received() const { return dead_letters_received_; }
    void note_dead_letter_received() { ++dead_letters_received_; }
    // The age of the oldest ready message; nullopt when empty or unknown.
    std::optional<Duration> oldest_age(TimePoint now) const;

    // ---- policies (policy.hpp)
    // The policy and operator policy that apply now (null: none). Setting them recomputes the
    // arguments and acts at once as RabbitMQ's queue does on a policy change: a lower length
    // limit drops from the head (drop-head), a new expires restarts the idle countdown; a new
    // message-ttl applies to messages enqueued from now on.
    const PolicyRef& policy() const { return policy_; }
    const PolicyRef& operator_policy() const { return operator_policy_; }
    void set_policies(PolicyRef policy, PolicyRef operator_policy);

    // ---- statistics (for the management API): counters, and deliveries not yet settled
    Stats& stats() { return stats_; }
    const Stats& stats() const { return stats_; }
    std::size_t unacked_count() const { return unacked_; }
    void add_unacked() { ++unacked_; }
    void remove_unacked() {
        if (unacked_) --unacked_;
    }

    // ---- housekeeping
    void mark_dirty();  // asks the broker to dispatch this queue at the end of the loop turn
    bool is_dirty() const { return dirty_; }
    void set_dirty(bool d) { dirty_ = d; }
    // x-expires: the queue counts as used now (declare, consume, get).
    void touch();
    // Called by the vhost before the queue is destroyed: timers off, consumers unlinked.
    void shut_down();

    // Bindings where this queue is the destination: exchange id -> number of bindings.
    std::unordered_map<std::uint64_t, std::uint32_t>& bound_from() { return bound_from_; }
    std::uint64_t route_mark = 0;  // de-duplicates a queue within one publish

private:
    std::size_t stream_message_count() const;
    std::uint64_t stream_next_seq() const;
    TimePoint expiry_for(const Message& m, TimePoint now, bool& immediate) const;
    void enforce_length_limit();
    bool over_limit(std::size_t extra_count, std::uint64_t extra_bytes) const;
    Consumer* next_consumer();
    void schedule_ttl(const QueuedMessage& m);
    void on_retry_due();
    void on_ttl_timer();
    void expire_due(TimePoint now);
    void arm_expires_timer();
    void deliver_or_expire_now(QueuedMessage m);
    void push_dead_letter(QueuedMessage m, DeadLetterReason reason);
    void settle_stored(const Message& m);
    void release_stored(const Message* m, std::uint64_t location, bool transient, bool settle);

    // Reads paged-out messages back for ready_.
    class QueuePager final : public Pager {
    public:
        explicit QueuePager(Queue& q) : q_(q) {}
        MessageRef load(std::uint64_t location, bool transient) override;
        bool can_page_out(const Message& message) const override;
        void write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations) override;

    private:
        Queue& q_;
    };

    VHost& vhost_;
    QueueId id_;
    std::string name_;
    QueueFlags flags_;
    QueueArgs declared_args_;
    QueueArgs args_;  // declared_args_ with the policies applied
    protocol::FieldTable raw_args_;
    PolicyRef policy_, operator_policy_;
    std::uint64_t owner_;
    std::uint32_t stored_id_ = 0;

    mutable ArrivalIndex arrivals_;  // mutable: reading the age drops samples no longer needed
    QueuePager pager_{*this};
    ReadyMessages ready_;
    RetrySettings retry_;
    DelayedMessages retrying_;  // returned messages waiting out their backoff
    std::uint64_t next_seq_ = 1;
    bool page_out_wanted_ = false;
    std::array<std::uint64_t, 4> dead_lettered_{};
    std::uint64_t dead_letters_received_ = 0;

    std::vector<Consumer*> consumers_;  // in registration order
    std::size_t round_robin_ = 0;
    bool exclusive_consumer_ = false;
    bool had_consumers_ = false;
    bool dirty_ = false;
    bool dispatching_ = false;

    // TTL: one deadline heap per queue (earliest first), one timer armed at its top.
    struct Deadline {
        TimePoint at;
        std::uint64_t seq;
        std::uint8_t priority;
        // Equal deadlines expire in queue order.
        bool operator>(const Deadline& o) const { return at != o.at ? at > o.at : seq > o.seq; }
    };
    std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
    TimerId ttl_timer_ = 0;
    TimePoint ttl_timer_at_{};

    TimerId expires_timer_ = 0;
    TimePoint last_used_{};

    std::unordered_map<std::uint64_t, std::uint32_t> bound_from_;

    Stats stats_;
    std::size_t unacked_ = 0;  // delivered to a channel, not yet acked, rejected or requeued
    std::unique_ptr<Stream> stream_;  // last: it refers to the queue while it goes
};

}  // namespace warren::broker
