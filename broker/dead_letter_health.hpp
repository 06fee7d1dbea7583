// The health of a dead-letter queue, for the workbench, the API and Prometheus: how fast it
// grows, how long its oldest message has waited, and what is in it, counted by
// x-first-death-reason, by origin queue (x-first-death-queue) and by an application header
// (`error.cause` by default). Bounded work per read, whatever the queue's length (see .cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "broker/queue.hpp"
#include "broker/workbench_filter.hpp"

namespace warren::broker::workbench {

struct HealthOptions {
    std::string header{default_error_header};
    // Messages the counts look at per read (and paged-out ones read from disk among them): a
    // scrape of 10,000 queues then costs at most 10,000 x this, however long they are.
    std::size_t census_budget = 1000;
    std::size_t max_paged_reads = 64;
    // Depth samples for the rates: at most one per interval, kept for the window.
    Duration sample_interval = std::chrono::seconds(5);
    Duration rate_window = std::chrono::seconds(60);
};

using LabelCounts = std::map<std::string, std::uint64_t>;  // label -> messages; "" when absent

struct QueueHealth {
    std::size_t ready = 0;
    std::uint64_t arrivals = 0;          // messages enqueued since the queue was created (this process)
    std::optional<Duration> oldest_age;  // the oldest ready message's wait; nullopt: empty or unknown
    // Over `rate_window` (the time between the oldest kept sample and now; zero: no rate yet).
    double growth_per_second = 0;  // change of the ready count
    double arrivals_per_second = 0;
    Duration rate_window{};
    // From the last complete pass over the queue (counts_complete), else empty.
    LabelCounts by_reason, by_origin_queue, by_header;
    std::string header;            // the header by_header groups by
    bool counts_complete = false;  // a pass has finished since the header was chosen
    TimePoint counts_at{};         // when that pass finished
    std::uint64_t unreadable = 0;  // messages of that pass that could not be read
};

// Per-queue state between reads (the census cursor, the rate samples). Owned by whoever reads
// health (the management API), one per queue it has looked at.
class HealthBook {
public:
    // Reads the queue's health, advancing its census by at most the options' budget.
    QueueHealth read(const Queue& queue, TimePoint now, const HealthOptions& options = {});
    // Drops the state of queues that are gone.
    template <class Exists>
    void prune(Exists&& exists) {
        std::erase_if(states_, [&](const auto& kv) { return !exists(kv.first); });
    }
    std::size_t size() const { return states_.size(); }

private:
    struct Sample {
        TimePoint at;
        std::size_t ready;
        std::uint64_t arrivals;
    };
    struct State {
        std::vector<Sample> samples;
        ReadyMessages::Cursor cursor;
        LabelCounts reason, origin, header;  // the pass under way
        std::uint64_t unreadable = 0;
        std::string header_name;
        QueueHealth last;  // its counts: the last complete pass
    };
    std::unordered_map<QueueId, State> states_;
};

}  // namespace warren::broker::workbench
