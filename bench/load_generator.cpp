// run_scenario: starts the scenario's generator threads (one unless Scenario::threads asks for
// more), waits for them, and adds their shares up into one result.
#include "bench/load_generator.hpp"

#include <algorithm>
#include <thread>
#include <vector>

#include "bench/generator_loop.hpp"

namespace warren::bench {

std::atomic<bool> interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

namespace {

// One thread per flow at most (a fan-out is one flow); counted runs and memory runs on one.
int thread_count(const Scenario& s) {
    if (s.messages > 0 || s.measures_memory) return 1;
    return std::clamp(s.threads, 1, std::max(s.flows(), 1));
}

// Thread 0's result carries the window, the generator's and the broker's CPU time and the RSS;
// counts, rates and backlogs add up; latency merges; the slowest flow is the slowest of all.
Result merge(std::vector<LoopOutput>& parts) {
    Result r = parts[0].result;
    Histogram latency = parts[0].latency;
    double flow_rate_sum = r.flow_rate_mean * parts[0].flows;
    int flows = parts[0].flows;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const Result& p = parts[i].result;
        if (r.error.empty() || (r.error == other_thread_failed && !p.error.empty())) r.error = p.error;
        r.published += p.published;
        r.consumed += p.consumed;
        r.confirmed += p.confirmed;
        r.nacked += p.nacked;
        r.publish_rate += p.publish_rate;
        r.consume_rate += p.consume_rate;
        r.backlog_end += p.backlog_end;
        r.backlog_max += p.backlog_max;
        r.blocked = r.blocked || p.blocked;
        r.connections += p.connections;
        latency.merge(parts[i].latency);
        if (parts[i].flows > 0) r.flow_rate_min = std::min(r.flow_rate_min, p.flow_rate_min);
        flow_rate_sum += p.flow_rate_mean * parts[i].flows;
        flows += parts[i].flows;
    }
    if (flows > 0) r.flow_rate_mean = flow_rate_sum / flows;
    set_latency(r, latency);
    if (r.broker_cpu_seconds) {
        bool by_consumed = r.scenario.total_consumers() > 0;
        r.broker_cpu_per = by_consumed ? "consumed" : "published";
        std::uint64_t messages = by_consumed ? r.consumed : r.published;
        if (messages > 0) r.broker_cpu_us_per_msg = *r.broker_cpu_seconds * 1e6 / static_cast<double>(messages);
    }
    return r;
}

}  // namespace

Result run_scenario(const Scenario& scenario, const Target& target) {
    Coordinator coordinator;
    coordinator.threads = thread_count(scenario);
    std::vector<LoopOutput> parts(static_cast<std::size_t>(coordinator.threads));
    std::vector<std::thread> threads;
    for (int i = 1; i < coordinator.threads; ++i) {
        threads.emplace_back(
            [&, i] { parts[static_cast<std::size_t>(i)] = run_generator_loop(scenario, target, coordinator, i); });
    }
    parts[0] = run_generator_loop(scenario, target, coordinator, 0);
    for (std::thread& t : threads) t.join();
    return merge(parts);
}

}  // namespace warren::bench
