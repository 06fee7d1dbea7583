// In-memory message storage: one seq-ordered deque per priority level. Messages taken out from
// the middle (TTL expiry) leave a tombstone that the front skips; the deque is compacted when
// tombstones outnumber live messages.
#include <algorithm>
#include <deque>
#include <vector>

#include "broker/message_store.hpp"

namespace warren::broker {

namespace {

class SeqQueue {
public:
    void push(QueuedMessage m) {
        bytes_ += m.message->body_size();
        ++live_;
        items_.push_back(std::move(m));
    }

    void requeue(QueuedMessage m) {
        bytes_ += m.message->body_size();
        ++live_;
        if (items_.empty() || items_.back().seq() < m.seq()) {
            items_.push_back(std::move(m));
            return;
        }
        auto it = std::lower_bound(items_.begin(), items_.end(), m.seq(),
                                   [](const QueuedMessage& q, std::uint64_t s) { return q.seq() < s; });
        items_.insert(it, std::move(m));
    }

    QueuedMessage* front() {
        skip_tombstones();
        return items_.empty() ? nullptr : &items_.front();
    }

    QueuedMessage pop_front() {
        skip_tombstones();
        QueuedMessage m = std::move(items_.front());
        items_.pop_front();
        take(m);
        return m;
    }

    std::optional<QueuedMessage> remove(std::uint64_t seq) {
        auto it = std::lower_bound(items_.begin(), items_.end(), seq,
                                   [](const QueuedMessage& q, std::uint64_t s) { return q.seq() < s; });
        if (it == items_.end() || it->seq() != seq || !it->message) return std::nullopt;
        QueuedMessage m = std::move(*it);
        it->message.reset();  // tombstone, keeps its seq for the binary search
        ++tombstones_;
        take(m);
        if (tombstones_ > 64 && tombstones_ > live_) compact();
        return m;
    }

    std::size_t size() const { return live_; }
    std::uint64_t bytes() const { return bytes_; }

    template <class F>
    void for_each(F& f) const {
        for (const auto& m : items_)
            if (m.message) f(m);
    }

    template <class F>
    void drain(F& f) {
        for (auto& m : items_)
            if (m.message) f(std::move(m));
        items_.clear();
        live_ = 0;
        bytes_ = 0;
        tombstones_ = 0;
    }

private:
    void take(const QueuedMessage& m) {
        bytes_ -= m.message->body_size();
        --live_;
    }
    void skip_tombstones() {
        while (!items_.empty() && !items_.front().message) {
            items_.pop_front();
            --tombstones_;
        }
    }
    void compact() {
        std::erase_if(items_, [](const QueuedMessage& m) { return !m.message; });
        tombstones_ = 0;
    }

    std::deque<QueuedMessage> items_;
    std::size_t live_ = 0;
    std::size_t tombstones_ = 0;
    std::uint64_t bytes_ = 0;
};

class MemoryStore final : public MessageStore {
public:
    explicit MemoryStore(std::uint8_t max_priority) : levels_(std::size_t{max_priority} + 1) {}

    void push(QueuedMessage m) override { level(m.message->priority()).push(std::move(m)); }
    void requeue(QueuedMessage m) override { level(m.message->priority()).requeue(std::move(m)); }

    QueuedMessage* front() override {
        for (auto it = levels_.rbegin(); it != levels_.rend(); ++it)
            if (QueuedMessage* m = it->front()) return m;
        return nullptr;
    }

    QueuedMessage pop_front() override {
        for (auto it = levels_.rbegin(); it != levels_.rend(); ++it)
            if (it->size()) return it->pop_front();
        return {};
    }

    std::optional<QueuedMessage> remove(std::uint64_t seq, std::uint8_t priority) override {
        return level(priority).remove(seq);
    }

    std::optional<QueuedMessage> pop_oldest_lowest() override {
        for (auto& l : levels_)
            if (l.size()) return l.pop_front();
        return std::nullopt;
    }

    std::size_t size() const override {
        std::size_t n = 0;
        for (const auto& l : levels_) n += l.size();
        return n;
    }

    std::uint64_t body_bytes() const override {
        std::uint64_t n = 0;
        for (const auto& l : levels_) n += l.bytes();
        return n;
    }

    void for_each(const std::function<void(const QueuedMessage&)>& f) const override {
        for (const auto& l : levels_) l.for_each(f);
    }

    void drain(const std::function<void(QueuedMessage&&)>& f) override {
        for (auto it = levels_.rbegin(); it != levels_.rend(); ++it) it->drain(f);
    }

private:
    SeqQueue& level(std::uint8_t p) { return levels_[std::min<std::size_t>(p, levels_.size() - 1)]; }
    std::vector<SeqQueue> levels_;
};

}  // namespace

std::unique_ptr<MessageStore> make_memory_store(std::uint8_t max_priority) {
    return std::make_unique<MemoryStore>(max_priority);
}

}  // namespace warren::broker
