// CommitDelay: the adaptive wait before a sync round, driven with made-up times.
#include "store/commit_delay.hpp"

#include <catch2/catch.hpp>
#include <optional>

namespace warren::store {
namespace {

using namespace std::chrono_literals;
using Clock = CommitDelay::Clock;

// One round from `start` lasting `length`; `late` is when (after start) a request came, if any.
void round(CommitDelay& d, Clock::time_point start, Clock::duration length, std::optional<Clock::duration> late) {
    d.round_started(start);
    if (late) d.request_during_round(start + *late);
    d.round_finished(start + length);
}

TEST_CASE("commit delay: off until a request just misses a round", "[store][sync]") {
    CommitDelay d(2000us);
    const auto t0 = Clock::time_point{} + 1s;
    CHECK(d.next() == 0us);
    round(d, t0, 8ms, std::nullopt);  // a lone publisher: nothing arrives during the round
    CHECK(d.next() == 0us);
    round(d, t0 + 10ms, 8ms, 9ms);  // late in the round: it could not have been gathered
    CHECK(d.next() == 0us);
    round(d, t0 + 20ms, 8ms, 100us);  // a burst's tail, just after the start
    CHECK(d.next() == 2000us);         // a quarter of 8 ms, capped at 2 ms
}

TEST_CASE("commit delay: a quarter of the last round, at most the cap", "[store][sync]") {
    CommitDelay d(2000us);
    const auto t0 = Clock::time_point{} + 1s;
    round(d, t0, 1ms, 50us);
    CHECK(d.next() == 250us);
    round(d, t0 + 2ms, 40ms, 50us);
    CHECK(d.next() == 2000us);
}

TEST_CASE("commit delay: stays on while waiting gathers requests, off once it gathers none", "[store][sync]") {
    CommitDelay d(2000us);
    const auto t0 = Clock::time_point{} + 1s;
    round(d, t0, 4ms, 10us);
    REQUIRE(d.next() == 1000us);
    d.waited(true);  // the burst came in during the wait: the round then sees no late request
    round(d, t0 + 5ms, 4ms, std::nullopt);
    CHECK(d.next() == 1000us);
    d.waited(false);  // nothing came: waiting only added latency
    round(d, t0 + 10ms, 4ms, std::nullopt);
    CHECK(d.next() == 0us);
}

TEST_CASE("commit delay: a cap of zero never waits", "[store][sync]") {
    CommitDelay d(0us);
    const auto t0 = Clock::time_point{} + 1s;
    round(d, t0, 4ms, 0us);
    CHECK(d.next() == 0us);
}

}  // namespace
}  // namespace warren::store
