// TurnPacer: no pause at a low frame rate or after a heavy turn; under a high frame rate, light
// turns are spaced by the interval; pacing stops when the rate falls (with hysteresis), and an
// interval of 0 disables it.
#include "broker/turn_pacer.hpp"

#include <catch2/catch.hpp>

using namespace warren::broker;
using namespace std::chrono_literals;

namespace {
TurnPacer::Settings settings() {
    TurnPacer::Settings s;
    s.interval = 100us;
    s.light_turn_bytes = 16384;
    s.frames_on_per_second = 100'000;
    s.frames_off_per_second = 50'000;
    s.window = 10ms;
    return s;
}

// Frames arriving at `per_second` whatever the loop does; a turn every `gap` plus the pause
// asked for, each reading `bytes`, for `span`. Returns the sum of the pauses; `now` and `frames`
// carry over between calls.
struct Load {
    TurnPacer& pacer;
    TimePoint now{std::chrono::hours(1)};
    double frames = 0;
    std::uint64_t turns = 0;

    Duration run(double per_second, Duration gap, std::size_t bytes, Duration span) {
        Duration paused{};
        for (TimePoint end = now + span; now < end;) {
            auto pause = pacer.turn_ended(now, bytes, static_cast<std::uint64_t>(frames));
            paused += pause;
            ++turns;
            Duration step = pause + gap;
            now += step;
            frames += per_second * std::chrono::duration<double>(step).count();
        }
        return paused;
    }
};
}  // namespace

TEST_CASE("a low frame rate never pauses the loop", "[pacer]") {
    TurnPacer p(settings());
    Load load{p};
    // 40,000 frames a second (10,000 messages with their acks), a turn every 25 us.
    CHECK(load.run(40'000, 25us, 200, 100ms) == Duration::zero());
    CHECK_FALSE(p.pacing());
    CHECK(p.pauses() == 0);
}

TEST_CASE("a high frame rate spaces light turns by the interval", "[pacer]") {
    TurnPacer p(settings());
    Load load{p};
    // 400,000 frames a second, a turn every 5 us when nothing pauses the loop.
    load.run(400'000, 5us, 200, 20ms);
    REQUIRE(p.pacing());
    // Paced: each turn is followed by a pause that makes the turns 100 us apart.
    auto pauses = p.pauses();
    auto turns = load.turns;
    Duration paused = load.run(400'000, 5us, 4000, 10ms);
    turns = load.turns - turns;
    CHECK(p.pauses() - pauses == turns);
    CHECK(turns <= 100);
    CHECK(turns >= 90);
    CHECK(paused >= Duration(9ms));
}

TEST_CASE("a turn that read much, or nothing, or freed a consumer's credit is not followed by a pause", "[pacer]") {
    TurnPacer p(settings());
    Load load{p};
    load.run(400'000, 5us, 200, 20ms);
    REQUIRE(p.pacing());
    auto frames = static_cast<std::uint64_t>(load.frames);
    CHECK(p.turn_ended(load.now + 1us, 64 * 1024, frames) == Duration::zero());  // bulk input
    CHECK(p.turn_ended(load.now + 2us, 0, frames) == Duration::zero());          // a timer's turn
    // An ack that gave a starved consumer credit: its deliveries are this turn's; no pause.
    CHECK(p.turn_ended(load.now + 3us, 200, frames, true) == Duration::zero());
    CHECK(p.turn_ended(load.now + 4us, 200, frames) > Duration::zero());
}

TEST_CASE("pacing stops when the frame rate falls below the lower threshold", "[pacer]") {
    TurnPacer p(settings());
    Load load{p};
    load.run(400'000, 5us, 200, 20ms);
    REQUIRE(p.pacing());
    // 75,000 frames a second: between the thresholds, pacing stays on.
    load.run(75'000, 5us, 200, 30ms);
    CHECK(p.pacing());
    // 20,000 a second: off, and no more pauses.
    load.run(20'000, 5us, 200, 30ms);
    CHECK_FALSE(p.pacing());
    CHECK(load.run(20'000, 5us, 200, 30ms) == Duration::zero());
}

TEST_CASE("an interval of 0 disables pacing", "[pacer]") {
    auto s = settings();
    s.interval = 0us;
    TurnPacer p(s);
    Load load{p};
    CHECK(load.run(400'000, 5us, 200, 50ms) == Duration::zero());
    CHECK_FALSE(p.pacing());
}
