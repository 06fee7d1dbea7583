// TimerQueue: due handlers run in deadline order, cancelled ones do not, and a handler that
// schedules another due at once does not run it in the same call (bounded work per loop turn).
#include "broker/timer_queue.hpp"

#include <catch2/catch.hpp>

using namespace warren::broker;
using namespace std::chrono_literals;

TEST_CASE("due timers run in deadline order and cancelled ones never", "[timer]") {
    TimerQueue t;
    const TimePoint start{1h};
    std::vector<int> ran;
    t.schedule(start + 20ms, [&] { ran.push_back(2); });
    TimerId cancelled = t.schedule(start + 5ms, [&] { ran.push_back(0); });
    t.schedule(start + 10ms, [&] { ran.push_back(1); });
    t.cancel(cancelled);
    CHECK(t.fire_due(start + 15ms) == 1);
    CHECK(t.next_deadline() == start + 20ms);
    CHECK(t.fire_due(start + 20ms) == 1);
    CHECK(ran == std::vector<int>{1, 2});
    CHECK_FALSE(t.next_deadline());
}

TEST_CASE("a timer scheduled by a handler runs at the next call, even if due already", "[timer]") {
    TimerQueue t;
    const TimePoint now{1h};
    int batches = 0;
    std::function<void()> batch = [&] {
        if (++batches < 3) t.schedule(now, batch);
    };
    t.schedule(now, batch);
    CHECK(t.fire_due(now) == 1);
    CHECK(batches == 1);
    CHECK(t.next_deadline() == now);
    CHECK(t.fire_due(now) == 1);
    CHECK(t.fire_due(now) == 1);
    CHECK(batches == 3);
    CHECK(t.fire_due(now) == 0);
}
