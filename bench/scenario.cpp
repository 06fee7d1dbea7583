// The named scenarios of the benchmark issue. Defaults follow RabbitMQ PerfTest's: one producer,
// one consumer, transient messages, manual ack per message, unlimited prefetch.
#include "bench/scenario.hpp"

#include <utility>
#include <vector>

namespace warren::bench {

namespace {

Scenario make(std::string name, std::string description, auto&& tweak) {
    Scenario s;
    s.name = std::move(name);
    s.description = std::move(description);
    tweak(s);
    return s;
}

std::vector<Scenario> build_presets() {
    std::vector<Scenario> all;
    all.push_back(make("default",
                       "PerfTest's default: 1 producer, 1 consumer, 16 B, ack per message, unlimited prefetch",
                       [](Scenario&) {}));
    all.push_back(make("autoack", "16 B, auto-ack (no_ack)", [](Scenario& s) { s.no_ack = true; }));
    all.push_back(make("prefetch100", "16 B, prefetch 100, ack multiple every 50", [](Scenario& s) {
        s.prefetch = 100;
        s.multi_ack = 50;
    }));
    all.push_back(make("body-1k", "1 KiB bodies, ack per message", [](Scenario& s) { s.body = 1024; }));
    all.push_back(make("body-64k", "64 KiB bodies, ack per message", [](Scenario& s) { s.body = 64 * 1024; }));
    all.push_back(make("body-1m", "1 MiB bodies, ack per message, at most 100 in flight", [](Scenario& s) {
        s.body = 1024 * 1024;
        s.max_inflight = 100;  // 100 MiB in flight; 10,000 would be 10 GiB
    }));
    all.push_back(make("fanout3", "fan-out exchange to 3 queues, one consumer each", [](Scenario& s) {
        s.queues = 3;
        s.fanout = true;
    }));
    all.push_back(make("queues10", "10 queues, each with 1 producer and 1 consumer", [](Scenario& s) {
        s.queues = 10;
        s.producers = 10;
    }));
    all.push_back(make("confirm1000", "publisher confirms, window 1,000", [](Scenario& s) { s.confirm = 1000; }));
    for (auto [name, rate] : {std::pair{"latency-1k", 1'000.0},
                              {"latency-10k", 10'000.0},
                              {"latency-50k", 50'000.0},
                              {"latency-100k", 100'000.0}}) {
        all.push_back(make(name, "end-to-end latency at a fixed publish rate", [rate](Scenario& s) { s.rate = rate; }));
    }
    all.push_back(make("many-connections",
                       "1,000 producers and 1,000 consumers on 100 queues (10 of each per queue), 16 B, ack each",
                       [](Scenario& s) {
                           s.queues = 100;
                           s.producers = 1000;
                           s.consumers = 10;
                           s.max_inflight = 1000;  // per queue: at most 100,000 queued in all
                       }));
    all.push_back(
        make("memory-1m-queued", "broker RSS with 1 M queued 16 B messages (published with confirms)", [](Scenario& s) {
            s.consumers = 0;
            s.confirm = 10'000;
            s.messages = 1'000'000;
            s.warmup = 0;
            s.settle = 2;
            s.measures_memory = true;
        }));
    all.push_back(make("memory-1000-idle", "broker RSS with 1,000 idle connections (channel 1 open)", [](Scenario& s) {
        s.queues = 0;
        s.producers = 0;
        s.consumers = 0;
        s.idle_connections = 1000;
        s.warmup = 0;
        s.settle = 2;
        s.measures_memory = true;
    }));
    all.push_back(make("durable-1k",
                       "1 KiB persistent messages to a durable queue, confirms (window 256), ack per message",
                       [](Scenario& s) {
                           s.body = 1024;
                           s.durable = true;
                           s.persistent = true;
                           s.confirm = 256;
                       }));
    all.push_back(make("durable-1k-q4", "durable-1k on 4 queues, each with its own producer (window 256) and consumer",
                       [](Scenario& s) {
                           s.body = 1024;
                           s.durable = true;
                           s.persistent = true;
                           s.confirm = 256;
                           s.queues = 4;
                           s.producers = 4;
                       }));
    all.push_back(make("durable-fill",
                       "fills a durable queue with 1,000,000 1 KiB persistent messages (confirms) and keeps it",
                       [](Scenario& s) {
                           s.body = 1024;
                           s.durable = true;
                           s.persistent = true;
                           s.consumers = 0;
                           s.confirm = 10'000;
                           s.messages = 1'000'000;
                           s.warmup = 0;
                           s.settle = 2;
                           s.measures_memory = true;
                           s.keep_queues = true;
                       }));
    // Streams over AMQP 0-9-1, as RabbitMQ (3.9+) defines them: a durable queue of type stream;
    // a consumer must set a prefetch and ack manually (RabbitMQ refuses a stream consumer
    // without basic.qos), and reads from where x-stream-offset says.
    auto stream = [](Scenario& s) {
        s.durable = true;
        s.persistent = true;
        s.queue_args.emplace_back("x-queue-type", "stream");
        s.confirm = 256;
    };
    for (auto [name, body] :
         {std::pair{"stream-publish-16b", std::size_t{16}}, {"stream-publish-1k", std::size_t{1024}}}) {
        all.push_back(
            make(name, "publishing into one stream, confirms (window 256), no consumer", [stream, body](Scenario& s) {
                stream(s);
                s.body = body;
                s.consumers = 0;
            }));
    }
    // Three consumers, each reading the whole stream from its start.
    auto three_readers = [stream](Scenario& s) {
        stream(s);
        s.consumers = 3;
        s.prefetch = 1000;
        s.multi_ack = 100;
        s.consumer_args.emplace_back("x-stream-offset", "first");
    };
    all.push_back(make("stream-read-3",
                       "3 consumers each reading one stream from the start (x-stream-offset first, prefetch 1,000, "
                       "ack multiple every 100) while a producer publishes 16 B with confirms (window 256)",
                       [three_readers](Scenario& s) { three_readers(s); }));
    // A backlog on disk (behind the broker's in-memory tail) read from the start: compare.py
    // fills a stream with stream-backlog-fill and then times stream-backlog-read on it (--queue).
    all.push_back(make("stream-backlog-fill",
                       "fills a stream with 1,000,000 16 B messages (confirms, window 10,000) and keeps it",
                       [stream](Scenario& s) {
                           stream(s);
                           s.consumers = 0;
                           s.confirm = 10'000;
                           s.messages = 1'000'000;
                           s.warmup = 0;
                           s.keep_queues = true;
                       }));
    all.push_back(make("stream-backlog-read",
                       "3 consumers each reading a filled stream (--queue) from the start to its end (x-stream-offset "
                       "first, prefetch 1,000, ack multiple every 100), no producer",
                       [three_readers](Scenario& s) {
                           three_readers(s);
                           s.producers = 0;
                           s.messages = 1'000'000;
                           s.warmup = 0;
                       }));
    // Not in "all" (compare.py's scenarios run on both brokers; RabbitMQ has no such exchange
    // without a plugin): run it by name.
    all.push_back(make("delayed-1m",
                       "1 M persistent 1 KiB messages with x-delay 0-60 s to a durable delayed exchange: release "
                       "lateness and broker RSS",
                       [](Scenario& s) {
                           s.body = 1024;
                           s.messages = 1'000'000;
                           // A small window keeps what waits in the broker's socket short: lateness
                           // counts from the send, so a long wait to be read would show as lateness.
                           s.confirm = 1'000;
                           s.max_delay_ms = 60'000;
                           s.persistent = true;
                           s.warmup = 0;
                       }));
    return all;
}

}  // namespace

std::string_view to_string(LoadMode mode) {
    return mode == LoadMode::Client ? "client" : "pipelined";
}

bool parse_load_mode(std::string_view text, LoadMode& out) {
    if (text == "client") {
        out = LoadMode::Client;
    } else if (text == "pipelined") {
        out = LoadMode::Pipelined;
    } else {
        return false;
    }
    return true;
}

std::span<const Scenario> presets() {
    static const std::vector<Scenario> all = build_presets();
    return all;
}

const Scenario* find_preset(std::string_view name) {
    for (const Scenario& s : presets()) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

}  // namespace warren::bench
