// Dead-lettering as RabbitMQ does it (rabbit_dead_letter.erl, 3.10, plus the x-last-death-*
// headers of 3.13): the message is republished to the queue's dead-letter exchange with its
// x-death history updated and its expiration removed. A message is dropped for a queue only
// when it would cycle back to it with no rejection anywhere in the cycle. Queues put dead letters
// on the broker's work list (dead_letter.hpp); this runs when the list is drained.
#include "broker/dead_letter.hpp"

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/log.hpp"
#include "broker/rabbit_text.hpp"
#include "broker/vhost.hpp"
#include "protocol/basic_properties.hpp"

namespace warren::broker {

using protocol::FieldArray;
using protocol::FieldTable;
using protocol::FieldValue;

namespace {

const std::string* string_field(const FieldTable& t, std::string_view key) {
    const FieldValue* v = t.find(key);
    return v ? v->as_string() : nullptr;
}

void sort_table(FieldTable& t) {
    std::stable_sort(t.entries.begin(), t.entries.end(),
                     [](const protocol::FieldEntry& a, const protocol::FieldEntry& b) { return a.key < b.key; });
}

// The x-death entries, most recent first (empty if absent or not an array).
FieldArray* x_death_array(FieldTable& headers) {
    FieldValue* v = headers.find("x-death");
    if (!v) return nullptr;
    return std::get_if<FieldArray>(&v->v);
}

// RabbitMQ's is_cycle/2: the queue appears in the history, and no event from the most recent
// one up to and including that queue's was a rejection.
bool is_cycle(std::string_view queue, const FieldArray& deaths) {
    std::size_t i = 0;
    for (; i < deaths.items.size(); ++i) {
        const FieldTable* d = deaths.items[i].get_if<FieldTable>();
        const std::string* q = d ? string_field(*d, "queue") : nullptr;
        if (q && *q == queue) break;
    }
    if (i == deaths.items.size()) return false;
    for (std::size_t j = 0; j <= i; ++j) {
        const FieldTable* d = deaths.items[j].get_if<FieldTable>();
        if (!d) return false;  // something a client put there: not "fully automatic"
        const std::string* r = string_field(*d, "reason");
        if (r && *r == "rejected") return false;
    }
    return true;
}

}  // namespace

void VHost::route_dead_letter(DeadLetter& d) {
    const std::string& queue_name = d.queue;
    const DeadLetterReason reason = d.reason;
    ExchangeEntry* dlx = find_exchange(d.exchange);
    if (!dlx) {
        ++dead_letters_dropped_no_exchange;
        log::debug("dead letter from {} dropped: {} does not exist",
                   log::escaped(resource_name("queue", queue_name, name_)), log::escaped(d.exchange));
        return;
    }
    const Message& m = *d.message.message;
    protocol::BasicProperties props = m.decoded_properties();
    FieldTable headers = props.has(protocol::property_flag::headers) ? props.headers.to_table() : FieldTable{};

    // The routing keys of this death: the published key, then CC and BCC keys.
    FieldArray routing_keys;
    routing_keys.items.emplace_back(std::string(m.routing_key()));
    for (std::string_view h : {"CC", "BCC"}) {
        if (const FieldValue* v = headers.find(h))
            if (const auto* arr = std::get_if<FieldArray>(&v->v))
                for (const auto& k : arr->items)
                    if (k.as_string()) routing_keys.items.push_back(k);
    }

    const std::string reason_text(dead_letter_reason_name(reason));
    FieldTable info;
    info.set("reason", reason_text);
    info.set("queue", queue_name);
    info.set("time", protocol::Timestamp{static_cast<std::uint64_t>(broker_.clock().unix_seconds())});
    info.set("exchange", std::string(m.exchange()));
    info.set("routing-keys", std::move(routing_keys));
    if (props.has(protocol::property_flag::expiration)) info.set("original-expiration", std::string(props.expiration));

    FieldArray* deaths = x_death_array(headers);
    if (!deaths) {
        // The first death also gets its own top-level headers (rabbitmq-server#1332).
        headers.set("x-first-death-reason", reason_text);
        headers.set("x-first-death-queue", queue_name);
        headers.set("x-first-death-exchange", std::string(m.exchange()));
        FieldTable first;
        first.set("count", std::int64_t{1});
        for (auto& e : info.entries) first.entries.push_back(std::move(e));
        FieldArray fresh;
        fresh.items.emplace_back(std::move(first));
        headers.set("x-death", std::move(fresh));
    } else {
        // One entry per (queue, reason): increment its count and move it to the front.
        auto matches = [&](const FieldValue& v) {
            const FieldTable* d = v.get_if<FieldTable>();
            if (!d) return false;
            const std::string* q = string_field(*d, "queue");
            const std::string* r = string_field(*d, "reason");
            return q && r && *q == queue_name && *r == reason_text;
        };
        auto it = std::find_if(deaths->items.begin(), deaths->items.end(), matches);
        FieldTable entry;
        if (it != deaths->items.end()) {
            entry = *it->get_if<FieldTable>();
            deaths->items.erase(it);
            FieldValue* count = entry.find("count");
            std::int64_t n = count && count->as_integer() ? *count->as_integer() : 0;
            entry.set("count", std::int64_t{n + 1});
        } else {
            entry.set("count", std::int64_t{1});
            for (auto& e : info.entries) entry.entries.push_back(std::move(e));
        }
        sort_table(entry);
        deaths->items.insert(deaths->items.begin(), FieldValue(std::move(entry)));
    }
    // RabbitMQ 3.13 added the most recent death as top-level headers too (DECISIONS.md).
    headers.set("x-last-death-reason", reason_text);
    headers.set("x-last-death-queue", queue_name);
    headers.set("x-last-death-exchange", std::string(m.exchange()));
    if (d.routing_key) headers.erase("CC");
    sort_table(headers);  // RabbitMQ's set_table_value sorts the table

    protocol::ByteBuffer header_bytes = protocol::encode_table_body(headers);
    props.headers = protocol::TableView::trusted(header_bytes.span());
    props.set_flag(protocol::property_flag::headers);
    props.set_flag(protocol::property_flag::expiration, false);
    std::string_view routing_key = d.routing_key ? std::string_view(*d.routing_key) : m.routing_key();
    MessageRef dead = copy_with_properties(m, props, dlx->name, routing_key);
    if (!dead) return;

    // Route, then drop the queues this message would cycle back to.
    std::vector<Queue*> targets;
    std::vector<ExchangeEntry*> held;  // a delayed exchange on the way holds it, as a publish
    protocol::TableView new_headers = dead->decoded_properties().headers;
    ++route_epoch_;
    route_keys(*dlx, {dead->routing_key(), new_headers, dead->properties()}, targets, &held);
    if (!d.routing_key) {
        for (std::string_view h : {"CC", "BCC"}) {
            if (auto v = new_headers.find(h))
                v->as_array().for_each([&](protocol::FieldRef k) {
                    if (auto key = k.as_string())
                        route_keys(*dlx, {*key, new_headers, dead->properties()}, targets, &held);
                });
        }
    }
    FieldTable final_headers = new_headers.to_table();
    const FieldArray* history = x_death_array(final_headers);
    // The queues it would cycle back to are left out; the rest take it as a publish would
    // (stored once for the durable ones).
    std::erase_if(targets, [&](Queue* target) {
        if (reason == DeadLetterReason::Rejected || !history || !is_cycle(target->name(), *history)) return false;
        ++dead_letters_dropped_cycle;
        // Clients can make these at will: limited per source queue.
        log::limited(log::Level::Warning, queue_name,
                     "dead-letter cycle: message from {} dropped instead of going back to {}",
                     log::escaped(resource_name("queue", queue_name, name_)), log::escaped(resource_name_for(*target)));
        return true;
    });
    for (Queue* target : targets) target->note_dead_letter_received();
    enqueue_routed(dead, targets);
    hold_routed(dead, held);
}

std::string VHost::resource_name_for(const Queue& queue) const {
    return "queue '" + queue.name() + "' in vhost '" + name_ + "'";
}

}  // namespace warren::broker
