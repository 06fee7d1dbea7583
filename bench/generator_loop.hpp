// One generator thread's share of a scenario: its own epoll loop over its own connections (thread
// w of n drives queues w, w + n, w + 2n, ... with their producers and consumers; thread 0 also
// declares and deletes the topology). Threads meet only at the Coordinator's atomics, and
// run_scenario (load_generator.cpp) adds up their results.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "bench/histogram.hpp"
#include "bench/load_generator.hpp"

namespace warren::bench {

// The phase changes that the threads of one run make together.
struct Coordinator {
    int threads = 1;
    std::atomic<bool> declared{false};        // thread 0 declared the queues (and the exchange)
    std::atomic<int> ready{0};                // threads whose connections are all set up
    std::atomic<std::uint64_t> run_start{0};  // when publishing starts, the same for every thread
    std::atomic<int> closed{0};               // threads that closed their connections
    std::atomic<bool> failed{false};          // a thread aborted: the others stop too
};

// The error of a thread stopped because another one failed (the other one says why).
inline constexpr std::string_view other_thread_failed = "another generator thread failed";

struct LoopOutput {
    Result result;      // this thread's share: window, counts, rates (latency from `latency`)
    Histogram latency;  // its latency samples in the window
    int flows = 0;      // the flows it drove, for the mean rate per flow
};

// Runs thread `index`'s share of the scenario to the end; returns after the queues are deleted
// (thread 0) or its connections are closed (the others).
LoopOutput run_generator_loop(const Scenario& scenario, const Target& target, Coordinator& coordinator, int index);

// The latency fields of a result, from a histogram.
void set_latency(Result& r, const Histogram& h);

}  // namespace warren::bench
