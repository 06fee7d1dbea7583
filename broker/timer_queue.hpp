// The broker's timers: one min-heap of deadlines, fired by the event loop (or a test) through
// fire_due(now). The net layer keeps one OS timer armed at next_deadline(). Cancelling is lazy:
// a cancelled id stays in the heap and is skipped when it comes up.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "broker/clock.hpp"

namespace warren::broker {

using TimerId = std::uint64_t;

class TimerQueue {
public:
    TimerId schedule(TimePoint deadline, std::function<void()> handler);
    void cancel(TimerId id);
    // Runs every handler whose deadline is at or before `now`; handlers may schedule more, which
    // run at the next call (even if due now). Returns how many ran.
    std::size_t fire_due(TimePoint now);
    std::optional<TimePoint> next_deadline();
    std::size_t size() const { return handlers_.size(); }

private:
    struct Entry {
        TimePoint deadline;
        TimerId id;
        bool operator>(const Entry& o) const { return deadline != o.deadline ? deadline > o.deadline : id > o.id; }
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
    std::unordered_map<TimerId, std::function<void()>> handlers_;
    TimerId next_id_ = 1;
};

}  // namespace warren::broker
