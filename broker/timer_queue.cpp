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
    while (!heap_.empty() && heap_.top().deadline <= now) {
        TimerId id = heap_.top().id;
        heap_.pop();
        auto it = handlers_.find(id);
        if (it == handlers_.end()) continue;
        auto handler = std::move(it->second);
        handlers_.erase(it);
        handler();
        ++ran;
    }
    return ran;
}

std::optional<TimePoint> TimerQueue::next_deadline() {
    while (!heap_.empty() && !handlers_.contains(heap_.top().id)) heap_.pop();
    if (heap_.empty()) return std::nullopt;
    return heap_.top().deadline;
}

}  // namespace warren::broker
