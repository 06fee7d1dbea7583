// TurnClock: one instant per handler scope, the source's time outside any scope, and a fresh
// instant for each outermost scope.
#include "broker/turn_clock.hpp"

#include <catch2/catch.hpp>
#include <chrono>

using warren::broker::ManualClock;
using warren::broker::TurnClock;

TEST_CASE("a turn clock reads its source once per scope and on every call outside one", "[clock]") {
    ManualClock source;
    TurnClock clock(source);
    const auto t0 = source.now();
    const auto ms0 = source.unix_ms();

    SECTION("outside a scope every call reads the source") {
        source.advance(std::chrono::milliseconds(5));
        CHECK(clock.now() == t0 + std::chrono::milliseconds(5));
        CHECK(clock.unix_ms() == ms0 + 5);
    }
    SECTION("inside a scope the first read is kept, nested scopes included") {
        TurnClock::Scope outer(clock);
        CHECK(clock.now() == t0);
        CHECK(clock.unix_ms() == ms0);
        source.advance(std::chrono::milliseconds(7));
        {
            TurnClock::Scope inner(clock);
            CHECK(clock.now() == t0);
            CHECK(clock.unix_ms() == ms0);
        }
        CHECK(clock.now() == t0);
        CHECK(clock.unix_seconds() == ms0 / 1000);
        CHECK(clock.source().now() == t0 + std::chrono::milliseconds(7));
    }
    SECTION("each kind of time is read when first asked for, and a new scope reads again") {
        {
            TurnClock::Scope scope(clock);
            CHECK(clock.now() == t0);
            source.advance(std::chrono::milliseconds(3));
            CHECK(clock.unix_ms() == ms0 + 3);  // not read before: read now
            CHECK(clock.now() == t0);
        }
        source.advance(std::chrono::milliseconds(2));
        TurnClock::Scope next(clock);
        CHECK(clock.now() == t0 + std::chrono::milliseconds(5));
        CHECK(clock.unix_ms() == ms0 + 5);
    }
}

TEST_CASE("a turn clock's seconds round down, as the source's do", "[clock]") {
    ManualClock source;
    source.set_unix_base(0);
    TurnClock clock(source);
    // ManualClock starts one hour past its base.
    CHECK(clock.unix_seconds() == 3600);
    source.advance(std::chrono::milliseconds(999));
    CHECK(clock.unix_seconds() == 3600);
    source.advance(std::chrono::milliseconds(1));
    CHECK(clock.unix_seconds() == 3601);
}
