// Input batching for the event loop: under a high frame rate, a loop turn that found little input
// is followed by a short pause, so that the next turn reads many clients' frames at once instead
// of waking for each one. Real clients send every publish and ack on its own; woken per frame,
// the broker spends most of its time in the kernel's wake-up, epoll and recv paths. Sans-IO: the
// loop reports each turn and performs the pause this returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "broker/clock.hpp"

namespace warren::broker {

class TurnPacer {
public:
    struct Settings {
        // The longest pause, and the shortest time from one paced turn to the next; 0 disables.
        std::chrono::microseconds interval{100};
        // A turn that read this many bytes or more is not followed by a pause: bulk input is
        // already batched by the kernel.
        std::size_t light_turn_bytes = 16 * 1024;
        // Frames per second (over `window`) above which pacing starts, and below which it stops.
        std::uint64_t frames_on_per_second = 100'000;
        std::uint64_t frames_off_per_second = 50'000;
        std::chrono::milliseconds window{10};
    };

    explicit TurnPacer(Settings settings) : settings_(settings) {}

    // A loop turn ended at `now`, having read `bytes` from sockets since the previous one;
    // `frames_total` is the broker's running count of frames received. Returns how long the
    // loop should pause before it polls the sockets again (zero: not at all).
    // `credit_freed`: an ack in this turn gave credit back to a consumer that had none, so a
    // client waits on this turn's deliveries to send its next acks: no pause (a prefetch-bound
    // consumer's throughput is its prefetch per round trip, and a pause would lengthen each).
    Duration turn_ended(TimePoint now, std::size_t bytes, std::uint64_t frames_total, bool credit_freed = false);

    bool pacing() const { return pacing_; }
    std::uint64_t pauses() const { return pauses_; }

private:
    Settings settings_;
    bool pacing_ = false;
    bool started_ = false;
    TimePoint window_start_{};
    std::uint64_t window_frames_ = 0;
    TimePoint next_turn_{};  // the earliest time the next paced turn may start
    std::uint64_t pauses_ = 0;
};

}  // namespace warren::broker
