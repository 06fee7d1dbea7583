// Latency histogram for the load generator: log-linear buckets (128 per power of two, so any
// reported value is within 0.8% of the true one), fixed size, no allocation per sample.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace warren::bench {

class Histogram {
public:
    Histogram() : counts_(bucket_count, 0) {}

    void record(std::uint64_t value) {
        ++counts_[index_of(value)];
        ++total_;
        sum_ += value;
        min_ = std::min(min_, value);
        max_ = std::max(max_, value);
    }

    void clear() {
        std::fill(counts_.begin(), counts_.end(), 0);
        total_ = 0;
        sum_ = 0;
        min_ = UINT64_MAX;
        max_ = 0;
    }

    // Adds another histogram's samples (the generator's threads each keep their own).
    void merge(const Histogram& other) {
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
        total_ += other.total_;
        sum_ += other.sum_;
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
    }

    std::uint64_t count() const { return total_; }
    std::uint64_t max() const { return total_ ? max_ : 0; }
    std::uint64_t min() const { return total_ ? min_ : 0; }
    double mean() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }

    // The smallest value v such that a fraction q of the samples are <= v (within a bucket's
    // width; reported as the bucket's upper bound, like HdrHistogram's highest equivalent value).
    std::uint64_t percentile(double q) const {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.999999);
        rank = std::clamp<std::uint64_t>(rank, 1, total_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::min(upper_bound_of(i), max_);
        }
        return max_;
    }

private:
    static constexpr int sub_bits = 7;
    static constexpr std::uint64_t sub_count = 1u << sub_bits;
    static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;

    // Values below 128 get a bucket each; above, the top 8 significant bits pick the bucket.
    static std::size_t index_of(std::uint64_t v) {
        if (v < sub_count) return static_cast<std::size_t>(v);
        int shift = (63 - std::countl_zero(v)) - sub_bits;
        return static_cast<std::size_t>(shift + 1) * sub_count + static_cast<std::size_t>((v >> shift) - sub_count);
    }
    static std::uint64_t upper_bound_of(std::size_t i) {
        if (i < sub_count) return i;
        std::size_t shift = i / sub_count - 1;
        std::uint64_t mantissa = i % sub_count + sub_count;
        return ((mantissa + 1) << shift) - 1;
    }

    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
};

}  // namespace warren::bench
