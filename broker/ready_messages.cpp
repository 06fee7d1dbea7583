// See ready_messages.hpp. Each priority level is a deque of 32-byte slots in seq order. Taking a
// message from the middle (TTL expiry) leaves a tombstone that keeps its seq for the binary
// search; tombstones are skipped at the front and compacted away when they outnumber live
// entries. Paging out looks only at the back of each level (what arrived since the last pass),
// so a long queue costs nothing per turn; paging in reads a run of messages ahead of the front.
#include "broker/ready_messages.hpp"

#include <algorithm>
#include <cassert>

namespace warren::broker {

namespace {
template <class Items>
auto find_seq(Items& items, std::uint64_t seq) {
    return std::lower_bound(items.begin(), items.end(), seq, [](const auto& s, std::uint64_t v) { return s.seq() < v; });
}
}  // namespace

ReadyMessages::ReadyMessages(std::uint8_t max_priority, Pager* pager)
    : levels_(std::size_t{max_priority} + 1), pager_(pager) {
}

ReadyMessages::Level& ReadyMessages::level(std::uint8_t p) {
    return levels_[std::min<std::size_t>(p, levels_.size() - 1)];
}

void ReadyMessages::push(QueuedMessage m) {
    Level& l = level(m.message->priority());
    bytes_ += m.message->body_size();
    l.items.emplace_back(std::move(m));
    ++l.live;
    ++l.in_memory;
    ++l.unexamined;
    ++live_;
    ++in_memory_;
}

void ReadyMessages::requeue(QueuedMessage m) {
    Level& l = level(m.message->priority());
    bytes_ += m.message->body_size();
    ++l.live;
    ++l.in_memory;
    ++live_;
    ++in_memory_;
    if (l.items.empty() || l.items.back().seq() < m.seq()) {
        l.items.emplace_back(std::move(m));
        ++l.unexamined;
        return;
    }
    auto it = find_seq(l.items, m.seq());
    if (it != l.items.end() && it->seq() == m.seq() && it->kind() == Slot::Tombstone) {
        *it = Slot(std::move(m));
        --l.tombstones;
        return;
    }
    l.items.insert(it, Slot(std::move(m)));
}

void ReadyMessages::push_paged(const PagedMessage& p) {
    Level& l = level(p.priority);
    bytes_ += p.body_size;
    ++l.live;
    ++live_;
    if (l.items.empty() || l.items.back().seq() < p.seq)
        l.items.emplace_back(p);
    else
        l.items.insert(find_seq(l.items, p.seq), Slot(p));
}

void ReadyMessages::skip_tombstones(Level& l) {
    while (!l.items.empty() && l.items.front().kind() == Slot::Tombstone) {
        l.items.pop_front();
        --l.tombstones;
        if (l.unexamined > l.items.size()) l.unexamined = l.items.size();
    }
}

void ReadyMessages::compact(Level& l) {
    std::erase_if(l.items, [](const Slot& s) { return s.kind() == Slot::Tombstone; });
    l.tombstones = 0;
    l.unexamined = std::min(l.unexamined, l.items.size());
}

// Reads a paged slot back. A message that cannot be read is gone: its slot becomes a tombstone
// (the pager has logged and settled it).
bool ReadyMessages::load(Level& l, Slot& slot) {
    MessageRef m = pager_ ? pager_->load(slot.location(), slot.is_transient()) : MessageRef();
    if (!m) {
        bytes_ -= slot.body_size();
        slot.bury();
        --l.live;
        --live_;
        ++l.tombstones;
        return false;
    }
    slot.fill(std::move(m));
    ++l.in_memory;
    ++in_memory_;
    return true;
}

void ReadyMessages::read_ahead(Level& l, std::size_t from) {
    const std::size_t end = std::min(l.items.size(), from + read_ahead_);
    for (std::size_t i = from; i < end; ++i)
        if (l.items[i].kind() == Slot::Paged) load(l, l.items[i]);
}

std::optional<QueuedMessage> ReadyMessages::take(Level& l, std::deque<Slot>::iterator it) {
    Slot& slot = *it;
    bytes_ -= slot.body_size();
    QueuedMessage m = slot.take();
    --l.live;
    --l.in_memory;
    --live_;
    --in_memory_;
    if (it == l.items.begin()) {
        l.items.pop_front();
        // Tombstones left at the front go now, so oldest_seq() finds the head at once.
        skip_tombstones(l);
        if (l.unexamined > l.items.size()) l.unexamined = l.items.size();
    } else {
        ++l.tombstones;
        if (l.tombstones > 64 && l.tombstones > l.live) compact(l);
    }
    return m;
}

std::optional<QueuedMessage> ReadyMessages::pop_front() {
    for (auto it = levels_.rbegin(); it != levels_.rend(); ++it) {
        Level& l = *it;
        while (l.live) {
            skip_tombstones(l);
            Slot& front = l.items.front();
            if (front.kind() == Slot::Paged) {
                if (!load(l, front)) continue;
                read_ahead(l, 1);
            }
            return take(l, l.items.begin());
        }
    }
    return std::nullopt;
}

std::optional<QueuedMessage> ReadyMessages::pop_oldest_lowest() {
    for (Level& l : levels_) {
        while (l.live) {
            skip_tombstones(l);
            Slot& front = l.items.front();
            if (front.kind() == Slot::Paged && !load(l, front)) continue;
            return take(l, l.items.begin());
        }
    }
    return std::nullopt;
}

std::optional<QueuedMessage> ReadyMessages::remove(std::uint64_t seq, std::uint8_t priority) {
    Level& l = level(priority);
    auto it = find_seq(l.items, seq);
    if (it == l.items.end() || it->seq() != seq || it->kind() == Slot::Tombstone) return std::nullopt;
    if (it->kind() == Slot::Paged && !load(l, *it)) return std::nullopt;
    return take(l, it);
}

void ReadyMessages::for_each(const std::function<void(const Entry&)>& f) const {
    for (std::size_t p = 0; p < levels_.size(); ++p)
        for (const Slot& s : levels_[p].items) {
            if (s.kind() == Slot::Tombstone) continue;
            f(Entry{s.message(), s.location(), s.seq(), s.delivery_count(), s.expires_at(), s.body_size(),
                    static_cast<std::uint8_t>(p), s.is_transient()});
        }
}

namespace {
ReadyMessages::Entry entry_of(const ReadySlot& s, std::size_t priority) {
    ReadyMessages::Entry e;
    e.message = s.message();
    e.location = s.location();
    e.seq = s.seq();
    e.delivery_count = s.delivery_count();
    e.expires_at = s.expires_at();
    e.body_size = s.body_size();
    e.priority = static_cast<std::uint8_t>(priority);
    e.transient = s.is_transient();
    return e;
}
}  // namespace

ReadyMessages::Cursor ReadyMessages::walk(Cursor from, std::size_t budget,
                                          const std::function<bool(const Entry&)>& f) const {
    if (from.done) return from;
    std::size_t level =
        from.level == 0xFFFF ? levels_.size() - 1 : std::min<std::size_t>(from.level, levels_.size() - 1);
    std::uint64_t after = from.level == 0xFFFF ? 0 : from.after_seq;
    for (;;) {
        const auto& items = levels_[level].items;
        for (auto it = find_seq(items, after + 1); it != items.end(); ++it) {
            if (budget == 0) return Cursor{static_cast<std::uint16_t>(level), after, false};
            --budget;
            if (it->kind() != Slot::Tombstone && !f(entry_of(*it, level)))
                return Cursor{static_cast<std::uint16_t>(level), after, false};  // before this one
            after = it->seq();
        }
        if (level == 0) return Cursor{0, after, true};
        --level;
        after = 0;
    }
}

std::optional<ReadyMessages::Entry> ReadyMessages::find(std::uint64_t seq) const {
    for (std::size_t p = 0; p < levels_.size(); ++p) {
        const auto& items = levels_[p].items;
        auto it = find_seq(items, seq);
        if (it != items.end() && it->seq() == seq && it->kind() != Slot::Tombstone) return entry_of(*it, p);
    }
    return std::nullopt;
}

std::optional<std::uint64_t> ReadyMessages::oldest_seq() const {
    std::optional<std::uint64_t> oldest;
    for (const Level& l : levels_) {
        if (!l.live) continue;
        for (const Slot& s : l.items)
            if (s.kind() != Slot::Tombstone) {
                if (!oldest || s.seq() < *oldest) oldest = s.seq();
                break;
            }
    }
    return oldest;
}

void ReadyMessages::for_each_deadline(const std::function<void(std::uint64_t, std::uint8_t, TimePoint)>& f) const {
    for (std::size_t p = 0; p < levels_.size(); ++p)
        for (const Slot& s : levels_[p].items)
            if (s.kind() != Slot::Tombstone && s.expires_at() != TimePoint{})
                f(s.seq(), static_cast<std::uint8_t>(p), s.expires_at());
}

void ReadyMessages::drain(const std::function<void(const Message*, std::uint64_t, bool)>& f) {
    for (auto it = levels_.rbegin(); it != levels_.rend(); ++it) {
        for (const Slot& s : it->items)
            if (s.kind() != Slot::Tombstone) f(s.message(), s.location(), s.is_transient());
        *it = Level{};
    }
    live_ = 0;
    in_memory_ = 0;
    bytes_ = 0;
}

std::size_t ReadyMessages::page_out(std::size_t keep, bool transient_too, bool everything) {
    if (!pager_) return 0;
    std::size_t moved = 0;
    for (Level& l : levels_) {
        std::size_t n = everything ? l.items.size() : std::min(l.unexamined, l.items.size());
        l.unexamined = 0;
        transient_scratch_.clear();
        transient_index_.clear();
        std::size_t in_memory = l.in_memory;
        for (std::size_t k = 0; k < n && in_memory > keep; ++k) {
            const std::size_t i = l.items.size() - 1 - k;
            Slot& s = l.items[i];
            if (s.kind() != Slot::InMemory) continue;
            if (pager_->can_page_out(*s.message())) {
                s.page_out();
                --l.in_memory;
                --in_memory_;
                ++moved;
                --in_memory;
            } else if (transient_too && !s.message()->store_location()) {
                transient_scratch_.push_back(s.message());
                transient_index_.push_back(i);
                --in_memory;
            }
        }
        if (transient_scratch_.empty()) continue;
        transient_locations_.assign(transient_scratch_.size(), 0);
        pager_->write_transient(transient_scratch_, transient_locations_);
        for (std::size_t j = 0; j < transient_index_.size(); ++j) {
            if (!transient_locations_[j]) continue;
            l.items[transient_index_[j]].page_out(transient_locations_[j]);
            --l.in_memory;
            --in_memory_;
            ++moved;
        }
    }
    return moved;
}

}  // namespace warren::broker
