// Time as the broker sees it. Everything reads time through a Clock so that tests can drive
// TTLs, heartbeats and expiry with a fake clock, without sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace warren::broker {

using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;
using Millis = std::chrono::milliseconds;

class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
    // Wall-clock seconds since the epoch, for timestamps in headers (x-death time).
    virtual std::int64_t unix_seconds() const = 0;
    // Wall-clock milliseconds since the epoch: stored deadlines (a TTL outlives a restart).
    virtual std::int64_t unix_ms() const = 0;
};

class SystemClock final : public Clock {
public:
    TimePoint now() const override { return std::chrono::steady_clock::now(); }
    std::int64_t unix_seconds() const override {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    std::int64_t unix_ms() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
public:
    TimePoint now() const override { return now_; }
    std::int64_t unix_seconds() const override { return unix_ms() / 1000; }
    std::int64_t unix_ms() const override {
        return unix_base_ * 1000 + std::chrono::duration_cast<std::chrono::milliseconds>(now_.time_since_epoch()).count();
    }
    void advance(Duration d) { now_ += d; }
    void set_unix_base(std::int64_t s) { unix_base_ = s; }

private:
    TimePoint now_{std::chrono::hours(1)};
    std::int64_t unix_base_ = 1'700'000'000;
};

}  // namespace warren::broker
