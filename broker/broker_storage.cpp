// Start-up from the data directory: the definitions log is replayed into a Definitions model,
// the vhosts, exchanges, queues and bindings are rebuilt from it (without being recorded
// again), and a snapshot of the result starts a new generation of the log, so the log never
// grows across restarts. Bad records are reported and skipped; a binding whose ends are gone is
// dropped. A fresh directory gets the default vhost from the configuration, as RabbitMQ's
// default vhost is created only on a fresh node.
#include <fmt/format.h>

#include <chrono>

#include "broker/broker.hpp"
#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/queue_args.hpp"

namespace warren::broker {

namespace {

// The live durable state, as a snapshot to compact the log with.
definitions::Definitions collect(const StringMap<std::unique_ptr<VHost>>& vhosts, std::uint32_t next_vhost_id,
                                 std::uint32_t next_queue_id) {
    definitions::Definitions d;
    d.next_vhost_id = next_vhost_id;
    d.next_queue_id = next_queue_id;
    for (const auto& [name, vh] : vhosts) {
        d.vhosts.push_back({vh->name(), vh->id()});
        for (const auto& [xname, x] : vh->exchanges()) {
            if (!x->durable || x->name.empty() || x->name.starts_with("amq.")) continue;
            d.exchanges.push_back({vh->id(), x->name, std::string(exchanges::exchange_type_name(x->type)),
                                   x->auto_delete, x->internal, x->arguments});
        }
        for (const auto& [qname, q] : vh->queues()) {
            if (!q->stored_id()) continue;
            d.queues.push_back({vh->id(), q->name(), q->stored_id(), q->flags().auto_delete, q->raw_args()});
        }
        for (const auto& [xname, x] : vh->exchanges()) {
            if (!x->durable || x->name.empty()) continue;
            x->router->for_each_binding([&](const exchanges::Binding& b) {
                definitions::StoredBinding sb{vh->id(), x->name, {}, b.destination.kind == exchanges::DestinationKind::Exchange,
                                              b.routing_key, b.arguments};
                if (sb.to_exchange) {
                    ExchangeEntry* dx = vh->exchange_by_id(b.destination.id);
                    if (!dx || !dx->durable) return;
                    sb.destination = dx->name;
                } else {
                    Queue* q = vh->queue_by_id(b.destination.id);
                    if (!q || !q->stored_id()) return;
                    sb.destination = q->name();
                }
                d.bindings.push_back(std::move(sb));
            });
        }
    }
    return d;
}

}  // namespace

std::string Broker::start_storage(std::function<void(std::function<void()>)> post) {
    if (config_.data_dir.empty()) {
        log::warning("no data directory: durable queues and persistent messages are kept in memory only");
        return {};
    }
    const auto started = std::chrono::steady_clock::now();
    std::string error;
    durability_ = Durability::open(config_, std::move(post), error);
    if (!durability_) return error;

    definitions::Definitions defs;
    std::uint64_t bad = 0;
    auto stats = durability_->meta().recover([&](store::MetaLog::Kind kind, std::span<const std::byte> bytes) {
        auto problem = kind == store::MetaLog::Kind::Snapshot ? defs.apply_snapshot(bytes) : defs.apply_record(bytes);
        if (problem) {
            ++bad;
            log::warning("storage: a definitions record was skipped: {}", *problem);
        }
    });
    if (!stats) return fmt::format("cannot read the definitions log: {}", stats.error().message);

    next_stored_queue_id_ = defs.next_queue_id;
    next_vhost_id_ = defs.next_vhost_id;
    if (defs.vhosts.empty()) {
        // A fresh data directory: the configured default vhost, as the first stored one.
        VHost& vh = default_vhost();
        vh.set_id(next_vhost_id_++);
    } else {
        vhosts_.clear();
        for (const auto& v : defs.vhosts) {
            auto vh = std::make_unique<VHost>(*this, v.name);
            vh->set_id(v.id);
            vhosts_.emplace(v.name, std::move(vh));
        }
    }
    auto vhost_by_id = [&](std::uint32_t id) -> VHost* {
        for (auto& [name, vh] : vhosts_)
            if (vh->id() == id) return vh.get();
        return nullptr;
    };

    std::size_t exchanges = 0, queues = 0, bindings = 0;
    for (const auto& x : defs.exchanges) {
        VHost* vh = vhost_by_id(x.vhost);
        auto type = exchanges::parse_exchange_type(x.type);
        if (!vh || !type || vh->find_exchange(x.name)) {
            log::warning("storage: exchange '{}' of vhost {} skipped (unknown vhost or type, or a duplicate)", x.name,
                         x.vhost);
            continue;
        }
        vh->add_exchange(x.name, *type, true, x.auto_delete, x.internal, x.arguments);
        ++exchanges;
    }
    for (const auto& q : defs.queues) {
        VHost* vh = vhost_by_id(q.vhost);
        std::string resource = fmt::format("queue '{}' in vhost '{}'", q.name, vh ? vh->name() : "?");
        QueueArgsResult parsed = parse_queue_args(q.arguments, resource);
        if (!vh || !parsed.args || vh->find_queue(q.name)) {
            log::warning("storage: {} skipped: {}", resource, parsed.args ? "unknown vhost or a duplicate" : parsed.error);
            continue;
        }
        vh->add_queue(q.name, QueueFlags{true, false, q.auto_delete}, std::move(*parsed.args), q.arguments, 0, q.id);
        ++queues;
    }
    for (const auto& b : defs.bindings) {
        VHost* vh = vhost_by_id(b.vhost);
        ExchangeEntry* source = vh ? vh->find_exchange(b.source) : nullptr;
        std::optional<exchanges::Destination> destination;
        if (vh && b.to_exchange) {
            if (ExchangeEntry* x = vh->find_exchange(b.destination)) destination = x->as_destination();
        } else if (vh) {
            if (Queue* q = vh->find_queue(b.destination)) destination = q->as_destination();
        }
        if (!source || !destination) {
            log::warning("storage: a binding from '{}' to '{}' skipped: one end is missing", b.source, b.destination);
            continue;
        }
        vh->bind(*source, *destination, b.routing_key, b.arguments);
        ++bindings;
    }

    // From here on, changes are recorded; the snapshot of what was rebuilt starts a new generation.
    for (auto& [name, vh] : vhosts_) vh->set_durability(durability_.get());
    std::string snapshot = definitions::snapshot(collect(vhosts_, next_vhost_id_, next_stored_queue_id_));
    if (auto s = durability_->meta().compact(std::as_bytes(std::span(snapshot.data(), snapshot.size()))); !s)
        return fmt::format("cannot write the definitions snapshot: {}", s.error().message);

    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    log::info("storage: {} ready in {} ms: {} vhosts, {} exchanges, {} queues, {} bindings restored{}",
              config_.data_dir, ms, vhosts_.size(), exchanges, queues, bindings,
              bad || stats->bad_records ? fmt::format(" ({} bad records skipped)", bad + stats->bad_records) : "");
    return {};
}

void Broker::flush_storage() {
    if (durability_) durability_->flush();
}

void Broker::end_turn_storage() {
    if (durability_) durability_->end_turn();
}

}  // namespace warren::broker
