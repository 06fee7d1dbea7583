// Broker::export_definitions: the broker's definitions in the JSON RabbitMQ 3.10 exports
// (rabbit_definitions:all_definitions/0), so that RabbitMQ and Warren import each other's files.
// As RabbitMQ does, it leaves out the default exchange, the amq.* exchanges and exclusive queues,
// and lists operator policies and vhost limits as parameters. Unlike rabbitmqctl 3.10, it also
// lists internal exchanges, with "internal": true, as the management API's export does.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "broker/broker.hpp"
#include "broker/field_table_json.hpp"
#include "broker/password.hpp"

namespace warren::broker {

using json = nlohmann::json;

namespace {

json limits_object(std::initializer_list<std::pair<const char*, std::optional<std::int64_t>>> limits) {
    json o = json::object();
    for (const auto& [key, value] : limits)
        if (value) o[key] = *value;
    return o;
}

json policy_object(const std::string& vhost, const Policy& p) {
    return {{"vhost", vhost},         {"name", p.name},
            {"pattern", p.pattern},   {"apply-to", apply_to_name(p.apply_to)},
            {"priority", p.priority}, {"definition", json::parse(p.definition)}};
}

}  // namespace

json Broker::export_definitions() const {
    json doc = json::object();
    doc["rabbit_version"] = config_.server_version;
    doc["rabbitmq_version"] = config_.server_version;
    doc["product_name"] = config_.server_product;
    doc["product_version"] = config_.server_version;

    json& users = doc["users"] = json::array();
    for (const auto& [name, u] : auth_.users())
        users.push_back({{"name", u.name},
                         {"password_hash", encode_password_hash(u.password)},
                         {"hashing_algorithm", hashing_algorithm_name(u.password.algorithm)},
                         {"tags", u.tags},
                         {"limits", limits_object({{"max-connections", u.limits.max_connections},
                                                   {"max-channels", u.limits.max_channels}})}});

    json& vhosts = doc["vhosts"] = json::array();
    json& parameters = doc["parameters"] = json::array();
    json& policies = doc["policies"] = json::array();
    json& queues = doc["queues"] = json::array();
    json& exchanges = doc["exchanges"] = json::array();
    json& bindings = doc["bindings"] = json::array();
    for (const auto& [name, vh] : vhosts_) {
        json limits =
            limits_object({{"max-connections", vh->limits().max_connections}, {"max-queues", vh->limits().max_queues}});
        // 3.10 writes a vhost's limits as a list of pairs, and again as a vhost-limits parameter.
        json pairs = json::array();
        for (const auto& [key, value] : limits.items()) pairs.push_back(json::array({key, value}));
        vhosts.push_back({{"name", name},
                          {"limits", pairs},
                          {"metadata", {{"description", vh->settings().description}, {"tags", vh->settings().tags}}}});
        if (!limits.empty())
            parameters.push_back(
                {{"vhost", name}, {"component", "vhost-limits"}, {"name", "limits"}, {"value", limits}});
        for (const PolicyRef& p : vh->policies(PolicyKind::Operator)) {
            json value = policy_object(name, *p);
            value.erase("vhost");
            value.erase("name");
            parameters.push_back(
                {{"vhost", name}, {"component", "operator_policy"}, {"name", p->name}, {"value", value}});
        }
        for (const PolicyRef& p : vh->policies(PolicyKind::Policy)) policies.push_back(policy_object(name, *p));

        for (const auto& [qname, q] : vh->queues()) {
            if (q->exclusive_owner()) continue;
            queues.push_back({{"vhost", name},
                              {"name", qname},
                              {"type", queue_type_name(q->declared_args().type)},
                              {"durable", q->flags().durable},
                              {"auto_delete", q->flags().auto_delete},
                              {"arguments", field_table_to_json(q->raw_args())}});
        }
        for (const auto& [xname, x] : vh->exchanges()) {
            if (xname.empty() || xname.starts_with("amq.")) continue;
            exchanges.push_back({{"vhost", name},
                                 {"name", xname},
                                 {"type", exchanges::exchange_type_name(x->type)},
                                 {"durable", x->durable},
                                 {"auto_delete", x->auto_delete},
                                 {"internal", x->internal},
                                 {"arguments", field_table_to_json(x->arguments)}});
        }
        for (const auto& [xname, x] : vh->exchanges()) {
            if (xname.empty()) continue;
            x->router->for_each_binding([&](const exchanges::Binding& b) {
                const bool to_exchange = b.destination.kind == exchanges::DestinationKind::Exchange;
                std::string destination;
                if (to_exchange) {
                    const ExchangeEntry* d = vh->exchange_by_id(b.destination.id);
                    if (!d) return;
                    destination = d->name;
                } else {
                    const Queue* q = vh->queue_by_id(b.destination.id);
                    if (!q || q->exclusive_owner()) return;
                    destination = q->name();
                }
                bindings.push_back({{"source", xname},
                                    {"vhost", name},
                                    {"destination", destination},
                                    {"destination_type", to_exchange ? "exchange" : "queue"},
                                    {"routing_key", b.routing_key},
                                    {"arguments", field_table_to_json(b.arguments)}});
            });
        }
    }

    json& permissions = doc["permissions"] = json::array();
    for (const auto& [key, p] : auth_.permissions())
        permissions.push_back({{"user", key.first},
                               {"vhost", key.second},
                               {"configure", p->configure.pattern()},
                               {"write", p->write.pattern()},
                               {"read", p->read.pattern()}});
    json& topic_permissions = doc["topic_permissions"] = json::array();
    for (const auto& [key, topics] : auth_.topic_permissions())
        for (const auto& [exchange, t] : *topics)
            topic_permissions.push_back({{"user", key.first},
                                         {"vhost", key.second},
                                         {"exchange", exchange},
                                         {"write", t.write_pattern},
                                         {"read", t.read_pattern}});
    json& globals = doc["global_parameters"] = json::array();
    for (const auto& [name, value] : global_parameters_)
        globals.push_back({{"name", name}, {"value", json::parse(value)}});
    // The broker's maps are hash-ordered: sorted, two exports of the same state are the same
    // text, and a diff of two exports shows what changed.
    auto text = [](const json& e, const char* key) { return e.contains(key) ? e[key].dump() : std::string(); };
    for (auto& [key, list] : doc.items()) {
        if (!list.is_array()) continue;
        std::sort(list.begin(), list.end(), [&](const json& a, const json& b) {
            return std::tuple(text(a, "vhost"), text(a, "name"), text(a, "source"), text(a, "user"), a.dump()) <
                   std::tuple(text(b, "vhost"), text(b, "name"), text(b, "source"), text(b, "user"), b.dump());
        });
    }
    return doc;
}

}  // namespace warren::broker
