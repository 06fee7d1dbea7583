// warren-chx-spread: how evenly the consistent-hash exchange spreads keys. Binds N queues with
// weight 1, routes K distinct routing keys ("key-0" ...), and prints each queue's share, the
// spread (max/min) and the coefficient of variation; then adds one queue and counts the keys
// that moved. Usage: warren-chx-spread [queues=10] [keys=1000000]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "exchanges/consistent_hash_exchange.hpp"

using namespace warren::exchanges;

int main(int argc, char** argv) {
    const std::uint64_t queues = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10;
    const std::uint64_t keys = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
    ConsistentHashExchange x(HashSource{});
    for (std::uint64_t q = 0; q < queues; ++q) x.bind(Destination{DestinationKind::Queue, q}, "1", {});
    std::vector<std::uint64_t> count(queues + 1), first(keys);
    std::vector<Destination> out;
    std::string key;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < keys; ++i) {
        key = "key-" + std::to_string(i);
        out.clear();
        x.route(RoutingInput{key, {}}, out);
        first[i] = out[0].id;
        ++count[out[0].id];
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    const double mean = static_cast<double>(keys) / static_cast<double>(queues);
    double var = 0;
    std::uint64_t lo = keys, hi = 0;
    for (std::uint64_t q = 0; q < queues; ++q) {
        std::printf("queue %2llu: %8llu keys (%+.2f %% from the mean)\n", static_cast<unsigned long long>(q),
                    static_cast<unsigned long long>(count[q]), 100.0 * (static_cast<double>(count[q]) - mean) / mean);
        var += (static_cast<double>(count[q]) - mean) * (static_cast<double>(count[q]) - mean);
        lo = std::min(lo, count[q]);
        hi = std::max(hi, count[q]);
    }
    std::printf(
        "%llu keys over %llu queues: min %llu, max %llu, max/min %.4f, coefficient of variation %.4f %%; "
        "%.0f ns per route\n",
        static_cast<unsigned long long>(keys), static_cast<unsigned long long>(queues),
        static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi),
        static_cast<double>(hi) / static_cast<double>(lo), 100.0 * std::sqrt(var / static_cast<double>(queues)) / mean,
        ns / static_cast<double>(keys));
    x.bind(Destination{DestinationKind::Queue, queues}, "1", {});
    std::uint64_t moved = 0, moved_elsewhere = 0;
    for (std::uint64_t i = 0; i < keys; ++i) {
        key = "key-" + std::to_string(i);
        out.clear();
        x.route(RoutingInput{key, {}}, out);
        if (out[0].id != first[i]) {
            ++moved;
            if (out[0].id != queues) ++moved_elsewhere;
        }
    }
    std::printf("adding queue %llu moved %llu keys (%.2f %%; ideal %.2f %%), %llu of them to an old queue\n",
                static_cast<unsigned long long>(queues), static_cast<unsigned long long>(moved),
                100.0 * static_cast<double>(moved) / static_cast<double>(keys), 100.0 / static_cast<double>(queues + 1),
                static_cast<unsigned long long>(moved_elsewhere));
    return 0;
}
