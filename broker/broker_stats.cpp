// The statistics sampler: every few seconds (a timer in main), one sample of each counter, from
// which the management API computes RabbitMQ's `_details.rate`. The hot path only adds to
// counters; this walk costs about 50 ns per queue, exchange and channel (0.5 ms for 10,000
// queues), once per interval.
#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/connection.hpp"

namespace warren::broker {

void Broker::sample_stats() {
    const TimePoint at = now();
    std::uint64_t ready_total = 0, unacked_total = 0;
    std::array<std::uint64_t, stat_count> sum{};
    for (auto& [name, vhost] : vhosts_) {
        std::uint64_t ready = 0, unacked = 0;
        for (auto& [qname, q] : vhost->queues()) {
            Stats& s = q->stats();
            s.set(Stat::messages_ready, q->message_count());
            s.set(Stat::messages_unacknowledged, q->unacked_count());
            s.set(Stat::messages, q->message_count() + q->unacked_count());
            s.sample(at);
            ready += q->message_count();
            unacked += q->unacked_count();
        }
        for (auto& [xname, x] : vhost->exchanges()) x->stats.sample(at);
        Stats& vs = vhost->stats();
        vs.set(Stat::messages_ready, ready);
        vs.set(Stat::messages_unacknowledged, unacked);
        vs.set(Stat::messages, ready + unacked);
        ready_total += ready;
        unacked_total += unacked;
        for (std::size_t i = 0; i < stat_count; ++i) sum[i] += vs.value(static_cast<Stat>(i));
    }
    for (auto& [name, vhost] : vhosts_) vhost->stats().sample(at);
    for (auto& [id, c] : connections_) {
        c->stats().sample(at);
        for (auto& [number, ch] : c->channels()) ch->stats().sample(at);
    }
    for (std::size_t i = 0; i < stat_count; ++i) totals_.set(static_cast<Stat>(i), sum[i]);
    totals_.set(Stat::messages_ready, ready_total);
    totals_.set(Stat::messages_unacknowledged, unacked_total);
    totals_.set(Stat::messages, ready_total + unacked_total);
    totals_.sample(at);
}

}  // namespace warren::broker
