// See delayed_messages.hpp. The heap holds 24-byte entries; what is not needed to order them or
// to read the message back stays in the message (in memory) or its record (on disk), except a
// TTL deadline, kept in a side table for the few held messages that have one. New entries wait
// in `fresh_` until the end of the turn, when their records are written, so that they can leave
// memory as they join the heap: nothing ever scans the heap in the steady state.
#include "broker/delayed_messages.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>

namespace warren::broker {

namespace {

// A message due this soon stays in memory: reading it back would cost more than it saves.
constexpr auto keep_in_memory_within = std::chrono::seconds(1);

std::int64_t count_of(TimePoint t) {
    return t.time_since_epoch().count();
}
TimePoint time_of(std::int64_t c) {
    return TimePoint(Duration(c));
}

}  // namespace

DelayedMessages::DelayedMessages(TimerQueue& timers, Pager* pager, std::function<void()> on_due)
    : timers_(timers), pager_(pager), on_due_(std::move(on_due)) {}

DelayedMessages::~DelayedMessages() {
    shut_down();
    for (std::size_t i = 0; i < heap_.size(); ++i) release_entry(heap_[i]);
    for (Entry& e : fresh_) release_entry(e);
}

void DelayedMessages::shut_down() {
    if (timer_) timers_.cancel(timer_);
    timer_ = 0;
}

void DelayedMessages::release_entry(Entry& e) {
    if (Message* m = message_of(e)) {
        MessageRef(m).reset();
        --in_memory_;
    }
    e.word = paged_bit;
}

void DelayedMessages::hold(QueuedMessage m, TimePoint at, bool defer) {
    const std::uint64_t packed = m.seq() | std::uint64_t{m.delivery_count()} << QueuedMessage::seq_bits;
    Entry e{count_of(at), packed, 0};
    // Room first, so that nothing below can throw once the reference is taken.
    if (!defer) {
        heap_.reserve(heap_.size() + 1);
    } else if (fresh_.size() == fresh_.capacity()) {
        fresh_.reserve(std::max<std::size_t>(64, fresh_.capacity() * 2));
    }
    if (m.has_expiry()) expiry_[m.seq()] = m.expires_at;
    e.word = reinterpret_cast<std::uint64_t>(m.message.release());
    assert(!(e.word & paged_bit) && "user-space pointers leave the top bits clear");
    if (defer) {
        fresh_.push_back(e);
        fresh_min_ = std::min(fresh_min_, e.at);
    } else {
        heap_.push(e);
    }
    ++size_;
    ++in_memory_;
    arm(e.at);
}

void DelayedMessages::restore(std::uint64_t location, std::uint64_t seq, std::uint16_t delivery_count, TimePoint at,
                              TimePoint expires_at) {
    Entry e{count_of(at), (seq & QueuedMessage::seq_mask) | std::uint64_t{delivery_count} << QueuedMessage::seq_bits,
            (location & location_mask) | paged_bit};
    heap_.push(e);
    if (expires_at != TimePoint{}) expiry_[seq] = expires_at;
    ++size_;
    arm(e.at);
}

std::optional<TimePoint> DelayedMessages::next_deadline() const {
    std::int64_t next = fresh_min_;
    if (!heap_.empty()) next = std::min(next, heap_.front().at);
    if (next == INT64_MAX) return std::nullopt;
    return time_of(next);
}

// Entries of this turn that are due already (a delay of a millisecond, a turn that took
// longer) join the heap now, in memory; the rest wait for page_out().
void DelayedMessages::admit_due(std::int64_t now) {
    if (fresh_min_ > now) return;
    std::int64_t left_min = INT64_MAX;
    std::size_t kept = 0;
    for (Entry& e : fresh_) {
        if (e.at <= now) {
            heap_.push(e);
        } else {
            left_min = std::min(left_min, e.at);
            fresh_[kept++] = e;
        }
    }
    fresh_.resize(kept);
    fresh_min_ = left_min;
}

std::optional<QueuedMessage> DelayedMessages::pop_due(TimePoint now, TimePoint* deadline) {
    const std::int64_t n = count_of(now);
    admit_due(n);
    while (!heap_.empty() && heap_.front().at <= n) {
        Entry e = heap_.pop();
        --size_;
        const std::uint64_t seq = seq_of(e);
        TimePoint expires{};
        if (auto it = expiry_.find(seq); it != expiry_.end()) {
            expires = it->second;
            expiry_.erase(it);
        }
        const auto count = static_cast<std::uint16_t>(e.packed >> QueuedMessage::seq_bits);
        if (deadline) *deadline = time_of(e.at);
        if (Message* m = message_of(e)) {
            --in_memory_;
            return QueuedMessage(MessageRef(m), seq, expires, count);
        }
        MessageRef m = pager_ ? pager_->load(e.word & location_mask, (e.word & transient_bit) != 0) : MessageRef();
        if (m) return QueuedMessage(std::move(m), seq, expires, count);
    }
    return std::nullopt;
}

void DelayedMessages::arm(std::int64_t at) {
    if (timer_ && timer_at_ <= at) return;
    if (timer_) timers_.cancel(timer_);
    timer_at_ = at;
    timer_ = timers_.schedule(time_of(at), [this] {
        timer_ = 0;
        on_due_();
    });
}

void DelayedMessages::rearm() {
    if (auto next = next_deadline())
        arm(count_of(*next));
    else
        shut_down();
}

void DelayedMessages::page_out(TimePoint now, bool transient_too, bool everything) {
    const std::int64_t keep_until = count_of(now + keep_in_memory_within);
    transient_scratch_.clear();
    transient_index_.clear();
    // Looks at one entry: paged out at once if its record is written; a transient message
    // under memory pressure is noted, to be written in one batch.
    auto examine = [&](Entry& e, std::size_t index) {
        Message* m = message_of(e);
        if (!m || !pager_ || e.at <= keep_until) return;
        if (pager_->can_page_out(*m)) {
            const std::uint64_t location = m->store_location();
            if (location & ~location_mask) return;  // beyond what an entry can say: stays
            MessageRef(m).reset();
            e.word = location | paged_bit;
            --in_memory_;
        } else if (transient_too && !m->store_location()) {
            transient_scratch_.push_back(m);
            transient_index_.push_back(index);
        }
    };
    // Fresh entries first, in place (their indexes are stable until they are pushed).
    for (std::size_t i = 0; i < fresh_.size(); ++i) examine(fresh_[i], i);
    auto write_transient = [&](auto& entries) {
        if (transient_scratch_.empty()) return;
        transient_locations_.assign(transient_scratch_.size(), 0);
        pager_->write_transient(transient_scratch_, transient_locations_);
        for (std::size_t j = 0; j < transient_index_.size(); ++j) {
            const std::uint64_t location = transient_locations_[j];
            if (!location || (location & ~location_mask)) continue;
            Entry& e = entries[transient_index_[j]];
            MessageRef(message_of(e)).reset();
            e.word = location | paged_bit | transient_bit;
            --in_memory_;
        }
        transient_scratch_.clear();
        transient_index_.clear();
    };
    write_transient(fresh_);
    heap_.reserve(heap_.size() + fresh_.size());
    for (const Entry& e : fresh_) heap_.push(e);
    fresh_.clear();
    fresh_min_ = INT64_MAX;
    if (everything && in_memory_) {
        // Only `word` changes: the heap's order stays as it is.
        for (std::size_t i = 0; i < heap_.size(); ++i) examine(heap_[i], i);
        write_transient(heap_);
    }
}

DelayedMessages::View DelayedMessages::view_of(const Entry& e) const {
    View v;
    v.message = message_of(e);
    v.location = v.message ? v.message->store_location() : e.word & location_mask;
    v.seq = seq_of(e);
    v.delivery_count = static_cast<std::uint16_t>(e.packed >> QueuedMessage::seq_bits);
    v.at = time_of(e.at);
    if (auto it = expiry_.find(v.seq); it != expiry_.end()) v.expires_at = it->second;
    v.transient = is_paged(e) && (e.word & transient_bit) != 0;
    return v;
}

void DelayedMessages::for_each(const std::function<void(const View&)>& f) const {
    for (std::size_t i = 0; i < heap_.size(); ++i) f(view_of(heap_[i]));
    for (const Entry& e : fresh_) f(view_of(e));
}

void DelayedMessages::drain(const std::function<void(const View&)>& f) {
    ChunkedHeap<Entry, Before> heap = std::move(heap_);
    heap_.clear();
    std::vector<Entry> fresh;
    fresh.swap(fresh_);
    auto each = [&](Entry& e) {
        f(view_of(e));
        release_entry(e);
    };
    for (std::size_t i = 0; i < heap.size(); ++i) each(heap[i]);
    for (Entry& e : fresh) each(e);
    expiry_.clear();
    size_ = 0;
    fresh_min_ = INT64_MAX;
    shut_down();
}

}  // namespace warren::broker
