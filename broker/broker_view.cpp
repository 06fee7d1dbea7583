// See broker_view.hpp.
#include "broker/broker_view.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "broker/stream.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

namespace {
// A queued message's bookkeeping beyond its body, as the memory alarm estimates it.
constexpr std::uint64_t per_message_bytes = 40;
constexpr std::uint64_t queue_base_bytes = 1024;

std::vector<std::string> sorted_names(const auto& map) {
    std::vector<std::string> out;
    out.reserve(map.size());
    for (const auto& [name, v] : map) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

BindingSnapshot binding_of(const VHost& vh, const ExchangeEntry& source, const exchanges::Binding& b,
                           const std::string& destination) {
    return BindingSnapshot{vh.name(),     source.name,
                           destination,   b.destination.kind == exchanges::DestinationKind::Exchange,
                           b.routing_key, b.arguments};
}
}  // namespace

StatsSnapshot StatsSnapshot::of(const Stats& s) {
    StatsSnapshot out;
    for (std::size_t i = 0; i < stat_count; ++i) {
        out.value[i] = s.value(static_cast<Stat>(i));
        out.rate[i] = s.rate(static_cast<Stat>(i));
    }
    return out;
}

void split_address(std::string_view address, std::string& host, std::uint16_t& port) {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) {
        host = address;
        port = 0;
        return;
    }
    std::string_view h = address.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    host = h;
    unsigned p = 0;
    for (char c : address.substr(colon + 1))
        if (c >= '0' && c <= '9') p = p * 10 + static_cast<unsigned>(c - '0');
    port = static_cast<std::uint16_t>(p);
}

std::string connection_name(const Connection& c) {
    return fmt::format("{} -> {}", c.peer().address, c.peer().local_address);
}

// When the sampler last saw a counter change (RabbitMQ's idle_since); now before any sample.
std::int64_t BrokerView::last_change_ms(const Stats& stats) const {
    if (!stats.sampled()) return broker_.clock().unix_ms();
    auto since = std::chrono::duration_cast<std::chrono::milliseconds>(broker_.now() - stats.last_change());
    return broker_.clock().unix_ms() - since.count();
}

std::vector<std::string> BrokerView::vhost_names() const {
    return sorted_names(broker_.vhosts());
}

bool BrokerView::has_vhost(std::string_view name) const {
    return broker_.find_vhost(name) != nullptr;
}

StatsSnapshot BrokerView::vhost_stats(std::string_view name) const {
    VHost* vh = broker_.find_vhost(name);
    return vh ? StatsSnapshot::of(vh->stats()) : StatsSnapshot{};
}

StatsSnapshot BrokerView::totals() const {
    return StatsSnapshot::of(broker_.totals());
}

ObjectTotals BrokerView::object_totals() const {
    ObjectTotals t;
    t.vhosts = broker_.vhosts().size();
    for (const auto& [name, vh] : broker_.vhosts()) {
        t.queues += vh->queues().size();
        t.exchanges += vh->exchanges().size();
    }
    t.connections = broker_.connections().size();
    for (const auto& [id, c] : broker_.connections()) {
        t.channels += c->channel_count();
        for (const auto& [n, ch] : c->channels()) t.consumers += ch->consumer_count();
    }
    return t;
}

std::vector<std::string> BrokerView::queue_names(std::string_view vhost) const {
    VHost* vh = broker_.find_vhost(vhost);
    return vh ? sorted_names(vh->queues()) : std::vector<std::string>{};
}

std::optional<QueueSnapshot> BrokerView::queue(std::string_view vhost, std::string_view name) const {
    VHost* vh = broker_.find_vhost(vhost);
    Queue* q = vh ? vh->find_queue(name) : nullptr;
    if (!q) return std::nullopt;
    QueueSnapshot s;
    s.vhost = vh->name();
    s.name = q->name();
    s.durable = q->flags().durable;
    s.auto_delete = q->flags().auto_delete;
    s.exclusive = q->flags().exclusive;
    s.arguments = q->raw_args();
    s.type = std::string(queue_type_name(q->args().type));
    s.messages_ready = q->message_count();
    s.messages_unacknowledged = q->unacked_count();
    // A stream's messages are read, never taken: all of them are ready, as RabbitMQ reports.
    s.message_bytes_ready = q->stream() ? q->stream()->bytes() : q->message_bytes();
    s.messages_ram = q->messages_in_memory();
    s.messages_delayed = q->messages_delayed();
    s.consumers = q->consumer_count();
    s.memory = queue_base_bytes + q->messages_in_memory() * per_message_bytes + q->message_bytes();
    if (q->consumer_count() > 0) {
        // RabbitMQ: the share of time the queue could deliver at once. Here, the share of
        // consumers with credit now, and 1 when nothing waits.
        std::size_t ready = 0;
        for (const Consumer* c : q->consumers())
            if (c->channel && c->channel->can_deliver(*c)) ++ready;
        s.consumer_utilisation =
            q->message_count() == 0 ? 1.0 : static_cast<double>(ready) / static_cast<double>(q->consumer_count());
    }
    for (const Consumer* c : q->consumers())
        if (c->exclusive) s.exclusive_consumer_tag = c->tag;
    if (q->args().single_active_consumer)
        if (const Consumer* active = q->active_consumer()) s.single_active_consumer_tag = active->tag;
    if (q->exclusive_owner())
        if (Connection* owner = broker_.find_connection(q->exclusive_owner()))
            s.owner_connection = connection_name(*owner);
    if (q->policy()) s.policy = q->policy()->name;
    if (q->operator_policy()) s.operator_policy = q->operator_policy()->name;
    s.effective_policy_definition = effective_policy_definition(q->policy().get(), q->operator_policy().get());
    s.stats = StatsSnapshot::of(q->stats());
    s.idle_since_ms = last_change_ms(q->stats());
    return s;
}

std::vector<std::string> BrokerView::exchange_names(std::string_view vhost) const {
    VHost* vh = broker_.find_vhost(vhost);
    return vh ? sorted_names(vh->exchanges()) : std::vector<std::string>{};
}

std::optional<ExchangeSnapshot> BrokerView::exchange(std::string_view vhost, std::string_view name) const {
    VHost* vh = broker_.find_vhost(vhost);
    ExchangeEntry* x = vh ? vh->find_exchange(name) : nullptr;
    if (!x) return std::nullopt;
    // The declared type: x-delayed-message for the plugin's, as RabbitMQ lists it.
    ExchangeSnapshot s;
    s.vhost = vh->name();
    s.name = x->name;
    s.type = std::string(x->type_name());
    s.durable = x->durable;
    s.auto_delete = x->auto_delete;
    s.internal = x->internal;
    s.arguments = x->arguments;
    if (x->policy) s.policy = x->policy->name;
    s.stats = StatsSnapshot::of(x->stats);
    if (x->delayed) s.messages_delayed = x->messages_delayed();
    return s;
}

DelayedTotals BrokerView::delayed_totals() const {
    DelayedTotals t;
    for (const std::string& name : vhost_names()) {
        VHost* vh = broker_.find_vhost(name);
        for (const auto& [qname, q] : vh->queues()) t.queues += q->messages_delayed();
        for (const auto& [xname, x] : vh->exchanges()) t.exchanges += x->messages_delayed();
    }
    return t;
}

std::vector<BindingSnapshot> BrokerView::bindings_from(std::string_view vhost, std::string_view exchange) const {
    std::vector<BindingSnapshot> out;
    VHost* vh = broker_.find_vhost(vhost);
    ExchangeEntry* x = vh ? vh->find_exchange(exchange) : nullptr;
    if (!x) return out;
    if (x == &vh->default_exchange()) {
        for (const std::string& q : sorted_names(vh->queues()))
            out.push_back(BindingSnapshot{vh->name(), "", q, false, q, {}});
        return out;
    }
    x->router->for_each_binding([&](const exchanges::Binding& b) {
        std::string destination;
        if (b.destination.kind == exchanges::DestinationKind::Queue) {
            if (Queue* q = vh->queue_by_id(b.destination.id)) destination = q->name();
        } else if (ExchangeEntry* d = vh->exchange_by_id(b.destination.id)) {
            destination = d->name;
        }
        if (!destination.empty()) out.push_back(binding_of(*vh, *x, b, destination));
    });
    std::sort(out.begin(), out.end(), [](const BindingSnapshot& a, const BindingSnapshot& b) {
        return std::tie(a.destination, a.routing_key) < std::tie(b.destination, b.routing_key);
    });
    return out;
}

std::vector<BindingSnapshot> BrokerView::bindings_to(std::string_view vhost, std::string_view destination,
                                                     bool to_exchange) const {
    std::vector<BindingSnapshot> out;
    VHost* vh = broker_.find_vhost(vhost);
    if (!vh) return out;
    exchanges::Destination target;
    std::vector<ExchangeEntry*> sources;
    if (to_exchange) {
        ExchangeEntry* d = vh->find_exchange(destination);
        if (!d) return out;
        target = d->as_destination();
        if (d->bound_as_destination)
            for (const auto& [name, x] : vh->exchanges()) sources.push_back(x.get());
    } else {
        Queue* q = vh->find_queue(destination);
        if (!q) return out;
        target = q->as_destination();
        out.push_back(BindingSnapshot{vh->name(), "", q->name(), false, q->name(), {}});
        for (const auto& [xid, n] : q->bound_from())
            if (ExchangeEntry* x = vh->exchange_by_id(xid)) sources.push_back(x);
    }
    std::vector<BindingSnapshot> found;
    for (ExchangeEntry* x : sources) {
        if (x == &vh->default_exchange() || !x->router->has_binding_to(target)) continue;
        x->router->for_each_binding([&](const exchanges::Binding& b) {
            if (b.destination == target) found.push_back(binding_of(*vh, *x, b, std::string(destination)));
        });
    }
    std::sort(found.begin(), found.end(), [](const BindingSnapshot& a, const BindingSnapshot& b) {
        return std::tie(a.source, a.routing_key) < std::tie(b.source, b.routing_key);
    });
    out.insert(out.end(), found.begin(), found.end());
    return out;
}

std::vector<std::uint64_t> BrokerView::connection_ids() const {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, c] : broker_.connections())
        if (c->state() != Connection::State::AwaitingHeader) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::optional<ConnectionSnapshot> BrokerView::connection(std::uint64_t id) const {
    Connection* c = broker_.find_connection(id);
    if (!c) return std::nullopt;
    ConnectionSnapshot s;
    s.id = id;
    s.name = connection_name(*c);
    s.user = c->user();
    s.vhost = c->vhost() ? c->vhost()->name() : std::string();
    split_address(c->peer().address, s.peer_host, s.peer_port);
    split_address(c->peer().local_address, s.host, s.port);
    s.client_properties = c->client_properties();
    s.frame_max = c->frame_max();
    s.channel_max = c->channel_max();
    s.heartbeat = c->heartbeat();
    s.channels = c->channel_count();
    s.connected_at_ms = c->connected_at_ms();
    switch (c->state()) {
        case Connection::State::Open:
            s.state = c->is_blocked() ? "blocked" : "running";
            break;
        case Connection::State::Closing:
        case Connection::State::Closed:
            s.state = "closing";
            break;
        default:
            s.state = "starting";
            break;
    }
    s.stats = StatsSnapshot::of(c->stats());
    return s;
}

std::vector<ChannelSnapshot> BrokerView::channels(std::uint64_t connection_id) const {
    std::vector<ChannelSnapshot> out;
    Connection* c = broker_.find_connection(connection_id);
    if (!c) return out;
    const std::string cname = connection_name(*c);
    for (const auto& [number, ch] : c->channels()) {
        ChannelSnapshot s;
        s.connection_id = connection_id;
        s.number = number;
        s.name = fmt::format("{} ({})", cname, number);
        s.connection_name = cname;
        s.user = c->user();
        s.vhost = c->vhost() ? c->vhost()->name() : std::string();
        split_address(c->peer().address, s.peer_host, s.peer_port);
        s.prefetch_count = ch->prefetch_count();
        s.global_prefetch_count = ch->global_prefetch_count();
        s.confirm = ch->is_confirm_mode();
        s.transactional = ch->is_tx_mode();
        s.closing = ch->is_closing();
        s.consumers = ch->consumer_count();
        s.unacked = ch->unacked_count();
        s.unconfirmed = ch->pending_confirm_count();
        s.stats = StatsSnapshot::of(ch->stats());
        s.idle_since_ms = last_change_ms(ch->stats());
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<ConsumerSnapshot> BrokerView::consumers(std::uint64_t connection_id) const {
    std::vector<ConsumerSnapshot> out;
    Connection* c = broker_.find_connection(connection_id);
    if (!c) return out;
    const std::string cname = connection_name(*c);
    for (const auto& [number, ch] : c->channels()) {
        for (const auto& [tag, consumer] : ch->consumers()) {
            if (!consumer->queue) continue;  // the direct reply-to pseudo-consumer
            ConsumerSnapshot s;
            s.vhost = consumer->queue->vhost().name();
            s.queue = consumer->queue->name();
            s.tag = tag;
            s.channel_name = fmt::format("{} ({})", cname, number);
            s.connection_name = cname;
            s.user = c->user();
            split_address(c->peer().address, s.peer_host, s.peer_port);
            s.channel_number = number;
            s.prefetch_count = consumer->prefetch;
            s.ack_required = !consumer->no_ack;
            s.exclusive = consumer->exclusive;
            s.priority = consumer->priority;
            s.has_priority = consumer->priority != 0;
            s.active =
                !consumer->queue->args().single_active_consumer || consumer->queue->active_consumer() == consumer.get();
            out.push_back(std::move(s));
        }
    }
    return out;
}

}  // namespace warren::broker
