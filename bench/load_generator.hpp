// Runs one scenario against a broker: one epoll loop driving every connection (control,
// producers, consumers, idle ones), so that the generator costs one core at most and leaves
// the other to the broker on a 2-core machine; or, with Scenario::threads, one loop per thread,
// each with its own queues.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/scenario.hpp"

namespace warren::bench {

struct Target {
    sockaddr_in address{};
    int broker_pid = 0;  // > 0: read the broker's VmRSS and CPU time from /proc/<pid>/
};

struct Result {
    Scenario scenario;
    std::string error;  // empty when the run completed

    // Over the measurement window (after warm-up; the whole run when counting messages).
    double seconds = 0;
    std::uint64_t published = 0;
    std::uint64_t consumed = 0;   // deliveries, over all consumers (fan-out counts each copy)
    std::uint64_t confirmed = 0;  // basic.ack from the broker in confirm mode
    std::uint64_t nacked = 0;
    double publish_rate = 0;  // msg/s
    double consume_rate = 0;  // deliveries/s

    // Messages published but not yet consumed, summed over flows (one per copy for fan-out).
    // With several threads, backlog_max is the sum of each thread's maximum (an upper bound).
    std::int64_t backlog_end = 0;
    std::int64_t backlog_max = 0;

    // End-to-end latency (publish to delivery, same clock), in nanoseconds.
    std::uint64_t latency_samples = 0;
    std::uint64_t latency_p50 = 0;
    std::uint64_t latency_p99 = 0;
    std::uint64_t latency_p999 = 0;
    std::uint64_t latency_max = 0;
    double latency_mean = 0;

    // Per flow (queue, or the fan-out), deliveries per second: the slowest and the mean.
    double flow_rate_min = 0;
    double flow_rate_mean = 0;

    double generator_cpu = 0;  // the generator's CPU time / wall time in the window (1.0 = a core)
    // The broker's own CPU time (user + system, all threads) in the window, and per message:
    // per delivery consumed, or per message published when the scenario has no consumers.
    std::optional<double> broker_cpu_seconds;
    std::optional<double> broker_cpu_us_per_msg;
    const char* broker_cpu_per = "consumed";
    bool blocked = false;  // a broker sent connection.blocked during the run
    int connections = 0;
    int threads = 1;                  // generator threads used
    std::vector<std::string> queues;  // the queues' names (still there after the run with keep_queues)

    std::optional<long> rss_before_kib;  // broker VmRSS before the first connection
    std::optional<long> rss_kib;         // and after the run (and the settle time)
    std::optional<long> rss_peak_kib;    // delayed scenarios: the highest of samples every 100 ms
    std::uint64_t early = 0;             // delayed scenarios: deliveries before their deadline
};

Result run_scenario(const Scenario& scenario, const Target& target);

// Set from a signal handler: the running scenario stops, closes its connections and deletes its queues.
extern std::atomic<bool> interrupted;

}  // namespace warren::bench
