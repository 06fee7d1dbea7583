// See workbench_redrive.hpp. Selected messages are gathered first (a walk only reads), then
// acted on one by one: route a copy, check that every queue it reaches takes it, enqueue it
// there (stored once for the durable ones, as a publish), and only then take the original out.
#include "broker/workbench_redrive.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "broker/broker.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/rabbit_text.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker::workbench {

namespace {

void fail(ActionResult& r, const MessageHandle& h, std::string reason) {
    ++r.failed;
    if (r.failures.size() < ActionResult::max_failures) r.failures.push_back({h, std::move(reason)});
}

// The seqs the request selects, from this call's part of the walk.
std::vector<std::uint64_t> select(const Queue& q, const ActionRequest& req, ActionResult& r) {
    std::vector<std::uint64_t> seqs;
    r.seq_limit = req.seq_limit ? req.seq_limit : q.next_seq();
    if (!req.selection.handles.empty()) {
        const std::uint64_t key = queue_key(q);
        for (const MessageHandle& h : req.selection.handles) {
            if (h.queue_key == key && q.ready().find(h.seq))
                seqs.push_back(h.seq);
            else
                fail(r, h, "not a ready message of this queue (gone, or delivered and not yet acknowledged)");
        }
        r.next = ReadyMessages::Cursor{0, 0, true};
        return seqs;
    }
    std::size_t paged_reads = 0;
    const std::size_t limit = std::clamp(req.max_messages, std::size_t{1}, std::size_t{100'000});
    r.next = q.ready().walk(req.from, 16 * limit + 1024, [&](const ReadyMessages::Entry& e) {
        if (e.seq >= r.seq_limit) return true;
        if (seqs.size() >= limit) return false;
        if (req.selection.filter.empty()) {
            seqs.push_back(e.seq);
            return true;
        }
        if (!e.message && paged_reads >= req.max_paged_reads) return false;
        if (!e.message) ++paged_reads;
        MessageRef m = q.peek(e);
        if (m && req.selection.filter.matches(*m)) seqs.push_back(e.seq);
        return true;
    });
    return seqs;
}

// The exchange and routing key a message goes to, or why it cannot.
std::optional<Origin> destination(const Message& m, const RedriveTarget& t, std::string& why) {
    std::optional<Origin> origin = death_origin(m);
    if (t.exchange) {
        Origin o{*t.exchange,
                 t.routing_key ? *t.routing_key : (origin ? origin->routing_key : std::string(m.routing_key()))};
        return o;
    }
    if (!origin) why = "no x-death header: it was not dead-lettered, so it has no origin to go back to";
    return origin;
}

// Settles the originals a redrive took out once their copies are stored. The queue may be
// gone by then (its pairs are then forgotten, as its deletion does for the rest), or its vhost.
void settle_when_stored(Queue& q, std::vector<std::uint64_t> locations, std::uint64_t ticket) {
    Broker& broker = q.vhost().broker();
    broker.durability()->when_stored(
        ticket, [&broker, vhost = q.vhost().name(), vhost_id = q.vhost().id(), queue = q.id(), name = q.name(),
                 stored_id = q.stored_id(), locations = std::move(locations)](bool ok) {
            VHost* vh = broker.find_vhost(vhost);
            if (!vh || vh->id() != vhost_id || !vh->storage()) return;
            if (!ok) {
                // The copies are not stored: the originals stay on disk and come back at the next start.
                log::error("storage: {} redriven messages of {} were not stored; their originals stay stored",
                           locations.size(), log::escaped(resource_name("queue", name, vhost)));
                return;
            }
            Queue* still = vh->queue_by_id(queue);
            for (std::uint64_t loc : locations) {
                if (still && still->stored_id() == stored_id)
                    vh->storage()->settled(loc, stored_id);
                else
                    vh->storage()->forget(loc);
            }
        });
}

}  // namespace

ActionResult redrive(Queue& q, const ActionRequest& req, const RedriveTarget& target, const MayPublish& may_publish) {
    ActionResult r;
    std::vector<std::uint64_t> seqs = select(q, req, r);
    VHost& vh = q.vhost();
    std::vector<std::uint64_t> deferred;  // stored originals to settle once their copies are stored
    bool copies_stored = false;
    std::vector<Queue*> targets;
    for (std::uint64_t seq : seqs) {
        const MessageHandle h{queue_key(q), seq};
        auto e = q.ready().find(seq);
        if (!e) continue;  // taken meanwhile (a drop-head limit as a copy went in)
        ++r.matched;
        MessageRef m = q.peek(*e);
        if (!m) {
            fail(r, h, "its record cannot be read from the message log");
            continue;
        }
        std::string why;
        std::optional<Origin> to = destination(*m, target, why);
        if (!to) {
            fail(r, h, why);
            continue;
        }
        ExchangeEntry* x = vh.find_exchange(to->exchange);
        if (!x) {
            fail(r, h, fmt::format("no exchange '{}' in vhost '{}'", to->exchange, vh.name()));
            continue;
        }
        if (x->internal) {
            // As basic.publish refuses it: only exchanges route into an internal exchange.
            fail(r, h, fmt::format("exchange '{}' is internal: clients cannot publish to it", x->name));
            continue;
        }
        if (may_publish && !may_publish(x->name)) {
            fail(r, h, fmt::format("access refused: no write permission on exchange '{}'", x->name));
            continue;
        }
        MessageRef copy = Message::create(x->name, to->routing_key, m->properties(), m->body_size());
        if (!copy) {
            fail(r, h, "its properties cannot be copied");
            continue;
        }
        if (m->body_size()) std::memcpy(copy->body_data(), m->body().data(), m->body_size());
        targets.clear();
        MessageRef routed = vh.route_message(*x, copy, targets);
        if (targets.empty()) {
            fail(r, h, fmt::format("unroutable: exchange '{}' routes key '{}' to no queue", x->name, to->routing_key));
            continue;
        }
        // A queue that would refuse it (x-overflow reject-publish) would leave the copy in the
        // others and not in it: nothing moves.
        Queue* full = nullptr;
        for (Queue* t : targets)
            if (!t->accepts(*routed)) full = t;
        if (full) {
            fail(r, h, fmt::format("queue '{}' is full and refuses it (x-overflow)", full->name()));
            continue;
        }
        if (req.dry_run) {
            ++r.done;
            continue;
        }
        PublishResult published = vh.enqueue_routed(routed, targets);
        copies_stored = copies_stored || published.stored;
        ++r.done;
        std::optional<QueuedMessage> original = q.take_seq(seq);
        if (!original) continue;  // a length limit of this very queue dropped it for the copy
        if (!q.is_stored(*original->message)) continue;
        if (published.stored && vh.broker().durability())
            deferred.push_back(original->message->store_location());
        else
            q.settle_taken(*original->message);  // moved where it is not stored: as a consumer's ack
    }
    if (Durability* d = vh.broker().durability(); d && copies_stored) {
        r.ticket = d->ticket();
        if (!deferred.empty()) settle_when_stored(q, std::move(deferred), r.ticket);
    }
    // Limits the copies met (drop-head) may have dead-lettered messages.
    vh.broker().drain_dead_letters();
    return r;
}

ActionResult delete_messages(Queue& q, const ActionRequest& req) {
    ActionResult r;
    std::vector<std::uint64_t> seqs = select(q, req, r);
    for (std::uint64_t seq : seqs) {
        if (!q.ready().find(seq)) continue;
        ++r.matched;
        ++r.done;
        if (req.dry_run) continue;
        std::optional<QueuedMessage> m = q.take_seq(seq);
        if (m) q.settle_taken(*m->message);
    }
    return r;
}

}  // namespace warren::broker::workbench
