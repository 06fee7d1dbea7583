// See turn_pacer.hpp.
#include "broker/turn_pacer.hpp"

namespace warren::broker {

Duration TurnPacer::turn_ended(TimePoint now, std::size_t bytes, std::uint64_t frames_total, bool credit_freed) {
    if (settings_.interval.count() <= 0) return Duration::zero();
    if (!started_) {
        started_ = true;
        window_start_ = now;
        window_frames_ = frames_total;
    }
    // The frame rate does not depend on the pacing itself (batched or not, the same frames
    // arrive), so it can switch pacing on and off without feeding back on itself.
    if (auto elapsed = now - window_start_; elapsed >= settings_.window) {
        double seconds = std::chrono::duration<double>(elapsed).count();
        double rate = static_cast<double>(frames_total - window_frames_) / seconds;
        pacing_ = pacing_ ? rate >= static_cast<double>(settings_.frames_off_per_second)
                          : rate >= static_cast<double>(settings_.frames_on_per_second);
        window_start_ = now;
        window_frames_ = frames_total;
    }
    Duration pause = Duration::zero();
    if (pacing_ && !credit_freed && bytes > 0 && bytes < settings_.light_turn_bytes && now < next_turn_) {
        pause = next_turn_ - now;
        ++pauses_;
    }
    next_turn_ = now + pause + settings_.interval;
    return pause;
}

}  // namespace warren::broker
