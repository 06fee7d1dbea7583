// See queue.hpp. TTL: each queue keeps one min-heap of deadlines and one timer armed at the
// earliest, so a message expires at its deadline wherever it is in the queue (RabbitMQ only
// expires messages at the head; DECISIONS.md). Retries: a returned message waits out its backoff
// in `retrying_` (a DelayedMessages), then goes back to its place.
#include "broker/queue.hpp"

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/dead_letter.hpp"
#include "broker/held_checkpoint.hpp"
#include "broker/scope_guard.hpp"
#include "broker/stream.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

std::string_view dead_letter_reason_name(DeadLetterReason reason) {
    switch (reason) {
    case DeadLetterReason::Rejected: return "rejected";
    case DeadLetterReason::Expired: return "expired";
    case DeadLetterReason::Maxlen: return "maxlen";
    case DeadLetterReason::DeliveryLimit: return "delivery_limit";
    }
    return "rejected";
}

Queue::Queue(VHost& vhost, QueueId id, std::string name, QueueFlags flags, QueueArgs args,
             protocol::FieldTable raw_args, std::uint64_t owner_connection)
    : vhost_(vhost),
      id_(id),
      name_(std::move(name)),
      flags_(flags),
      declared_args_(args),
      args_(std::move(args)),
      raw_args_(std::move(raw_args)),
      owner_(owner_connection),
      ready_(args_.max_priority, &pager_),
      retry_(resolve_retry(args_.retry)),
      retrying_(vhost.broker().timers(), &pager_, [this] { on_retry_due(); }) {
    if (args_.type == QueueType::Stream)
        stream_ = std::make_unique<Stream>(
            *this, StreamSettings{args_.max_age_ms, args_.max_length_bytes,
                                  args_.stream_segment_bytes.value_or(default_stream_segment_bytes)});
    last_used_ = vhost_.broker().now();
    arm_expires_timer();
}

void Queue::apply_retry_policy(const RetryArgs* policy) { retry_ = resolve_retry(args_.retry, policy); }

std::optional<std::uint64_t> Queue::delivery_limit() const {
    // LavinMQ's default and RabbitMQ 4's for quorum queues: retries must end somewhere.
    if (!args_.delivery_limit && retry_.enabled()) return default_retry_delivery_limit;
    return args_.delivery_limit;
}

Queue::~Queue() { shut_down(); }

std::size_t Queue::stream_message_count() const {
    return stream_->size();
}
std::uint64_t Queue::stream_next_seq() const {
    return stream_->next_offset() + 1;
}

void Queue::shut_down() {
    TimerQueue& timers = vhost_.broker().timers();
    if (ttl_timer_) timers.cancel(ttl_timer_);
    if (expires_timer_) timers.cancel(expires_timer_);
    ttl_timer_ = expires_timer_ = 0;
    retrying_.shut_down();
    vhost_.broker().forget_queue(*this);
    if (VHostStorage* s = vhost_.storage()) s->forget_queue(*this);
}

// ---- in -------------------------------------------------------------------------------------

bool Queue::over_limit(std::size_t extra_count, std::uint64_t extra_bytes) const {
    // Messages waiting for a retry count towards the length, as in RabbitMQ 4.3.
    if (args_.max_length && ready_.size() + retrying_.size() + extra_count > *args_.max_length) return true;
    if (args_.max_length_bytes && ready_.body_bytes() + extra_bytes > *args_.max_length_bytes) return true;
    return false;
}

TimePoint Queue::expiry_for(const Message& m, TimePoint now, bool& immediate) const {
    std::optional<std::uint64_t> ttl = args_.message_ttl_ms;
    if (auto per_message = m.expiration_ms()) ttl = ttl ? std::min(*ttl, *per_message) : *per_message;
    immediate = ttl && *ttl == 0;
    // A TTL of 0 has its deadline now: delivered at once, it has no time left if it comes back.
    if (!ttl) return TimePoint{};
    return now + std::chrono::milliseconds(*ttl);
}

bool Queue::accepts(const Message& message) const {
    if (stream_) return true;  // a stream's limits are retention, not refusals
    return args_.overflow == Overflow::DropHead || !over_limit(1, message.body_size());
}

EnqueueOutcome Queue::enqueue(const MessageRef& message) {
    if (stream_) {
        stream_->append(message);
        if (VHostStorage* s = vhost_.storage(); s && message->store_location()) s->want_page_out(*this);
        mark_dirty();
        return EnqueueOutcome::Enqueued;
    }
    if (!accepts(*message)) {
        if (args_.overflow == Overflow::RejectPublishDlx) {
            // Refused, so never this queue's: nothing of it is stored for this queue.
            QueuedMessage refused(message, next_seq_++);
            push_dead_letter(std::move(refused), DeadLetterReason::Maxlen);
            return EnqueueOutcome::DeadLettered;
        }
        return EnqueueOutcome::Rejected;
    }
    stats_.add(Stat::publish);
    TimePoint now = vhost_.broker().now();
    bool immediate = false;
    QueuedMessage m(message, next_seq_++, expiry_for(*message, now, immediate));
    arrivals_.note(m.seq(), now);
    if (immediate) {
        deliver_or_expire_now(std::move(m));
        return EnqueueOutcome::Enqueued;
    }
    if (m.has_expiry()) schedule_ttl(m);
    const bool stored = is_stored(*m.message);
    ready_.push(std::move(m));
    if (args_.overflow == Overflow::DropHead) enforce_length_limit();
    if (VHostStorage* s = vhost_.storage(); s && (stored || vhost_.broker().memory_pressure()))
        s->want_page_out(*this);
    mark_dirty();
    return EnqueueOutcome::Enqueued;
}

// A TTL of 0 (RabbitMQ): the message is delivered if a consumer can take it right now,
// otherwise it expires at once. Enqueue runs only from a publish or from draining the
// dead-letter list, so no caller is walking the consumer's channel while it is delivered to.
void Queue::deliver_or_expire_now(QueuedMessage m) {
    if (ready_.empty()) {
        if (Consumer* c = next_consumer(); c && c->channel->try_deliver(*c, *this, m)) return;
    }
    dead_letter(std::move(m), DeadLetterReason::Expired);
}

void Queue::enforce_length_limit() {
    while (over_limit(0, 0)) {
        auto dropped = ready_.pop_oldest_lowest();
        if (!dropped) break;
        dead_letter(std::move(*dropped), DeadLetterReason::Maxlen);
    }
}

void Queue::requeue(QueuedMessage m, ReturnReason reason) {
    if (stream_) return;  // a stream keeps every message: nothing goes back
    m.count_return();
    if (auto limit = delivery_limit(); limit && m.delivery_count() > *limit) {
        dead_letter(std::move(m), DeadLetterReason::DeliveryLimit);
        return;
    }
    const TimePoint now = vhost_.broker().now();
    if (m.is_expired(now)) {
        dead_letter(std::move(m), DeadLetterReason::Expired);
        return;
    }
    if (retry_.applies_to(reason)) {
        const std::uint64_t delay = retry_.delay_ms(m.delivery_count(), vhost_.broker().random());
        const TimePoint retry_at = now + std::chrono::milliseconds(delay);
        VHostStorage* storage = vhost_.storage();
        // Stored as a Hold: after a restart it still waits, until the same instant.
        if (is_stored(*m.message))
            storage->held(m.message->store_location(), stored_id_, m.delivery_count(),
                          vhost_.broker().clock().unix_ms() + static_cast<std::int64_t>(delay));
        // A TTL that ends first releases it then, to be dead-lettered as expired on time.
        const TimePoint at = m.has_expiry() ? std::min(retry_at, m.expires_at) : retry_at;
        retrying_.hold(std::move(m), at, storage != nullptr);
        if (storage) storage->want_page_out(*this);
        return;
    }
    if (m.has_expiry()) schedule_ttl(m);
    if (is_stored(*m.message))
        vhost_.storage()->returned(m.message->store_location(), stored_id_, m.delivery_count());
    ready_.requeue(std::move(m));
    mark_dirty();
}

void Queue::dead_letter(QueuedMessage m, DeadLetterReason reason) {
    settle_stored(*m.message);
    push_dead_letter(std::move(m), reason);
}

void Queue::push_dead_letter(QueuedMessage m, DeadLetterReason reason) {
    // Without a dead-letter exchange the message is dropped, as in RabbitMQ.
    if (!args_.dead_letter_exchange) return;
    ++dead_lettered_[static_cast<std::size_t>(reason)];
    ++vhost_.dead_lettered[static_cast<std::size_t>(reason)];
    vhost_.broker().push_dead_letter(
        DeadLetter{&vhost_, name_, *args_.dead_letter_exchange, args_.dead_letter_routing_key, std::move(m), reason});
}

// ---- out ------------------------------------------------------------------------------------

Consumer* Queue::active_consumer() const { return consumers_.empty() ? nullptr : consumers_.front(); }

Consumer* Queue::next_consumer() {
    if (consumers_.empty()) return nullptr;
    if (args_.single_active_consumer) {
        Consumer* c = active_consumer();
        return c->channel->can_deliver(*c) ? c : nullptr;
    }
    // Round-robin among the consumers of the highest priority that have credit.
    const std::size_t n = consumers_.size();
    if (round_robin_ >= n) round_robin_ = 0;
    Consumer* best = nullptr;
    std::size_t best_index = 0;
    for (std::size_t k = 0; k < n; ++k) {
        std::size_t i = round_robin_ + k;
        if (i >= n) i -= n;
        Consumer* c = consumers_[i];
        if (best && c->priority <= best->priority) continue;
        if (c->channel->can_deliver(*c)) {
            best = c;
            best_index = i;
        }
    }
    if (best) round_robin_ = best_index + 1;
    return best;
}

bool Queue::dispatch(std::size_t budget) {
    if (dispatching_) return false;
    FlagGuard dispatching(dispatching_);
    if (stream_) return stream_->dispatch(budget);
    TimePoint now = vhost_.broker().now();
    std::size_t done = 0;
    while (done < budget && !ready_.empty()) {
        Consumer* c = next_consumer();
        if (!c) break;
        std::optional<QueuedMessage> next = ready_.pop_front();
        if (!next) break;  // what was left could not be read back (logged)
        QueuedMessage m = std::move(*next);
        ++done;
        if (m.is_expired(now)) {
            dead_letter(std::move(m), DeadLetterReason::Expired);
            continue;
        }
        // A delivery that fails leaves the message here and closes only that consumer's
        // connection (which can take no more deliveries from now on): back to its place.
        if (!c->channel->try_deliver(*c, *this, m)) put_back(std::move(m));
    }
    return done >= budget && !ready_.empty();
}

std::optional<QueuedMessage> Queue::take_one() {
    touch();
    TimePoint now = vhost_.broker().now();
    while (std::optional<QueuedMessage> next = ready_.pop_front()) {
        QueuedMessage m = std::move(*next);
        if (m.is_expired(now)) {
            dead_letter(std::move(m), DeadLetterReason::Expired);
            continue;
        }
        return m;
    }
    return std::nullopt;
}

void Queue::put_back(QueuedMessage m) {
    ready_.requeue(std::move(m));
    mark_dirty();
}

std::size_t Queue::purge() {
    // Messages waiting for a retry go too, and count (RabbitMQ 4.3).
    std::size_t n = ready_.size() + retrying_.size();
    ready_.drain([&](const Message* m, std::uint64_t location, bool transient) {
        release_stored(m, location, transient, true);
    });
    retrying_.drain([&](const DelayedMessages::View& v) { release_stored(v.message, v.location, v.transient, true); });
    deadlines_ = {};
    if (ttl_timer_) vhost_.broker().timers().cancel(ttl_timer_);
    ttl_timer_ = 0;
    return n;
}

// ---- the workbench ----------------------------------------------------------------------------

MessageRef Queue::peek(const ReadyMessages::Entry& e) const {
    if (e.message) {
        auto* m = const_cast<Message*>(e.message);  // one more reference; the message stays immutable
        m->add_ref();
        return MessageRef(m);
    }
    VHostStorage* storage = vhost_.storage();
    return storage ? storage->load(e.location) : MessageRef();
}

std::optional<QueuedMessage> Queue::take_seq(std::uint64_t seq) {
    std::optional<ReadyMessages::Entry> e = ready_.find(seq);
    if (!e) return std::nullopt;
    return ready_.remove(seq, e->priority);
}

std::optional<Duration> Queue::oldest_age(TimePoint now) const {
    std::optional<std::uint64_t> oldest = ready_.oldest_seq();
    if (!oldest) return std::nullopt;
    arrivals_.forget_before(*oldest);
    std::optional<TimePoint> at = arrivals_.arrived_by(*oldest);
    if (!at) return std::nullopt;
    return now > *at ? now - *at : Duration::zero();
}

// ---- consumers ------------------------------------------------------------------------------

void Queue::add_consumer(Consumer& consumer) {
    consumers_.push_back(&consumer);
    if (stream_) stream_->on_consumer_added(consumer);
    if (consumer.exclusive) exclusive_consumer_ = true;
    had_consumers_ = true;
    touch();
    mark_dirty();
}

void Queue::remove_consumer(Consumer& consumer) {
    auto it = std::find(consumers_.begin(), consumers_.end(), &consumer);
    if (it == consumers_.end()) return;
    if (stream_) stream_->on_consumer_removed(consumer);
    std::size_t index = static_cast<std::size_t>(it - consumers_.begin());
    consumers_.erase(it);
    if (round_robin_ > index) --round_robin_;
    if (consumer.exclusive) exclusive_consumer_ = false;
    consumer.queue = nullptr;
    touch();
    arm_expires_timer();
    mark_dirty();
}

// ---- housekeeping ---------------------------------------------------------------------------

void Queue::mark_dirty() {
    if (!consumers_.empty()) vhost_.broker().mark_dirty(*this);
}

void Queue::touch() { last_used_ = vhost_.broker().now(); }

void Queue::set_policies(PolicyRef policy, PolicyRef operator_policy) {
    // Policies do not apply to streams (yet): RabbitMQ 3.10 applies only its stream keys
    // (max-age, max-length-bytes, stream-max-segment-size-bytes) to them, and a classic queue's
    // keys (expires, message-ttl, dead-lettering, overflow) must never reach a stream.
    if (stream_) return;
    policy_ = std::move(policy);
    operator_policy_ = std::move(operator_policy);
    QueueArgs before = args_;
    args_ = effective_queue_args(declared_args_, raw_args_, policy_.get(), operator_policy_.get());
    // Retry keys: from now on for each return; messages already waiting keep their deadlines.
    const RetryArgs retry_policy = effective_retry_policy(policy_.get(), operator_policy_.get());
    apply_retry_policy(retry_policy.empty() ? nullptr : &retry_policy);
    if (args_.expires_ms != before.expires_ms) {
        // rabbit_amqqueue_process:init_exp/2: the timer starts again with the new value.
        if (expires_timer_) vhost_.broker().timers().cancel(expires_timer_);
        expires_timer_ = 0;
        touch();
        arm_expires_timer();
    }
    // init_max_length/2: a queue over its new limit drops from the head at once.
    if (args_.overflow == Overflow::DropHead && over_limit(0, 0)) enforce_length_limit();
}

void Queue::arm_expires_timer() {
    if (!args_.expires_ms || expires_timer_ || !consumers_.empty()) return;
    auto deadline = last_used_ + std::chrono::milliseconds(*args_.expires_ms);
    expires_timer_ = vhost_.broker().timers().schedule(deadline, [this] {
        expires_timer_ = 0;
        if (!consumers_.empty()) return;  // re-armed when the last consumer goes
        if (last_used_ + std::chrono::milliseconds(*args_.expires_ms) > vhost_.broker().now()) {
            arm_expires_timer();
            return;
        }
        vhost_.delete_queue(*this);  // the last thing this callback does
    });
}

void Queue::schedule_ttl(const QueuedMessage& m) {
    // Entries of messages that were delivered stay in the heap until their deadline; rebuild
    // from the ready messages when they pile up, so the heap stays O(ready messages).
    if (deadlines_.size() > 2 * ready_.size() + 1024) {
        deadlines_ = {};
        ready_.for_each_deadline([this](std::uint64_t seq, std::uint8_t priority, TimePoint at) {
            deadlines_.push(Deadline{at, seq, priority});
        });
    }
    deadlines_.push(Deadline{m.expires_at, m.seq(), m.message->priority()});
    if (ttl_timer_ && ttl_timer_at_ <= m.expires_at) return;
    TimerQueue& timers = vhost_.broker().timers();
    if (ttl_timer_) timers.cancel(ttl_timer_);
    ttl_timer_at_ = m.expires_at;
    ttl_timer_ = timers.schedule(m.expires_at, [this] { on_ttl_timer(); });
}

// Returned messages whose backoff is over go back to their places, a bounded batch per turn.
void Queue::on_retry_due() {
    constexpr std::size_t budget = 512;
    const TimePoint now = vhost_.broker().now();
    bool released = false;
    for (std::size_t n = 0; n < budget; ++n) {
        TimePoint deadline{};
        std::optional<QueuedMessage> due = retrying_.pop_due(now, &deadline);
        if (!due) break;
        vhost_.broker().note_release(deadline);
        if (due->is_expired(now)) {
            dead_letter(std::move(*due), DeadLetterReason::Expired);
            continue;
        }
        if (due->has_expiry()) schedule_ttl(*due);
        ready_.requeue(std::move(*due));
        released = true;
    }
    retrying_.rearm();
    if (released) {
        if (VHostStorage* s = vhost_.storage()) s->want_page_out(*this);
        mark_dirty();
    }
}

void Queue::on_ttl_timer() {
    ttl_timer_ = 0;
    expire_due(vhost_.broker().now());
    if (!deadlines_.empty()) {
        ttl_timer_at_ = deadlines_.top().at;
        ttl_timer_ = vhost_.broker().timers().schedule(ttl_timer_at_, [this] { on_ttl_timer(); });
    }
}

void Queue::expire_due(TimePoint now) {
    while (!deadlines_.empty() && deadlines_.top().at <= now) {
        Deadline d = deadlines_.top();
        deadlines_.pop();
        if (auto m = ready_.remove(d.seq, d.priority)) dead_letter(std::move(*m), DeadLetterReason::Expired);
    }
}

// ---- storage ------------------------------------------------------------------------------------

namespace {
// Messages of a stored queue kept in memory per priority level; the rest wait on disk. Enough
// to keep consumers fed between read-aheads without holding a long queue's bodies.
constexpr std::size_t memory_window = 2048;
}  // namespace

// A stream's messages are stored by the stream itself: no delivery or ack writes an event.
bool Queue::is_stored(const Message& m) const {
    return !stream_ && stored_id_ && m.store_location() && (m.is_persistent() || args_.type == QueueType::Quorum);
}

void Queue::settle_stored(const Message& m) {
    if (is_stored(m)) vhost_.storage()->settled(m.store_location(), stored_id_);
}

void Queue::on_delivered(const QueuedMessage& m, bool settled_now) {
    if (!is_stored(*m.message)) return;
    if (settled_now)
        vhost_.storage()->settled(m.message->store_location(), stored_id_);
    else
        vhost_.storage()->delivered(m.message->store_location(), stored_id_);
}

void Queue::on_acked(const QueuedMessage& m) { settle_stored(*m.message); }

void Queue::restore(const PagedMessage& m) {
    next_seq_ = std::max(next_seq_, m.seq + 1);
    if (m.hold_until != TimePoint{}) {
        // Waiting out a backoff when the broker stopped: until the same instant (or, passed,
        // released at once, in deadline order); a TTL that ends first releases it then.
        const TimePoint at = m.expires_at != TimePoint{} ? std::min(m.hold_until, m.expires_at) : m.hold_until;
        retrying_.restore(m.location, m.seq, m.delivery_count, at, m.expires_at);
        return;
    }
    ready_.push_paged(m);
    if (m.arrived_at != TimePoint{}) arrivals_.restore(m.seq, m.arrived_at);
    if (m.expires_at != TimePoint{}) {
        deadlines_.push(Deadline{m.expires_at, m.seq, m.priority});
        if (!ttl_timer_ || ttl_timer_at_ > m.expires_at) {
            TimerQueue& timers = vhost_.broker().timers();
            if (ttl_timer_) timers.cancel(ttl_timer_);
            ttl_timer_at_ = m.expires_at;
            ttl_timer_ = timers.schedule(m.expires_at, [this] { on_ttl_timer(); });
        }
    }
}

void Queue::page_out(bool everything) {
    if (stream_) {
        stream_->page_out();
        return;
    }
    const bool pressure = vhost_.broker().memory_pressure();
    ready_.page_out(memory_window, pressure, everything);
    retrying_.page_out(vhost_.broker().now(), pressure, everything);
}

void Queue::forget_stored() {
    if (stream_) stream_->forget_stored();
    ready_.drain([&](const Message* m, std::uint64_t location, bool transient) {
        release_stored(m, location, transient, false);
    });
    retrying_.drain([&](const DelayedMessages::View& v) { release_stored(v.message, v.location, v.transient, false); });
}

// A ready message leaves without being read back (purge, deletion). In memory it is stored for
// this queue if is_stored() says so; paged out, it is either this queue's stored message or a
// record written for it alone under memory pressure.
void Queue::release_stored(const Message* m, std::uint64_t location, bool transient, bool settle) {
    VHostStorage* storage = vhost_.storage();
    if (!storage) return;
    if (m ? is_stored(*m) : !transient) {
        if (settle)
            storage->settled(location, stored_id_);
        else
            storage->forget(location);
    } else if (!m) {
        storage->forget(location);
    }
}

void Queue::checkpoint(std::vector<store::RecoveredEntry>& out, TimePoint now, std::int64_t now_ms) const {
    if (!stored_id_) return;
    if (stream_) {
        stream_->checkpoint(out, stored_id_);
        return;
    }
    ready_.for_each([&](const ReadyMessages::Entry& r) {
        if (r.message ? !is_stored(*r.message) : r.transient) return;
        store::RecoveredEntry e;
        e.queue_id = stored_id_;
        e.queue_seq = r.seq;
        e.location = r.location;
        e.body_size = static_cast<std::uint32_t>(r.body_size);
        e.priority = r.priority;
        e.delivery_count = r.delivery_count;
        e.has_deadline = true;
        e.deadline_ms = r.expires_at == TimePoint{} ? -1 : wall_ms(r.expires_at, now, now_ms);
        out.push_back(e);
    });
    retrying_.for_each([&](const DelayedMessages::View& v) {
        auto e = held_checkpoint_entry(v, stored_id_, v.message && is_stored(*v.message));
        if (!e) return;
        e->deadline_ms = v.expires_at == TimePoint{} ? -1 : wall_ms(v.expires_at, now, now_ms);
        // Held until the earlier of its retry and its TTL: either way it is released then.
        e->hold_until_ms = wall_ms(v.at, now, now_ms);
        out.push_back(*e);
    });
}

MessageRef Queue::QueuePager::load(std::uint64_t location, bool transient) {
    VHostStorage* storage = q_.vhost_.storage();
    if (!storage) return {};
    MessageRef m = storage->load(location);
    if (transient) {
        // Written only to leave memory: back in memory, it is a transient message again.
        storage->forget(location);
        if (m) m->set_store_location(0);
    } else if (!m) {
        // Unreadable: the message is gone; its pair is settled so that its segment can go too.
        storage->settled(location, q_.stored_id_);
    }
    return m;
}

void Queue::QueuePager::write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations) {
    if (VHostStorage* storage = q_.vhost_.storage()) storage->write_transient(messages, locations);
}

bool Queue::QueuePager::can_page_out(const Message& m) const {
    return q_.is_stored(m) && q_.vhost_.storage()->is_written(m.store_location());
}

}  // namespace warren::broker
