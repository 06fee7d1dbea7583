// Start-up from the data directory: the definitions log is replayed into a Definitions model,
// the vhosts, exchanges, queues and bindings are rebuilt from it (without being recorded
// again), and a snapshot of the result starts a new generation of the log, so the log never
// grows across restarts; while running, another snapshot replaces it once it has grown past a
// threshold (Durability::definitions_due). Bad records are reported and skipped; a binding whose ends are gone is
// dropped. A fresh directory gets the default vhost and the default user (administrator, full
// permissions on it) from the configuration, as RabbitMQ creates them only on a fresh node;
// an existing one keeps the users and vhosts it has.
#include <fmt/format.h>

#include <chrono>
#include <unordered_map>
#include <variant>

#include "broker/broker.hpp"
#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/queue_args.hpp"
#include "broker/rabbit_text.hpp"
#include "broker/stream.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

namespace {

// The live durable state, as a snapshot to compact the log with.
definitions::StoredLimits stored_limits(const VHostLimits& l) { return {l.max_connections, l.max_queues, std::nullopt}; }

definitions::Definitions collect(const StringMap<std::unique_ptr<VHost>>& vhosts, const AuthRegistry& auth,
                                 const std::map<std::string, std::string, std::less<>>& globals,
                                 std::uint32_t next_vhost_id, std::uint32_t next_queue_id) {
    definitions::Definitions d;
    for (const auto& [name, value] : globals) d.global_parameters.push_back({name, value});
    d.next_vhost_id = next_vhost_id;
    d.next_queue_id = next_queue_id;
    d.users_stored = true;
    for (const auto& [name, u] : auth.users())
        d.users.push_back({u.name, encode_password_hash(u.password), std::string(hashing_algorithm_name(u.password.algorithm)),
                           u.tags, {u.limits.max_connections, std::nullopt, u.limits.max_channels}});
    auto vhost_id = [&](const std::string& name) {
        auto it = vhosts.find(name);
        return it == vhosts.end() ? 0u : it->second->id();
    };
    for (const auto& [key, p] : auth.permissions())
        if (std::uint32_t id = vhost_id(key.second))
            d.permissions.push_back({key.first, id, p->configure.pattern(), p->write.pattern(), p->read.pattern()});
    for (const auto& [key, topics] : auth.topic_permissions())
        if (std::uint32_t id = vhost_id(key.second))
            for (const auto& [exchange, t] : *topics)
                d.topic_permissions.push_back({key.first, id, exchange, t.write_pattern, t.read_pattern});
    for (const auto& [name, vh] : vhosts) {
        d.vhosts.push_back({vh->name(), vh->id(), vh->settings().description, vh->settings().tags,
                            stored_limits(vh->limits())});
        for (PolicyKind kind : {PolicyKind::Policy, PolicyKind::Operator})
            for (const PolicyRef& p : vh->policies(kind))
                d.policies.push_back({vh->id(), kind == PolicyKind::Operator, p->name, p->pattern,
                                      std::string(apply_to_name(p->apply_to)), p->priority, p->definition});
        for (const auto& [xname, x] : vh->exchanges()) {
            if (!x->durable || x->name.empty() || x->name.starts_with("amq.")) continue;
            d.exchanges.push_back({vh->id(), x->name, std::string(x->type_name()), x->auto_delete, x->internal,
                                   x->arguments, x->delayed ? x->delayed->stored_id() : 0});
        }
        for (const auto& [qname, q] : vh->queues()) {
            if (!q->stored_id()) continue;
            d.queues.push_back({vh->id(), q->name(), q->stored_id(), q->flags().auto_delete, q->raw_args()});
            if (Stream* s = q->stream())
                for (const auto& [consumer, offset] : s->tracked_offsets())
                    d.stream_offsets.push_back({vh->id(), q->stored_id(), consumer, offset});
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

std::string Broker::start_storage(std::function<void(std::function<void()>)> post,
                                  std::shared_ptr<store::FileSystem> fs) {
    if (config_.data_dir.empty()) {
        log::warning("no data directory: durable queues and persistent messages are kept in memory only");
        return {};
    }
    const auto started = std::chrono::steady_clock::now();
    std::string error;
    durability_ = Durability::open(config_, std::move(post), error, std::move(fs));
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
            vh->set_settings({v.description, v.tags});
            vh->set_limits({v.limits.max_connections, v.limits.max_queues});
            vhosts_.emplace(v.name, std::move(vh));
        }
    }
    restore_auth(defs);
    auto vhost_by_id = [&](std::uint32_t id) -> VHost* {
        for (auto& [name, vh] : vhosts_)
            if (vh->id() == id) return vh.get();
        return nullptr;
    };

    // Policies before the queues and exchanges they apply to (a queue's TTL decides the
    // deadlines of the messages recovered below).
    std::size_t policies = 0;
    for (const auto& p : defs.policies) {
        VHost* vh = vhost_by_id(p.vhost);
        const PolicyKind kind = p.operator_policy ? PolicyKind::Operator : PolicyKind::Policy;
        auto made = make_policy({vh ? vh->name() : "", p.name, p.pattern, p.apply_to, p.priority, p.definition}, kind);
        if (!vh || std::holds_alternative<PolicyError>(made)) {
            log::warning("storage: policy '{}' of vhost {} skipped: {}", p.name, p.vhost,
                         vh ? std::get<PolicyError>(made).text : "unknown vhost");
            continue;
        }
        vh->put_policy(kind, std::get<Policy>(std::move(made)));
        ++policies;
    }
    global_parameters_.clear();
    for (const auto& g : defs.global_parameters) global_parameters_[g.name] = g.value;

    std::size_t exchanges = 0, queues = 0, bindings = 0;
    for (const auto& x : defs.exchanges) {
        VHost* vh = vhost_by_id(x.vhost);
        auto type = resolve_exchange_type(x.type, x.arguments, resource_name("exchange", x.name, vh ? vh->name() : "?"));
        auto* choice = std::get_if<ExchangeTypeChoice>(&type);
        if (!vh || !choice || vh->find_exchange(x.name)) {
            log::warning("storage: exchange '{}' of vhost {} skipped (unknown vhost or type, or a duplicate)", x.name,
                         x.vhost);
            continue;
        }
        vh->add_exchange(x.name, choice->router, true, x.auto_delete, x.internal, x.arguments, choice->delayed, x.id);
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
    for (const auto& o : defs.stream_offsets) {
        VHost* vh = vhost_by_id(o.vhost);
        if (!vh) continue;
        for (auto& [qname, q] : vh->queues())
            if (q->stored_id() == o.queue && q->stream()) q->stream()->set_tracked_offset(o.name, o.offset);
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

    // A vhost deleted just before a crash may have left its messages: they go now.
    for (std::uint32_t id : durability_->message_log_ids()) {
        bool live = false;
        for (auto& [name, vh] : vhosts_) live = live || vh->id() == id;
        if (!live) {
            log::info("storage: removing the messages of deleted vhost {}", id);
            durability_->remove_message_log(id);
        }
    }
    // Each vhost's messages, back into their queues (on disk; read when they near the front).
    std::uint64_t messages = 0;
    for (auto& [name, vh] : vhosts_) {
        auto recovered = recover_messages(*vh);
        if (auto* error = std::get_if<std::string>(&recovered)) return *error;
        messages += std::get<std::uint64_t>(recovered);
    }

    // From here on, changes are recorded; the snapshot of what was rebuilt starts a new generation.
    for (auto& [name, vh] : vhosts_) vh->set_durability(durability_.get());
    std::string snapshot =
        definitions::snapshot(collect(vhosts_, auth_, global_parameters_, next_vhost_id_, next_stored_queue_id_));
    store::MetaLog& meta = durability_->meta();
    const std::uint32_t generation = meta.generation();
    if (auto s = meta.compact(std::as_bytes(std::span(snapshot.data(), snapshot.size()))); !s) {
        // A full disk must not keep the broker from starting on it. When the snapshot failed
        // before its rename, the log just replayed is still current and readable: what was
        // rebuilt is what it replays to (defaults included), so the broker goes on appending
        // to it. Otherwise there is no log to record changes in.
        if (meta.needs_compaction() || meta.generation() != generation)
            return fmt::format("cannot write the definitions snapshot: {}", s.error().message);
        log::warning("storage: cannot write the definitions snapshot ({}); the current definitions log stays in use",
                     s.error().message);
    }

    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    release_floor_ = now();
    log::info("storage: {} ready in {} ms: {} vhosts, {} users, {} policies, {} exchanges, {} queues, {} bindings, "
              "{} messages restored{}",
              config_.data_dir, ms, vhosts_.size(), auth_.users().size(), policies, exchanges, queues, bindings,
              messages,
              bad || stats->bad_records ? fmt::format(" ({} bad records skipped)", bad + stats->bad_records) : "");
    return {};
}

// Users, permissions and topic permissions as stored; what no longer validates (a hash of the
// wrong length, a pattern PCRE2 refuses, a vhost that is gone) is skipped and logged. A data
// directory that never stored users (fresh, or written before users were stored) gets the
// default user.
void Broker::restore_auth(const definitions::Definitions& defs) {
    auth_ = AuthRegistry();
    if (!defs.users_stored) {
        create_default_user();
        return;
    }
    for (const auto& u : defs.users) {
        auto algorithm = parse_hashing_algorithm(u.hashing_algorithm);
        auto hash = algorithm ? decode_password_hash(u.password_hash, *algorithm)
                              : std::variant<PasswordHash, std::string>(std::string("unknown hashing algorithm"));
        if (auto* error = std::get_if<std::string>(&hash)) {
            log::warning("storage: user '{}' skipped: password_hash {}", u.name, *error);
            continue;
        }
        auth_.put_user({u.name, std::get<PasswordHash>(std::move(hash)), u.tags,
                        {u.limits.max_connections, u.limits.max_channels}});
    }
    auto vhost_name = [&](std::uint32_t id) -> const VHost* {
        for (auto& [name, vh] : vhosts_)
            if (vh->id() == id) return vh.get();
        return nullptr;
    };
    auto compile = [](const std::string& pattern) { return PermissionRegex::compile(pattern); };
    for (const auto& p : defs.permissions) {
        const VHost* vh = vhost_name(p.vhost);
        auto c = compile(p.configure), w = compile(p.write), r = compile(p.read);
        if (!vh || !auth_.find_user(p.user) || c.index() || w.index() || r.index()) {
            log::warning("storage: permissions of user '{}' in vhost {} skipped (unknown user or vhost, or a pattern "
                         "that does not compile)",
                         p.user, p.vhost);
            continue;
        }
        auth_.put_permissions(p.user, vh->name(),
                              {std::get<0>(std::move(c)), std::get<0>(std::move(w)), std::get<0>(std::move(r))});
    }
    for (const auto& p : defs.topic_permissions) {
        const VHost* vh = vhost_name(p.vhost);
        auto w = compile(expand_topic_variables(p.write, p.user, vh ? vh->name() : ""));
        auto r = compile(expand_topic_variables(p.read, p.user, vh ? vh->name() : ""));
        if (!vh || !auth_.find_user(p.user) || w.index() || r.index()) {
            log::warning("storage: topic permissions of user '{}' in vhost {} skipped", p.user, p.vhost);
            continue;
        }
        auth_.put_topic_permission(p.user, vh->name(),
                                   {p.exchange, p.write, p.read, std::get<0>(std::move(w)), std::get<0>(std::move(r))});
    }
}

// The stored messages of one vhost: each (message, queue) pair still unsettled goes back to its
// queue at its position, paged out, with its delivery count (one more if it was delivered and
// not settled when the broker stopped: it comes back redelivered) and its deadline, which is
// absolute: time spent down counts, and what expired meanwhile is dead-lettered at once.
std::variant<std::uint64_t, std::string> Broker::recover_messages(VHost& vh) {
    auto opened = durability_->open_message_log(vh.id());
    if (!opened) return fmt::format("cannot open the messages of vhost '{}': {}", vh.name(), opened.error().message);
    store::MessageLog& log = **opened;
    std::unordered_map<std::uint32_t, Queue*> by_id;
    for (auto& [qname, q] : vh.queues())
        if (q->stored_id()) by_id.emplace(q->stored_id(), q.get());
    std::unordered_map<std::uint32_t, DelayedExchange*> delayed_by_id;
    for (auto& [xname, x] : vh.exchanges())
        if (x->delayed && x->delayed->stored_id()) delayed_by_id.emplace(x->delayed->stored_id(), x->delayed.get());
    const TimePoint now = time_.now();
    const std::int64_t now_ms = time_.unix_ms();
    const auto started = std::chrono::steady_clock::now();
    auto at = [&](std::int64_t unix_ms) {
        TimePoint t = now + std::chrono::milliseconds(unix_ms - now_ms);
        return t == TimePoint{} ? t + std::chrono::nanoseconds(1) : t;
    };
    // Deliveries in flight when the broker stopped come back with one more to their count; that
    // is recorded (as a Return event), or the next recovery would count from the last requeue.
    struct Returned {
        store::Location location;
        std::uint32_t queue_id;
        std::uint16_t delivery_count;
    };
    std::vector<Returned> returned;
    auto stats = log.recover([&](const store::RecoveredEntry& e) {
        if (auto x = delayed_by_id.find(e.queue_id); x != delayed_by_id.end()) {
            // Held by a delayed exchange: its record says until when (publish time plus the
            // delay in its TTL field), or the checkpoint does. Passed: released at once.
            const std::int64_t deadline =
                e.has_deadline ? e.deadline_ms : static_cast<std::int64_t>(e.publish_ms) + e.ttl_ms;
            x->second->restore(e.location, e.queue_seq, at(deadline));
            return true;
        }
        auto it = by_id.find(e.queue_id);
        if (it == by_id.end()) return false;  // its queue (or delayed exchange) was deleted
        Queue& q = *it->second;
        if (Stream* s = q.stream()) {
            // A checkpoint keeps a stream entry's append time where a deadline would be.
            s->restore(e.queue_seq - 1, e.location, e.body_size,
                       e.has_deadline ? e.deadline_ms : static_cast<std::int64_t>(e.publish_ms));
            return true;
        }
        std::optional<std::uint64_t> ttl = q.args().message_ttl_ms;
        if (e.ttl_ms != store::no_ttl) ttl = ttl ? std::min<std::uint64_t>(*ttl, e.ttl_ms) : e.ttl_ms;
        PagedMessage p;
        if (e.has_deadline) ttl.reset();  // a checkpoint knows the deadline itself
        p.location = e.location;
        p.seq = e.queue_seq;
        p.body_size = e.body_size;
        p.priority = e.priority;
        // A checkpoint keeps deadlines, not append times.
        if (!e.has_deadline && e.publish_ms)
            p.arrived_at = now + std::chrono::milliseconds(static_cast<std::int64_t>(e.publish_ms) - now_ms);
        p.delivery_count = static_cast<std::uint16_t>(std::min<std::uint32_t>(e.delivery_count + (e.delivered ? 1 : 0), 0xFFFF));
        std::optional<std::int64_t> deadline_ms;
        if (e.has_deadline && e.deadline_ms >= 0) deadline_ms = e.deadline_ms;
        if (ttl) deadline_ms = static_cast<std::int64_t>(e.publish_ms + *ttl);
        if (deadline_ms) p.expires_at = at(*deadline_ms);
        // Waiting out a retry backoff: until the same instant.
        if (e.hold_until_ms >= 0) p.hold_until = at(e.hold_until_ms);
        q.restore(p);
        if (e.delivered) returned.push_back({e.location, e.queue_id, p.delivery_count});
        return true;
    });
    if (!stats) return fmt::format("cannot read the messages of vhost '{}': {}", vh.name(), stats.error().message);
    for (const Returned& r : returned) log.ret(r.location, r.queue_id, r.delivery_count);
    vh.set_storage(std::make_unique<VHostStorage>(log, time_));
    vh.storage()->set_recovery(*stats);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (stats->live || stats->records)
        log::info(
            "storage: vhost '{}': {} messages back in their queues from {} in {} ms ({} dropped with "
            "their queue, {} bad records skipped, {} torn tails cut{})",
            vh.name(), stats->live,
            stats->checkpoint ? std::string("the clean shutdown's checkpoint")
                              : fmt::format("{} records", stats->records),
            ms, stats->dropped, stats->bad_records, stats->torn_tails,
            stats->checkpoint
                ? std::string()
                : fmt::format(
                      "; {} of {} segments read from their index{}", stats->indexed_segments, stats->segments,
                      stats->bad_indexes ? fmt::format(", {} indexes refused", stats->bad_indexes) : std::string()));
    return stats->live;
}

void Broker::shut_down_storage() {
    if (!durability_) return;
    durability_->finish_writes();
    const TimePoint now = time_.now();
    const std::int64_t now_ms = time_.unix_ms();
    std::vector<store::RecoveredEntry> entries;
    for (auto& [name, vh] : vhosts_) {
        VHostStorage* storage = vh->storage();
        if (!storage) continue;
        entries.clear();
        for (const auto& [qname, q] : vh->queues()) q->checkpoint(entries, now, now_ms);
        for (const auto& [xname, x] : vh->exchanges())
            if (x->delayed) x->delayed->checkpoint(entries, now, now_ms);
        if (auto s = storage->log().write_checkpoint(entries); !s)
            log::warning("storage: vhost '{}': no checkpoint ({}); the next start reads the segments", vh->name(),
                         s.error().message);
        else
            log::info("storage: vhost '{}': checkpoint of {} messages written", vh->name(), entries.size());
    }
    durability_->stop();
}

void Broker::flush_storage() {
    if (durability_) durability_->flush();
}

void Broker::end_turn_storage() {
    if (!durability_) return;
    if (durability_->definitions_due()) {
        // Before this turn's ticket: the snapshot, synced, holds the records that ticket covers.
        std::string snapshot = definitions::snapshot(collect(vhosts_, auth_, global_parameters_, next_vhost_id_, next_stored_queue_id_));
        durability_->compact_definitions(std::as_bytes(std::span(snapshot.data(), snapshot.size())));
    }
    durability_->end_turn();
    // Written now: what exceeds the queues' memory windows can leave memory.
    const bool everything = std::exchange(page_out_everything_, false);
    for (auto& [name, vh] : vhosts_) {
        VHostStorage* s = vh->storage();
        if (!s) continue;
        if (everything) {
            for (auto& [qname, q] : vh->queues()) q->page_out(true);
            for (auto& [xname, x] : vh->exchanges())
                if (x->delayed) x->delayed->page_out(true);
        }
        s->page_out();
    }
}

}  // namespace warren::broker
