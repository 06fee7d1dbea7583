// Statistics as RabbitMQ's management plugin reports them: plain counters bumped on the hot path
// (one add each, no clock, no allocation), and rates computed from two samples that a timer
// takes every few seconds (Broker::sample_stats), never on the publish or deliver path.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "broker/clock.hpp"

namespace warren::broker {

// Counters (only go up) and gauges (set when sampled: queue lengths). The names are RabbitMQ's.
enum class Stat : std::uint8_t {
    publish,            // basic.publish (channel, vhost), messages enqueued (queue)
    publish_in,         // exchange: messages published to it
    publish_out,        // exchange: messages it routed somewhere
    confirm,            // publisher confirms sent (ack or nack)
    return_unroutable,  // mandatory and unroutable: basic.return
    drop_unroutable,    // not mandatory and unroutable: dropped
    deliver,            // basic.deliver to a consumer that acknowledges
    deliver_no_ack,     // basic.deliver to a no-ack consumer
    get,                // basic.get-ok, to be acknowledged
    get_no_ack,         // basic.get-ok with no_ack
    get_empty,          // basic.get-empty
    ack,                // deliveries acknowledged
    redeliver,          // deliveries and gets of a redelivered message
    recv_oct,           // connection: bytes read
    send_oct,           // connection: bytes written
    recv_cnt,           // connection: reads
    send_cnt,           // connection: writes
    messages,           // gauges, set by the sampler: ready + unacknowledged
    messages_ready,
    messages_unacknowledged,
    count_
};
inline constexpr std::size_t stat_count = static_cast<std::size_t>(Stat::count_);
std::string_view stat_name(Stat s);

// Broker-wide counts of objects opened and closed, for Prometheus (rabbitmq_prometheus's
// rabbitmq_connections_opened_total and so on). Bumped where the object is made or dropped.
struct ChurnCounters {
    std::uint64_t connections_opened = 0, connections_closed = 0;
    std::uint64_t channels_opened = 0, channels_closed = 0;
    std::uint64_t queues_declared = 0, queues_created = 0, queues_deleted = 0;
};

// The sizes of published bodies, in RabbitMQ's buckets (rabbit_msg_size_metrics: 100 B to
// 100 MB, then +Inf), for the rabbitmq_message_size_bytes histogram. A few compares per publish.
struct MessageSizes {
    static constexpr std::array<std::uint64_t, 8> bounds{100,       1'000,      10'000,     100'000,
                                                         1'000'000, 10'000'000, 50'000'000, 100'000'000};
    std::array<std::uint64_t, bounds.size() + 1> counts{};  // per bucket, not cumulative
    std::uint64_t sum = 0;
    void observe(std::uint64_t size) {
        std::size_t i = 0;
        while (i < bounds.size() && size > bounds[i]) ++i;
        ++counts[i];
        sum += size;
    }
};

// How late the broker hands out held messages (delayed exchanges, retry backoffs): the time of
// the loop turn that releases one minus its deadline, in microseconds. What lateness a client
// sees on top of this is the loop's other work and the delivery's way out. A few compares per
// release.
struct ReleaseLateness {
    static constexpr std::array<std::uint64_t, 11> bounds_us{1'000,   2'000,   5'000,   10'000,    20'000,   50'000,
                                                             100'000, 200'000, 500'000, 1'000'000, 5'000'000};
    std::array<std::uint64_t, bounds_us.size() + 1> counts{};  // per bucket, not cumulative
    std::uint64_t sum_us = 0, max_us = 0;
    void observe(std::uint64_t us) {
        std::size_t i = 0;
        while (i < bounds_us.size() && us > bounds_us[i]) ++i;
        ++counts[i];
        sum_us += us;
        if (us > max_us) max_us = us;
    }
};

class Stats {
public:
    // The hot path: one add.
    void add(Stat s, std::uint64_t n = 1) { values_[index(s)] += n; }
    void set(Stat s, std::uint64_t v) { values_[index(s)] = v; }
    std::uint64_t value(Stat s) const { return values_[index(s)]; }

    // Takes a sample: the rates then cover the time between this sample and the previous one.
    void sample(TimePoint now);
    // Per second, over the last sample window; 0 before two samples exist. Gauges may fall.
    double rate(Stat s) const;
    // When a counter last changed, as the sampler saw it (for idle_since); the first sample's
    // time until then. Empty before the first sample.
    bool sampled() const { return window_ != nullptr; }
    TimePoint last_change() const { return window_ ? window_->changed_at : TimePoint{}; }

private:
    static constexpr std::size_t index(Stat s) { return static_cast<std::size_t>(s); }
    std::array<std::uint64_t, stat_count> values_{};
    // Kept apart so that the objects on the hot path stay small; made by the first sample.
    struct Window {
        std::array<std::uint64_t, stat_count> prev{}, last{};
        TimePoint prev_at{}, last_at{}, changed_at{};
        int samples = 0;
    };
    std::unique_ptr<Window> window_;
};

}  // namespace warren::broker
