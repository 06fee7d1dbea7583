// See timer_queue.hpp.
#include "broker/timer_queue.hpp"

namespace warren::broker {

TimerId TimerQueue::schedule(TimePoint deadline, std::function<void()> handler) {
    TimerId id = next_id_++;
    handlers_.emplace(id, std::move(handler));
    heap_.push(Entry{deadline, id});
    return id;
}

void TimerQueue::cancel(TimerId id) { handlers_.erase(id); }

std::size_t TimerQueue::fire_due(TimePoint now) {
    std::size_t ran = 0;
    // Timers scheduled by these handlers wait for the next call, even if due already: a handler
    // that does a bounded batch of work and re-arms at once yields the loop between batches.
    const TimerId first_new = next_id_;
    std::vector<Entry> later;
    while (!heap_.empty() && heap_.top().deadline <= now) {
        TimerId id = heap_.top().id;
        if (id >= first_new) {
            later.push_back(heap_.top());
            heap_.pop();
            continue;
        }
        heap_.pop();
        auto it = handlers_.find(id);
        if (it == handlers_.end()) continue;
        auto handler = std::move(it->second);
        handlers_.erase(it);
        handler();
        ++ran;
    }
    for (const Entry& e : later) heap_.push(e);
    return ran;
}

std::optional<TimePoint> TimerQueue::next_deadline() {
    while (!heap_.empty() && !handlers_.contains(heap_.top().id)) heap_.pop();
    if (heap_.empty()) return std::nullopt;
    return heap_.top().deadline;
}

}  // namespace warren::broker
