// The benchmark scenarios: what to declare, how many producers and consumers, and how they
// behave. The named presets are what compare.py runs against Warren and RabbitMQ; any field
// can be overridden from the warren-bench command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::bench {

// How the generator writes. Pipelined packs as many publishes (and acks) as it has into one send,
// so that the broker reads thousands per system call. Client writes each publish and each ack
// with its own send, as the Java, Go, .NET and Python clients do, and reads at most 8 KiB per
// recv, like the Java client's buffered stream: the broker then sees a system call per message.
enum class LoadMode { Pipelined, Client };

std::string_view to_string(LoadMode mode);
bool parse_load_mode(std::string_view text, LoadMode& out);

struct Scenario {
    std::string name = "custom";
    std::string description;
    LoadMode mode = LoadMode::Pipelined;
    // Generator threads, each with its own epoll loop and its own share of the queues (and their
    // producers and consumers). At most one per flow; scenarios that count messages use one.
    int threads = 1;

    // Topology. Without fanout, producer i publishes to queue i % queues through the default
    // exchange, and each queue with its producers and consumers is one flow. With fanout, every
    // producer publishes to one fanout exchange bound to all the queues: one flow, `queues` copies.
    int queues = 1;
    bool fanout = false;
    int producers = 1;
    int consumers = 1;         // per queue
    int idle_connections = 0;  // connections that open channel 1 and then do nothing

    // Storage. A durable queue survives a restart, and so do persistent (delivery_mode 2)
    // messages in it: the broker writes them to disk (and with confirms, confirms them once
    // stored). Queue arguments are string-valued (x-queue-type quorum, x-queue-mode lazy).
    bool durable = false;
    bool persistent = false;
    std::vector<std::pair<std::string, std::string>> queue_args;
    bool keep_queues = false;  // leave the queues (and what they hold) on the broker after the run
    // Non-empty: the one queue is this one, e.g. a stream another run filled and kept (its
    // declaration must match). A run with consumers, no producers and `messages` > 0 reads it:
    // it ends when each consumer has received `messages`, and measures from the subscriptions.
    std::string queue_name;
    // basic.consume's arguments, string-valued (x-stream-offset first).
    std::vector<std::pair<std::string, std::string>> consumer_args;

    std::size_t body = 16;  // bytes; the first 8 carry the send time, so latency needs >= 8
    bool no_ack = false;
    std::uint16_t prefetch = 0;   // basic.qos prefetch_count; 0 is unlimited
    std::uint32_t multi_ack = 1;  // ack with multiple=true every N deliveries; 1 acks each one
    std::uint32_t confirm = 0;    // publisher confirms with this window; 0 turns confirms off
    double rate = 0;              // msg/s per producer; 0 is as fast as the backlog bound allows

    // Producers stop while a flow's backlog (published x copies - consumed, per copy) is at
    // this bound, so that they cannot outrun consumers without limit. Flows without consumers
    // are not bounded (the memory scenario fills a queue on purpose).
    std::uint32_t max_inflight = 10'000;

    std::uint64_t messages = 0;  // > 0: publish this many in all, await confirms, then stop
    double duration = 10;        // seconds measured (when messages == 0)
    double warmup = 2;           // seconds run before measuring
    double settle = 0;           // seconds waited after the run before reading the broker's RSS
    double count_timeout = 600;  // seconds allowed to publish and confirm `messages`
    bool measures_memory = false;

    // > 0: delayed delivery. Producers publish to a durable x-delayed-message exchange (routing
    // as direct, by queue name) with an x-delay drawn uniformly from 0..max_delay_ms; consumers
    // record lateness, delivery time - (send time + delay), in place of latency; a counted run
    // ends once every message is delivered; the broker's RSS is sampled for its peak. Needs a
    // broker with the delayed-message exchange (Warren; RabbitMQ with the community plugin).
    std::uint32_t max_delay_ms = 0;

    int total_consumers() const { return consumers * queues; }
    // A stream (x-queue-type stream) keeps what is read: each of its consumers gets every message.
    bool stream() const {
        for (const auto& [key, value] : queue_args) {
            if (key == "x-queue-type" && value == "stream") return true;
        }
        return false;
    }
    int flows() const { return fanout ? 1 : queues; }
};

// The named presets, in the order compare.py runs them.
std::span<const Scenario> presets();
const Scenario* find_preset(std::string_view name);

}  // namespace warren::bench
