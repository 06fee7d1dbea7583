// See stream.hpp. Offsets start at 0 and only grow; entries_ holds them in order (with gaps
// only where recovery found a record unreadable), so an offset is found by its distance from
// the first one, or by binary search when there are gaps.
#include "broker/stream.hpp"

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "broker/queue.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

namespace {
// Entries whose bodies stay in memory behind the tail (at most this many, and this many body
// bytes), and bodies read back from disk kept for other consumers reading close behind. The
// byte bound keeps the bodies a publisher's allocations cycle through in the CPU's cache:
// 2048 bodies of 1 KiB, freed 2 MiB after they were written, cost 15% more CPU per message
// published (cold frees, cold body copies) than 256 (bench: stream-publish-1k).
constexpr std::size_t memory_window = 2048;
constexpr std::uint64_t memory_window_bytes = std::uint64_t{256} << 10;
constexpr std::size_t loaded_cache = 4096;
constexpr std::uint64_t loaded_cache_bytes = std::uint64_t{32} << 20;
// A read from disk loads this many entries at once (or this many body bytes, at least one entry):
// one pass in log order, so one pread of the log's read-ahead serves them all. Loading them one
// by one, readers far apart took turns moving the log's one read-ahead window, and each message
// cost a 256 KiB pread (a backlog read 3x at 60 k/s, 70 % of the time in copy_to_user).
constexpr std::size_t load_batch = 256;
constexpr std::uint64_t load_batch_bytes = std::uint64_t{1} << 20;
// How long a tracked offset may wait before it is written: a crash replays at most this much to
// a named reader, and an acking reader adds one ~100-byte record a second to the definitions log
// (compacted at the next start).
constexpr auto tracked_flush_delay = std::chrono::milliseconds(1000);
}  // namespace

Stream::Stream(Queue& queue, StreamSettings settings) : queue_(queue), settings_(settings) {}

void Stream::append(const MessageRef& message) {
    Broker& broker = queue_.vhost().broker();
    const std::int64_t tick = broker.now().time_since_epoch().count();
    if (tick != last_append_tick_) {
        last_chunk_start_ = next_;
        last_append_tick_ = tick;
    }
    Entry e;
    e.offset = next_++;
    e.location = message->store_location();
    e.timestamp_ms = broker.unix_ms();
    e.size = static_cast<std::uint32_t>(message->body_size());
    e.message = message;
    const bool rolled = segments_.empty() || segments_.back().bytes + e.size > settings_.segment_bytes;
    add_to_segments(e.offset, e.size, e.timestamp_ms);
    entries_.push_back(std::move(e));
    ++window_count_;
    window_bytes_ += entries_.back().size;
    if (rolled) apply_retention();
}

void Stream::restore(std::uint64_t offset, std::uint64_t location, std::uint32_t size, std::int64_t timestamp_ms) {
    if (!entries_.empty() && offset < entries_.back().offset) unsorted_ = true;
    Entry e;
    e.offset = offset;
    e.location = location;
    e.size = size;
    e.timestamp_ms = timestamp_ms;
    entries_.push_back(std::move(e));
    next_ = std::max(next_, offset + 1);
    last_chunk_start_ = next_ - 1;
    if (!unsorted_) add_to_segments(offset, size, timestamp_ms);
}

void Stream::sort_restored() {
    if (!unsorted_) return;
    unsorted_ = false;
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.offset < b.offset; });
    segments_.clear();
    total_bytes_ = 0;
    for (const Entry& e : entries_) add_to_segments(e.offset, e.size, e.timestamp_ms);
}

void Stream::add_to_segments(std::uint64_t offset, std::uint32_t size, std::int64_t timestamp_ms) {
    if (segments_.empty() || segments_.back().bytes + size > settings_.segment_bytes)
        segments_.push_back(Segment{offset, 0, timestamp_ms});
    segments_.back().bytes += size;
    segments_.back().last_timestamp_ms = timestamp_ms;
    total_bytes_ += size;
}

// Evaluated when a segment is rolled over, as osiris does: whole segments go from the head,
// never the one being written, while the stream is over x-max-length-bytes or the segment's
// newest message is older than x-max-age.
void Stream::apply_retention() {
    if (!settings_.max_bytes && !settings_.max_age_ms) return;
    const std::int64_t now_ms = queue_.vhost().broker().clock().unix_ms();
    VHostStorage* storage = queue_.vhost().storage();
    while (segments_.size() > 1) {
        const Segment& head = segments_.front();
        const bool too_big = settings_.max_bytes && total_bytes_ > *settings_.max_bytes;
        const bool too_old =
            settings_.max_age_ms && head.last_timestamp_ms < now_ms - static_cast<std::int64_t>(*settings_.max_age_ms);
        if (!too_big && !too_old) break;
        const std::uint64_t end = segments_[1].first_offset;
        while (!entries_.empty() && entries_.front().offset < end) {
            Entry& e = entries_.front();
            if (storage && e.location && queue_.stored_id()) storage->settled(e.location, queue_.stored_id());
            entries_.pop_front();
        }
        total_bytes_ -= head.bytes;
        segments_.pop_front();
    }
    while (!loaded_.empty() && loaded_.front().offset < first_offset()) {
        loaded_bytes_ -= loaded_.front().size;
        loaded_.pop_front();
    }
}

std::size_t Stream::index_of(std::uint64_t offset) {
    sort_restored();
    if (entries_.empty() || offset < entries_.front().offset || offset >= next_) return entries_.size();
    std::size_t guess = static_cast<std::size_t>(offset - entries_.front().offset);
    if (guess < entries_.size() && entries_[guess].offset == offset) return guess;
    auto it = std::lower_bound(entries_.begin(), entries_.end(), offset,
                               [](const Entry& e, std::uint64_t o) { return e.offset < o; });
    return static_cast<std::size_t>(it - entries_.begin());  // the next one there is, if a gap
}

std::uint64_t Stream::first_of_timestamp(std::int64_t ms) {
    sort_restored();
    auto it = std::lower_bound(entries_.begin(), entries_.end(), ms,
                               [](const Entry& e, std::int64_t t) { return e.timestamp_ms < t; });
    return it == entries_.end() ? next_ : it->offset;
}

std::uint64_t Stream::resolve(const OffsetSpec& spec) {
    sort_restored();
    using Kind = OffsetSpec::Kind;
    switch (spec.kind) {
        case Kind::First:
            return first_offset();
        case Kind::Last:
            return entries_.empty() ? next_ : std::max(last_chunk_start_, first_offset());
        case Kind::Next:
            return next_;
        case Kind::Offset:
            // Before the start reads from the start; past the end waits for the next message.
            if (spec.value < 0 || static_cast<std::uint64_t>(spec.value) < first_offset()) return first_offset();
            return std::min<std::uint64_t>(static_cast<std::uint64_t>(spec.value), next_);
        case Kind::Timestamp:
            return first_of_timestamp(spec.value);
    }
    return next_;
}

// Reads entries_[i] back from disk with the entries after it that are not in memory either;
// they stay loaded (loaded_) for every reader that comes by, so a body is read once for all
// readers within loaded_cache of each other.
MessageRef Stream::load(std::size_t i) {
    if (entries_[i].message) return entries_[i].message;
    VHostStorage* storage = queue_.vhost().storage();
    if (!storage || !entries_[i].location) return {};
    std::size_t n = 0;
    std::uint64_t bytes = 0;
    for (std::size_t j = i; j < entries_.size() && n < load_batch && (n == 0 || bytes < load_batch_bytes); ++j) {
        Entry& e = entries_[j];
        if (e.message || !e.location) break;  // the tail, or what is loaded already
        e.message = storage->load(e.location);
        if (!e.message) break;  // unreadable (logged): the reader skips it when it gets there
        loaded_.push_back({e.offset, e.size});
        loaded_bytes_ += e.size;
        bytes += e.size;
        ++n;
    }
    MessageRef m = entries_[i].message;
    // Let the oldest loaded bodies go (never this batch's), unless the tail's window holds them.
    while (loaded_.size() > n && (loaded_.size() > loaded_cache || loaded_bytes_ > loaded_cache_bytes)) {
        const Loaded old = loaded_.front();
        loaded_.pop_front();
        loaded_bytes_ -= old.size;
        std::size_t k = index_of(old.offset);
        if (k < entries_.size() && entries_[k].offset == old.offset && k < entries_.size() - window_count_)
            entries_[k].message.reset();
    }
    return m;
}

bool Stream::passes(const Consumer& consumer, const Message& message) const {
    if (!consumer.stream_filter.active) return true;
    std::optional<std::string_view> value;
    if (message.has_headers()) {
        protocol::BasicProperties props = message.decoded_properties();
        if (auto v = props.headers.find(stream_args::filter_value)) value = v->as_string();
        if (!value) return consumer.stream_filter.match_unfiltered;
        for (const std::string& f : consumer.stream_filter.values)
            if (f == *value) return true;
        return false;
    }
    return consumer.stream_filter.match_unfiltered;
}

bool Stream::dispatch(std::size_t budget) {
    sort_restored();
    const std::vector<Consumer*>& consumers = queue_.consumers();
    std::size_t done = 0;
    bool progress = true;
    // One message per consumer per round, so that one consumer's backlog does not starve the
    // others within the budget.
    while (progress && done < budget) {
        progress = false;
        for (std::size_t k = 0; k < consumers.size() && done < budget; ++k) {
            Consumer& c = *consumers[k];
            if (c.stream_next >= next_ || (!c.stream_group.empty() && !c.group_owner) || !c.channel->can_deliver(c))
                continue;
            std::size_t i = index_of(c.stream_next);
            if (i >= entries_.size()) {  // retention passed it, or a gap: on to what there is
                c.stream_next = entries_.empty() ? next_ : std::max(c.stream_next, first_offset());
                if (c.stream_next < next_) i = index_of(c.stream_next);
                if (i >= entries_.size()) continue;
            }
            Entry& e = entries_[i];
            c.stream_next = e.offset + 1;
            progress = true;
            ++done;
            MessageRef m = load(i);
            if (!m || !passes(c, *m)) continue;
            QueuedMessage qm(m, e.offset + 1);
            std::uint64_t offset = e.offset;
            if (!c.channel->try_deliver(c, queue_, qm, &offset)) {
                c.stream_next = offset;  // this connection is closing; nothing is lost
                continue;
            }
            // try_deliver may have closed things down; the consumer list is re-read each round.
            if (k >= consumers.size()) break;
        }
    }
    if (done < budget) return false;
    for (const Consumer* c : consumers)
        if (c->stream_next < next_ && (c->stream_group.empty() || c->group_owner)) return true;
    return false;
}

void Stream::on_delivered(Consumer& consumer, std::uint64_t offset, std::uint64_t tag) {
    if (!consumer.stream_group.empty()) {
        if (StreamGroup* g = find_group(consumer.stream_group))
            g->outstanding.push_back({offset, consumer.channel, tag, StreamGroup::State::Pending});
    } else if (!consumer.stream_name.empty()) {
        consumer.stream_outstanding.push_back({offset, false});
    }
}

// Kafka's committed offset: the highest offset such that this consumer (or group) has acked
// it and every delivery before it.
void Stream::on_acked(Consumer* consumer, std::uint64_t offset, const Channel& channel, std::uint64_t tag) {
    if (consumer && !consumer->stream_group.empty()) {
        if (StreamGroup* g = find_group(consumer->stream_group))
            settle_group_delivery(*g, channel, tag, StreamGroup::State::Acked);
        return;
    }
    if (!consumer) {
        // A cancelled consumer's delivery: a group's ledger may still hold it.
        for (StreamGroup& g : groups_)
            for (const StreamGroup::Outstanding& o : g.outstanding)
                if (o.tag == tag && o.channel == &channel) {
                    settle_group_delivery(g, channel, tag, StreamGroup::State::Acked);
                    return;
                }
        return;
    }
    if (consumer->stream_name.empty()) return;
    auto& pending = consumer->stream_outstanding;
    auto it = std::lower_bound(pending.begin(), pending.end(), offset,
                               [](const std::pair<std::uint64_t, bool>& p, std::uint64_t o) { return p.first < o; });
    if (it == pending.end() || it->first != offset) return;
    it->second = true;
    std::optional<std::uint64_t> committed;
    while (!pending.empty() && pending.front().second) {
        committed = pending.front().first;
        pending.pop_front();
    }
    if (committed) commit(consumer->stream_name, *committed);
}

void Stream::commit(const std::string& name, std::uint64_t offset) {
    auto [t, added] = tracked_.try_emplace(name, offset);
    if (!added && t->second >= offset) return;
    t->second = offset;
    if (std::find(tracked_dirty_.begin(), tracked_dirty_.end(), name) == tracked_dirty_.end())
        tracked_dirty_.push_back(name);
    if (!flush_scheduled_ && queue_.stored_id() && queue_.vhost().durability()) {
        flush_scheduled_ = true;
        Broker& broker = queue_.vhost().broker();
        // Names and ids, not `this`: the stream (or its vhost) may be gone when the timer fires.
        const QueueId id = queue_.id();
        broker.timers().schedule(broker.now() + tracked_flush_delay, [&broker, vhost = queue_.vhost().name(), id] {
            VHost* vh = broker.find_vhost(vhost);
            if (Queue* q = vh ? vh->queue_by_id(id) : nullptr; q && q->stream()) q->stream()->flush_tracked_offsets();
        });
    }
}

void Stream::on_returned(const Channel& channel, std::uint64_t tag) {
    for (StreamGroup& g : groups_)
        for (const StreamGroup::Outstanding& o : g.outstanding)
            if (o.tag == tag && o.channel == &channel) {
                settle_group_delivery(g, channel, tag, StreamGroup::State::Returned);
                return;
            }
}

// ---- consumer groups ------------------------------------------------------------------------

StreamGroup* Stream::find_group(std::string_view name) {
    for (StreamGroup& g : groups_)
        if (g.name == name) return &g;
    return nullptr;
}

void Stream::settle_group_delivery(StreamGroup& g, const Channel& channel, std::uint64_t tag, StreamGroup::State to) {
    for (StreamGroup::Outstanding& o : g.outstanding)
        if (o.tag == tag && o.channel == &channel) {
            o.state = to;
            break;
        }
    std::optional<std::uint64_t> committed;
    while (!g.outstanding.empty() && g.outstanding.front().state == StreamGroup::State::Acked) {
        committed = g.outstanding.front().offset;
        g.outstanding.pop_front();
    }
    if (committed) commit(g.name, *committed);
    if (to == StreamGroup::State::Returned && g.owner && !g.wanted) {
        // Returned while its reader stays (basic.recover): the reader hands the partition to
        // itself, so that it reads again from the returned delivery once the rest is settled,
        // as a new owner would, and the group's offset goes on.
        g.wanted = g.owner;
        g.owner->group_owner = false;
        g.resume = g.owner->stream_next;
        g.owner = nullptr;
    }
    if (g.wanted) try_handover(g);
}

void Stream::on_consumer_added(Consumer& consumer) {
    if (consumer.stream_group.empty()) return;
    if (!find_group(consumer.stream_group)) groups_.push_back(StreamGroup{consumer.stream_group, {}, {}, {}, {}});
    rebalance(*find_group(consumer.stream_group));
}

// The owner of this partition inside the group: partition mod members, members in rank order.
// The old owner stops at once; the new one starts when the old one's deliveries are settled.
void Stream::rebalance(StreamGroup& g, const Consumer* leaving) {
    std::vector<Consumer*> members;
    for (Consumer* c : queue_.consumers())
        if (c != leaving && c->stream_group == g.name) members.push_back(c);
    std::sort(members.begin(), members.end(),
              [](const Consumer* a, const Consumer* b) { return ranks_before(*a, *b); });
    Consumer* chosen = members.empty() ? nullptr : members[owner_index(partition_index(queue_.name()), members.size())];
    if (g.owner == chosen) {
        g.wanted = nullptr;
        return;
    }
    if (g.owner) {
        g.owner->group_owner = false;
        g.resume = g.owner->stream_next;
        g.owner = nullptr;
    }
    g.wanted = chosen;
    try_handover(g);
}

void Stream::try_handover(StreamGroup& g) {
    if (!g.wanted) return;
    for (const StreamGroup::Outstanding& o : g.outstanding)
        if (o.state == StreamGroup::State::Pending) return;
    // Everything delivered before is settled: the new owner goes on after the acked deliveries,
    // from the first one that came back unacked, if any (at-least-once, as a Kafka rebalance).
    std::uint64_t start = g.resume.value_or(g.wanted->stream_next);
    for (const StreamGroup::Outstanding& o : g.outstanding)
        if (o.state == StreamGroup::State::Returned) start = std::min(start, o.offset);
    g.outstanding.clear();
    g.resume.reset();
    g.owner = g.wanted;
    g.wanted = nullptr;
    g.owner->group_owner = true;
    g.owner->stream_next = std::max(start, first_offset());
    queue_.mark_dirty();
}

void Stream::on_consumer_removed(Consumer& consumer) {
    if (!consumer.stream_group.empty()) {
        if (StreamGroup* g = find_group(consumer.stream_group)) {
            if (g->wanted == &consumer) g->wanted = nullptr;
            if (g->owner == &consumer) {
                g->resume = consumer.stream_next;
                g->owner = nullptr;
                consumer.group_owner = false;
            }
            rebalance(*g, &consumer);
        }
    }
    flush_tracked_offsets();
}

std::optional<std::uint64_t> Stream::tracked_offset(const std::string& name) const {
    auto it = tracked_.find(name);
    if (it == tracked_.end()) return std::nullopt;
    return it->second;
}

void Stream::flush_tracked_offsets() {
    flush_scheduled_ = false;
    Durability* d = queue_.vhost().durability();
    if (!d || !queue_.stored_id()) {
        tracked_dirty_.clear();
        return;
    }
    for (const std::string& name : tracked_dirty_)
        d->append_definition(
            definitions::stream_offset_record({queue_.vhost().id(), queue_.stored_id(), name, tracked_.at(name)}));
    tracked_dirty_.clear();
}

// The window ends where the newest memory_window entries or memory_window_bytes of bodies do.
// Each entry leaves it once, so this costs nothing per turn beyond the entries that leave.
void Stream::shrink_window() {
    if (window_count_ > entries_.size()) {  // retention took entries from under it
        window_count_ = entries_.size();
        window_bytes_ = 0;
        for (std::size_t i = 0; i < entries_.size(); ++i) window_bytes_ += entries_[i].size;
    }
    while (window_count_ > memory_window || (window_count_ > 1 && window_bytes_ > memory_window_bytes)) {
        window_bytes_ -= entries_[entries_.size() - window_count_].size;
        --window_count_;
    }
}

void Stream::page_out() {
    shrink_window();
    VHostStorage* storage = queue_.vhost().storage();
    if (!storage || window_count_ == entries_.size()) return;
    // Walk back from the window's edge to where bodies were already let go.
    for (std::size_t i = entries_.size() - window_count_; i-- > 0;) {
        Entry& e = entries_[i];
        if (!e.message) break;
        if (!e.location || !storage->is_written(e.location)) continue;
        e.message.reset();
    }
}

void Stream::forget_stored() {
    VHostStorage* storage = queue_.vhost().storage();
    if (!storage) return;
    for (const Entry& e : entries_)
        if (e.location) storage->forget(e.location);
    entries_.clear();
    window_count_ = 0;
    window_bytes_ = 0;
}

// A stream's entries carry their append time where other queues' carry a deadline.
void Stream::checkpoint(std::vector<store::RecoveredEntry>& out, std::uint32_t queue_id) const {
    for (const Entry& e : entries_) {
        if (!e.location) continue;
        store::RecoveredEntry r;
        r.queue_id = queue_id;
        r.queue_seq = e.offset + 1;
        r.location = e.location;
        r.body_size = e.size;  // body bytes, as retention counts them
        r.has_deadline = true;
        r.deadline_ms = e.timestamp_ms;
        out.push_back(r);
    }
}

}  // namespace warren::broker
