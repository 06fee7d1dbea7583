// The definitions records a vhost writes as its durable entities change (see definitions.hpp).
// What RabbitMQ keeps across a restart is kept: durable exchanges, durable queues that are not
// exclusive, and bindings whose source and destination are both kept. The built-in exchanges
// are created with every vhost and are not recorded; bindings from them are.
#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using exchanges::Destination;
using exchanges::DestinationKind;

namespace {
bool is_builtin(const ExchangeEntry& x) { return x.name.empty() || x.name.starts_with("amq."); }
}  // namespace

bool VHost::is_stored(const ExchangeEntry& x) const { return x.durable && !x.name.empty(); }

void VHost::record_exchange(const ExchangeEntry& x) {
    if (!durability_ || !x.durable || is_builtin(x)) return;
    durability_->append_definition(
        definitions::exchange_record({id_, x.name, std::string(x.type_name()), x.auto_delete, x.internal, x.arguments,
                                      x.delayed ? x.delayed->stored_id() : 0}));
}

void VHost::record_exchange_deleted(const ExchangeEntry& x) {
    if (!durability_ || !x.durable || is_builtin(x)) return;
    durability_->append_definition(definitions::exchange_delete_record(id_, x.name));
}

void VHost::record_queue(const Queue& q) {
    if (!durability_ || !q.stored_id()) return;
    durability_->append_definition(
        definitions::queue_record({id_, q.name(), q.stored_id(), q.flags().auto_delete, q.raw_args()}));
}

void VHost::record_queue_deleted(const Queue& q) {
    if (!durability_ || !q.stored_id()) return;
    durability_->append_definition(definitions::queue_delete_record(id_, q.name(), q.stored_id()));
}

void VHost::record_binding(const ExchangeEntry& source, const Destination& destination, std::string_view routing_key,
                           const protocol::FieldTable& arguments, bool deleted) {
    if (!durability_ || !is_stored(source)) return;
    definitions::StoredBinding b{id_, source.name, {}, destination.kind == DestinationKind::Exchange,
                                 std::string(routing_key), arguments};
    if (destination.kind == DestinationKind::Queue) {
        const Queue* q = queue_by_id(destination.id);
        if (!q || !q->stored_id()) return;
        b.destination = q->name();
    } else {
        const ExchangeEntry* x = exchange_by_id(destination.id);
        if (!x || !is_stored(*x)) return;
        b.destination = x->name;
    }
    durability_->append_definition(deleted ? definitions::binding_delete_record(b) : definitions::binding_record(b));
}

}  // namespace warren::broker
