// When a queue's messages arrived, without a timestamp per message: a few (seq, time) samples,
// since seqs grow with arrival. Gives the age of the oldest ready message (its dwell time) and
// the count of arrivals, for the dead-letter workbench's health. Costs one comparison per
// enqueue; at most `max_samples` samples per queue, coarser as the queue spans more time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "broker/clock.hpp"

namespace warren::broker {

class ArrivalIndex {
public:
    static constexpr std::size_t max_samples = 64;
    static constexpr Duration max_resolution = std::chrono::hours(24 * 366);

    // A message got `seq` at `now` (seqs and times never go back).
    void note(std::uint64_t seq, TimePoint now) {
        ++arrivals_;
        if (!samples_.empty() && (now - samples_.back().at < resolution_ || seq <= samples_.back().seq)) return;
        add(seq, now);
    }
    // Recovery: a stored message with its append time (out-of-order ones are left out).
    void restore(std::uint64_t seq, TimePoint at) {
        if (samples_.empty() || (seq > samples_.back().seq && at - samples_.back().at >= resolution_)) add(seq, at);
    }
    // The messages before `seq` are gone: their samples are not needed (one stays to cover it).
    void forget_before(std::uint64_t seq) {
        std::size_t n = 0;
        while (n + 1 < samples_.size() && samples_[n + 1].seq <= seq) ++n;
        samples_.erase(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(n));
        // The queue spans less time again: finer samples fit once more.
        if (samples_.size() < max_samples / 4 && resolution_ > std::chrono::seconds(1)) resolution_ /= 2;
    }
    // The earliest time the message with `seq` can have arrived (the sample at or before it:
    // an age computed from it errs on the old side, by at most the resolution); nullopt when no
    // sample covers it (it came before this index began, e.g. recovered without a time).
    std::optional<TimePoint> arrived_by(std::uint64_t seq) const {
        std::optional<TimePoint> at;
        for (const Sample& s : samples_) {
            if (s.seq > seq) break;
            at = s.at;
        }
        return at;
    }
    // Messages enqueued since the queue was created (this process).
    std::uint64_t arrivals() const { return arrivals_; }
    Duration resolution() const { return resolution_; }

private:
    struct Sample {
        std::uint64_t seq;
        TimePoint at;
    };
    void add(std::uint64_t seq, TimePoint at) {
        if (samples_.size() == max_samples) thin();
        samples_.push_back({seq, at});
    }
    // Full: keep every other sample (the first always) and halve the rate of new ones.
    void thin() {
        std::size_t out = 0;
        for (std::size_t i = 0; i < samples_.size(); i += 2) samples_[out++] = samples_[i];
        samples_.resize(out);
        // Bounded: a queue restored from millions of records thins often, and an unbounded
        // doubling overflows the duration (found by UBSan in the crash test).
        resolution_ = std::min<Duration>(resolution_ * 2, max_resolution);
    }

    std::vector<Sample> samples_;  // by seq; empty (no allocation) until the first arrival
    Duration resolution_ = std::chrono::seconds(1);
    std::uint64_t arrivals_ = 0;
};

}  // namespace warren::broker
