// When the sync thread should wait a moment before starting a round, so that one fdatasync covers
// a whole burst instead of its first few messages (PostgreSQL's commit_delay, made adaptive).
//
// Without it, a publisher with a confirm window of 256 splits every window over two rounds: the
// first message of a burst starts a round at once and the other 255, arriving a few hundred
// microseconds later, wait for the next one, so each window costs two fdatasyncs. The delay turns
// on when a round sees a request arrive shortly after it started (that request would have fitted),
// stays on while waiting gathers more requests, and turns off when a wait gathered nothing (a lone
// publisher waiting for each confirm never pays it). It is at most a quarter of the last round's
// length and never more than `cap`.
#pragma once

#include <algorithm>
#include <chrono>

namespace warren::store {

class CommitDelay {
public:
    using Clock = std::chrono::steady_clock;

    explicit CommitDelay(std::chrono::microseconds cap) : cap_(cap) {}

    // How long to wait before the next round starts (zero: start now).
    std::chrono::microseconds next() const { return on_ ? window_ : std::chrono::microseconds{0}; }
    // After a wait of next(): did requests arrive during it?
    void waited(bool gathered) {
        if (!gathered) on_ = false;
    }
    void round_started(Clock::time_point now) {
        started_ = now;
        first_late_ = {};
        late_ = false;
    }
    // A request made while a round is in flight (the first one is what counts).
    void request_during_round(Clock::time_point now) {
        if (late_) return;
        late_ = true;
        first_late_ = now;
    }
    void round_finished(Clock::time_point now) {
        auto length = std::chrono::duration_cast<std::chrono::microseconds>(now - started_);
        window_ = std::min(length / 4, cap_);
        if (late_ && first_late_ - started_ <= window_) on_ = window_.count() > 0;
    }

private:
    std::chrono::microseconds cap_;
    std::chrono::microseconds window_{0};
    Clock::time_point started_{};
    Clock::time_point first_late_{};
    bool late_ = false;
    bool on_ = false;
};

}  // namespace warren::store
