// See vhost.hpp. Routing follows rabbit_exchange:route/2: a work list of exchanges, each
// visited once per publish; an exchange whose own bindings match nothing passes the message
// to its alternate exchange; every queue is reached at most once.
#include "broker/vhost.hpp"

#include <algorithm>
#include <cstdint>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/delay_header.hpp"
#include "broker/log.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

using exchanges::Destination;
using exchanges::DestinationKind;
using exchanges::ExchangeType;

VHost::VHost(Broker& broker, std::string name) : broker_(broker), name_(std::move(name)) {
    declare_builtin_exchanges();
}

void VHost::set_storage(std::unique_ptr<VHostStorage> storage) { storage_ = std::move(storage); }

VHost::~VHost() {
    // Queues first: their consumers belong to channels that may outlive this vhost in tests.
    for (auto& [name, q] : queues_) {
        for (Consumer* c : std::vector<Consumer*>(q->consumers())) q->remove_consumer(*c);
        q->shut_down();
    }
    for (auto& [name, x] : exchanges_)
        if (x->delayed) x->delayed->shut_down();
}

void VHost::declare_builtin_exchanges() {
    default_exchange_ = &add_exchange("", ExchangeType::Direct, true, false, false, {});
    add_exchange("amq.direct", ExchangeType::Direct, true, false, false, {});
    add_exchange("amq.fanout", ExchangeType::Fanout, true, false, false, {});
    add_exchange("amq.topic", ExchangeType::Topic, true, false, false, {});
    add_exchange("amq.headers", ExchangeType::Headers, true, false, false, {});
    add_exchange("amq.match", ExchangeType::Headers, true, false, false, {});
}

// ---- exchanges ------------------------------------------------------------------------------

ExchangeEntry* VHost::find_exchange(std::string_view name) {
    auto it = exchanges_.find(name);
    return it == exchanges_.end() ? nullptr : it->second.get();
}

ExchangeEntry* VHost::exchange_by_id(std::uint64_t id) {
    auto it = exchanges_by_id_.find(id);
    return it == exchanges_by_id_.end() ? nullptr : it->second;
}

ExchangeEntry& VHost::add_exchange(std::string name, ExchangeType type, bool durable, bool auto_delete,
                                   bool internal, protocol::FieldTable arguments, DelayedMode delayed,
                                   std::uint32_t stored_id) {
    auto x = std::make_unique<ExchangeEntry>();
    x->id = broker_.next_id();
    x->name = std::move(name);
    x->type = type;
    x->durable = durable;
    x->auto_delete = auto_delete;
    x->internal = internal;
    if (const auto* ae = arguments.find(args::alternate_exchange); ae && ae->as_string())
        x->alternate_exchange = *ae->as_string();
    x->arguments = std::move(arguments);
    x->router = exchanges::make_exchange(type, x->arguments);
    x->plugin_delayed_type = delayed == DelayedMode::PluginType;
    x->declared_delayed = delayed != DelayedMode::None;
    x->delaying = x->declared_delayed;
    // A stored id without a declared delay: a policy made the exchange delayed before a restart,
    // and its held messages come back under that id.
    if (x->declared_delayed || stored_id) make_delayed(*x, stored_id);
    ExchangeEntry& ref = *x;
    exchanges_by_id_[x->id] = x.get();
    exchanges_[x->name] = std::move(x);
    apply_policies(ref);
    record_exchange(ref);
    return ref;
}

void VHost::make_delayed(ExchangeEntry& x, std::uint32_t stored_id) {
    x.delayed = std::make_unique<DelayedExchange>(*this, x);
    // Its held messages are stored as a durable queue's are, under an id from the same
    // sequence (the message log knows only ids), recorded with the exchange.
    if (x.durable && (stored_id || durability_))
        x.delayed->set_stored_id(stored_id ? stored_id : broker_.allocate_stored_queue_id());
}

void VHost::delete_exchange(ExchangeEntry& exchange) {
    Destination self = exchange.as_destination();
    // Bindings from this exchange: the destinations forget them.
    std::vector<exchanges::Binding> outgoing;
    exchange.router->for_each_binding([&](const exchanges::Binding& b) { outgoing.push_back(b); });
    for (const auto& b : outgoing) {
        if (b.destination.kind == DestinationKind::Queue) {
            if (Queue* q = queue_by_id(b.destination.id)) {
                auto& from = q->bound_from();
                if (auto it = from.find(exchange.id); it != from.end() && --it->second == 0) from.erase(it);
            }
        } else if (ExchangeEntry* d = exchange_by_id(b.destination.id)) {
            if (d->bound_as_destination) --d->bound_as_destination;
        }
    }
    // Bindings to this exchange, from any other exchange.
    std::vector<std::uint64_t> sources;
    for (auto& [name, x] : exchanges_)
        if (x.get() != &exchange && x->router->has_binding_to(self)) sources.push_back(x->id);
    record_exchange_deleted(exchange);
    if (exchange.delayed) {
        // Its delayed messages go with it (the plugin's would find no bindings left to route by).
        exchange.delayed->shut_down();
        exchange.delayed->forget_stored();
    }
    ++topology_version_;
    exchanges_by_id_.erase(exchange.id);
    std::string name = exchange.name;
    exchanges_.erase(name);  // `exchange` is gone from here on
    remove_destination_everywhere(self, sources);
}

void VHost::delete_if_auto_delete(ExchangeEntry& exchange) {
    if (exchange.auto_delete && exchange.router->binding_count() == 0) delete_exchange(exchange);
}

void VHost::remove_destination_everywhere(const Destination& destination, const std::vector<std::uint64_t>& sources) {
    for (std::uint64_t id : sources) {
        ExchangeEntry* x = exchange_by_id(id);
        if (!x) continue;
        x->router->remove_destination(destination);
        delete_if_auto_delete(*x);  // may cascade
    }
}

// ---- queues ---------------------------------------------------------------------------------

Queue* VHost::find_queue(std::string_view name) {
    auto it = queues_.find(name);
    return it == queues_.end() ? nullptr : it->second.get();
}

Queue* VHost::queue_by_id(QueueId id) {
    auto it = queues_by_id_.find(id);
    return it == queues_by_id_.end() ? nullptr : it->second;
}

Queue& VHost::add_queue(std::string name, QueueFlags flags, QueueArgs args, protocol::FieldTable raw_args,
                        std::uint64_t owner_connection, std::uint32_t stored_id) {
    ++broker_.churn().queues_created;
    QueueId id = broker_.next_id();
    auto q = std::make_unique<Queue>(*this, id, std::move(name), flags, std::move(args), std::move(raw_args),
                                     owner_connection);
    Queue& ref = *q;
    queues_by_id_[id] = q.get();
    queues_[ref.name()] = std::move(q);
    apply_policies(ref);
    // As in RabbitMQ, a durable queue survives a restart unless it is exclusive.
    if (flags.durable && !flags.exclusive && (stored_id || durability_)) {
        ref.set_stored_id(stored_id ? stored_id : broker_.allocate_stored_queue_id());
        record_queue(ref);
    }
    // Every queue is bound to the default exchange by its name; that binding is implicit.
    return ref;
}

std::size_t VHost::delete_queue(Queue& queue) {
    ++broker_.churn().queues_deleted;
    std::size_t count = queue.message_count();
    // Consumers go first, each with basic.cancel if its client asked for it.
    for (Consumer* c : std::vector<Consumer*>(queue.consumers())) c->channel->on_queue_deleted(*c);
    queue.shut_down();
    queue.forget_stored();
    record_queue_deleted(queue);
    std::vector<std::uint64_t> sources;
    for (auto& [xid, n] : queue.bound_from()) sources.push_back(xid);
    Destination self = queue.as_destination();
    ++topology_version_;
    queues_by_id_.erase(queue.id());
    std::string name = queue.name();
    queues_.erase(name);  // `queue` is gone from here on
    remove_destination_everywhere(self, sources);
    return count;
}

// ---- bindings -------------------------------------------------------------------------------

bool VHost::bind(ExchangeEntry& source, const Destination& destination, std::string_view routing_key,
                 const protocol::FieldTable& arguments) {
    if (!source.router->bind(destination, routing_key, arguments)) return false;
    record_binding(source, destination, routing_key, arguments, false);
    if (destination.kind == DestinationKind::Queue) {
        if (Queue* q = queue_by_id(destination.id)) ++q->bound_from()[source.id];
    } else if (ExchangeEntry* x = exchange_by_id(destination.id)) {
        ++x->bound_as_destination;
    }
    return true;
}

bool VHost::unbind(ExchangeEntry& source, const Destination& destination, std::string_view routing_key,
                   const protocol::FieldTable& arguments) {
    if (!source.router->unbind(destination, routing_key, arguments)) return false;
    record_binding(source, destination, routing_key, arguments, true);
    if (destination.kind == DestinationKind::Queue) {
        if (Queue* q = queue_by_id(destination.id)) {
            auto& from = q->bound_from();
            if (auto it = from.find(source.id); it != from.end() && --it->second == 0) from.erase(it);
        }
    } else if (ExchangeEntry* x = exchange_by_id(destination.id)) {
        if (x->bound_as_destination) --x->bound_as_destination;
    }
    delete_if_auto_delete(source);
    return true;
}

// ---- routing --------------------------------------------------------------------------------

void VHost::route(ExchangeEntry& exchange, const exchanges::RoutingInput& input, std::vector<Queue*>& out) {
    ++route_epoch_;
    route_keys(exchange, input, out);
}

void VHost::route_keys(ExchangeEntry& exchange, const exchanges::RoutingInput& input, std::vector<Queue*>& out,
                       std::vector<ExchangeEntry*>* held, const ExchangeEntry* no_hold) {
    const std::uint64_t epoch = route_epoch_;
    // Exchanges are visited once per routing key; queues are reached once per publish.
    const std::uint64_t visit = ++exchange_epoch_;
    auto add_queue = [&](Queue* q) {
        if (q && q->route_mark != epoch) {
            q->route_mark = epoch;
            out.push_back(q);
        }
    };
    if (&exchange == default_exchange_) {
        if (default_route_version_ != topology_version_ || default_route_key_ != input.routing_key ||
            !default_route_queue_) {
            default_route_queue_ = find_queue(input.routing_key);
            default_route_key_.assign(input.routing_key);
            default_route_version_ = topology_version_;
        }
        add_queue(default_route_queue_);
        return;
    }
    auto& work = scratch_work_;
    auto& dests = scratch_destinations_;
    work.clear();
    work.push_back(&exchange);
    exchange.route_mark = visit;
    while (!work.empty()) {
        ExchangeEntry* x = work.back();
        work.pop_back();
        // A delayed exchange holds the message (wherever routing reaches it, as the plugin's
        // route/3 runs for every exchange of the graph); it goes on when its delay ends. Held is
        // not unroutable: the alternate exchange is not asked.
        if (held && x->delaying && x != no_hold && read_delay_header(input.headers).delays()) {
            if (std::find(held->begin(), held->end(), x) == held->end()) held->push_back(x);
            continue;
        }
        dests.clear();
        x->router->route(input, dests);
        if (dests.empty() && x->alternate_exchange) {
            ExchangeEntry* ae = find_exchange(*x->alternate_exchange);
            if (ae && ae->route_mark != visit) {
                ae->route_mark = visit;
                work.push_back(ae);
            }
        }
        for (const Destination& d : dests) {
            if (d.kind == DestinationKind::Queue) {
                add_queue(queue_by_id(d.id));
            } else if (ExchangeEntry* next = exchange_by_id(d.id); next && next->route_mark != visit) {
                next->route_mark = visit;
                work.push_back(next);
            }
        }
    }
}

// Calls f(key) for the message's routing key, then for each key of its CC and BCC headers
// (RabbitMQ's sender-selected distribution).
template <class F>
static void for_each_routing_key(const Message& message, protocol::TableView headers, F&& f) {
    f(message.routing_key());
    if (!message.has_headers()) return;
    for (std::string_view header : {"CC", "BCC"}) {
        auto value = headers.find(header);
        if (!value) continue;
        value->as_array().for_each([&](protocol::FieldRef key) {
            if (auto k = key.as_string()) f(*k);
        });
    }
}

MessageRef VHost::route_message(ExchangeEntry& exchange, const MessageRef& message, std::vector<Queue*>& targets,
                                std::vector<ExchangeEntry*>* held, const ExchangeEntry* no_hold) {
    protocol::TableView headers;
    if (message->has_headers()) headers = message->decoded_properties().headers;
    ++route_epoch_;
    for_each_routing_key(*message, headers, [&](std::string_view key) {
        route_keys(exchange, {key, headers, message->properties()}, targets, held, no_hold);
    });
    // BCC keys route the message, but RabbitMQ removes the header before queues see it.
    if (message->has_headers() && headers.find("BCC")) return without_header(*message, "BCC");
    return message;
}

PublishResult VHost::enqueue_routed(const MessageRef& message, const std::vector<Queue*>& targets) {
    PublishResult result;
    result.routed = !targets.empty();
    if (storage_) {
        // Stored once, for every durable queue that takes it, before any of them hands it out.
        stored_for_.clear();
        for (Queue* q : targets)
            if (q->stored_id() && (message->is_persistent() || q->args().type != QueueType::Classic) &&
                q->accepts(*message))
                stored_for_.push_back({q->stored_id(), q->next_seq()});
        if (!stored_for_.empty()) {
            storage_->append(*message, stored_for_);
            result.stored = true;
        }
    }
    for (Queue* q : targets) {
        EnqueueOutcome outcome = q->enqueue(message);
        if (outcome != EnqueueOutcome::Enqueued) result.rejected = true;
    }
    return result;
}

PublishResult VHost::publish(ExchangeEntry& exchange, const MessageRef& message) {
    // Taking the scratch vectors keeps them valid if publishing ever nests.
    std::vector<Queue*> targets;
    targets.swap(scratch_queues_);
    targets.clear();
    std::vector<ExchangeEntry*> held;
    held.swap(scratch_held_);
    held.clear();
    MessageRef stored = route_message(exchange, message, targets, &held);
    PublishResult result = enqueue_routed(stored, targets);
    if (!held.empty() && hold_routed(stored, held)) result.stored = true;
    exchange.stats.add(Stat::publish_in);
    if (result.routed) exchange.stats.add(Stat::publish_out);
    targets.clear();
    held.clear();
    if (scratch_queues_.capacity() < targets.capacity()) scratch_queues_.swap(targets);
    if (scratch_held_.capacity() < held.capacity()) scratch_held_.swap(held);
    return result;
}

namespace {

// The message with x-delay set to -delay, as the plugin swaps it (rabbit_delayed_message_utils:
// swap_delay_header/1): the header stays for consumers to see, and no delayed exchange further
// on delays it again. Headers sorted, as RabbitMQ's set_table_value leaves them.
MessageRef with_swapped_delay(const Message& m, std::int64_t delay_ms) {
    protocol::BasicProperties props = m.decoded_properties();
    protocol::FieldTable headers = props.headers.to_table();
    if (delay_ms <= INT32_MAX)
        headers.set(std::string(x_delay_header), static_cast<std::int32_t>(-delay_ms));
    else
        headers.set(std::string(x_delay_header), std::int64_t{-delay_ms});
    std::stable_sort(headers.entries.begin(), headers.entries.end(),
                     [](const protocol::FieldEntry& a, const protocol::FieldEntry& b) { return a.key < b.key; });
    protocol::ByteBuffer bytes = protocol::encode_table_body(headers);
    props.headers = protocol::TableView::trusted(bytes.span());
    props.set_flag(protocol::property_flag::headers);
    return copy_with_properties(m, props, m.exchange(), m.routing_key());
}

}  // namespace

bool VHost::hold_routed(const MessageRef& message, const std::vector<ExchangeEntry*>& held) {
    if (held.empty() || !message->has_headers()) return false;
    const DelayHeader delay = read_delay_header(message->decoded_properties().headers);
    if (!delay.delays()) return false;
    MessageRef swapped = with_swapped_delay(*message, *delay.ms);
    if (!swapped) return false;
    // Written once for every holder that stores it, before any of them can release it.
    std::vector<std::uint64_t> seqs;
    seqs.reserve(held.size());
    stored_for_.clear();
    for (ExchangeEntry* x : held) {
        seqs.push_back(x->delayed->take_seq());
        if (storage_ && x->delayed->stores(*swapped)) stored_for_.push_back({x->delayed->stored_id(), seqs.back()});
    }
    const bool stored = !stored_for_.empty();
    if (stored) storage_->append_delayed(*swapped, stored_for_, static_cast<std::uint32_t>(*delay.ms));
    const TimePoint at = broker_.now() + std::chrono::milliseconds(*delay.ms);
    for (std::size_t i = 0; i < held.size(); ++i) held[i]->delayed->hold(swapped, seqs[i], at);
    return stored;
}

void VHost::release_delayed(ExchangeEntry& exchange, MessageRef message) {
    // Another delayed exchange may still hold this very message (a fan-out to two of them):
    // route a copy, whose store location the queues may set.
    if (message->ref_count() > 1)
        message = copy_with_properties(*message, message->decoded_properties(), message->exchange(),
                                       message->routing_key());
    if (!message) return;
    // The exchange has settled its record; the queues store their own, as for a publish.
    message->set_store_location(0);
    std::vector<Queue*> targets;
    std::vector<ExchangeEntry*> held;
    MessageRef routed = route_message(exchange, message, targets, &held, &exchange);
    enqueue_routed(routed, targets);
    if (!held.empty()) hold_routed(routed, held);
}

MessageRef VHost::route_names(ExchangeEntry& exchange, const MessageRef& message, std::vector<std::string>& names,
                              std::vector<std::string>& held_names) {
    if (&exchange == default_exchange_) {
        // rabbit_exchange:route/2 for the default exchange names the queues by the keys alone.
        protocol::TableView headers;
        if (message->has_headers()) headers = message->decoded_properties().headers;
        for_each_routing_key(*message, headers, [&](std::string_view key) {
            if (std::find(names.begin(), names.end(), key) == names.end()) names.emplace_back(key);
        });
        if (message->has_headers() && headers.find("BCC")) return without_header(*message, "BCC");
        return message;
    }
    std::vector<Queue*> targets;
    std::vector<ExchangeEntry*> held;
    MessageRef stored = route_message(exchange, message, targets, &held);
    for (Queue* q : targets) names.push_back(q->name());
    for (ExchangeEntry* x : held) held_names.push_back(x->name);
    return stored;
}

}  // namespace warren::broker
