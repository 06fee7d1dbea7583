// Importing a RabbitMQ definitions file (rabbit_definitions in 3.10) through the admin API:
// vhosts, users, permissions, topic permissions, limits, policies, operator policies, global and
// vhost parameters, exchanges, queues and bindings. Everything is read and checked before
// anything is applied, so an import is all or nothing; an error names the entry. As RabbitMQ
// does, an exchange or queue that exists already is left as it is, and amq.* ones are skipped.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "broker/broker.hpp"
#include "broker/field_table_json.hpp"
#include "broker/log.hpp"

namespace warren::broker {

using json = nlohmann::json;

namespace {

struct Bad {
    std::string field;
    std::string text;
};

std::string str(const json& o, const char* key, const std::string& where, bool required = true) {
    auto it = o.find(key);
    if (it == o.end()) {
        if (required) throw Bad{key, fmt::format("{}: '{}' is missing", where, key)};
        return {};
    }
    if (!it->is_string()) throw Bad{key, fmt::format("{}: '{}' is not a string", where, key)};
    return it->get<std::string>();
}

bool flag(const json& o, const char* key, bool otherwise, const std::string& where) {
    auto it = o.find(key);
    if (it == o.end()) return otherwise;
    if (!it->is_boolean()) throw Bad{key, fmt::format("{}: '{}' is not a boolean", where, key)};
    return it->get<bool>();
}

// 3.10 writes tags as one comma-separated string; later versions as a list.
std::vector<std::string> tags_of(const json& o, const std::string& where) {
    auto it = o.find("tags");
    std::vector<std::string> out;
    if (it == o.end()) return out;
    if (it->is_string()) {
        std::stringstream s(it->get<std::string>());
        for (std::string t; std::getline(s, t, ',');)
            if (t.find_first_not_of(' ') != std::string::npos) out.push_back(t);
        return out;
    }
    if (!it->is_array()) throw Bad{"tags", fmt::format("{}: 'tags' is neither a string nor a list", where)};
    for (const json& t : *it) {
        if (!t.is_string()) throw Bad{"tags", fmt::format("{}: a tag is not a string", where)};
        out.push_back(t.get<std::string>());
    }
    return out;
}

std::optional<std::int64_t> limit_of(const json& limits, const char* key, const std::string& where) {
    auto it = limits.find(key);
    if (it == limits.end()) return std::nullopt;
    if (!it->is_number_integer()) throw Bad{key, fmt::format("{}: limit '{}' is not an integer", where, key)};
    return it->get<std::int64_t>();
}

const json& list(const json& doc, const char* key) {
    static const json empty = json::array();
    auto it = doc.find(key);
    if (it == doc.end()) return empty;
    if (!it->is_array()) throw Bad{key, fmt::format("'{}' is not a list", key)};
    for (const json& e : *it)
        if (!e.is_object()) throw Bad{key, fmt::format("an entry of '{}' is not an object", key)};
    return *it;
}

protocol::FieldTable arguments_of(const json& o, const std::string& where) {
    auto it = o.find("arguments");
    if (it == o.end() || it->is_null()) return {};
    std::string error;
    auto table = field_table_from_json(*it, error);
    if (!table) throw Bad{"arguments", fmt::format("{}: 'arguments' {}", where, error)};
    return std::move(*table);
}

// A policy as the file gives it, in "policies" or as an operator_policy parameter's value. 3.10
// writes an operator policy's definition as a list of [key, value] pairs.
PolicySpec policy_of(const json& value, const std::string& vhost, const std::string& name, const std::string& where) {
    PolicySpec spec;
    spec.vhost = vhost;
    spec.name = name;
    spec.pattern = str(value, "pattern", where);
    spec.apply_to = value.contains("apply-to") ? str(value, "apply-to", where) : "all";
    if (auto it = value.find("priority"); it != value.end()) {
        if (!it->is_number_integer())
            throw Bad{"priority", fmt::format("{}: priority should be a number, actually was {}", where, it->dump())};
        spec.priority = it->get<std::int64_t>();
    }
    auto def = value.find("definition");
    if (def == value.end()) throw Bad{"definition", fmt::format("{}: 'definition' is missing", where)};
    json object = *def;
    if (def->is_array()) {
        object = json::object();
        for (const json& pair : *def) {
            if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
                throw Bad{"definition",
                          fmt::format("{}: 'definition' is neither an object nor a list of pairs", where)};
            object[pair[0].get<std::string>()] = pair[1];
        }
    }
    spec.definition = object.dump();
    return spec;
}

struct VHostItem {
    std::string name;
    VHostSettings settings;
    std::optional<VHostLimits> limits;
};
struct PermissionItem {
    std::string user, vhost, exchange, configure, write, read;
};
struct QueueItem {
    std::string vhost, name;
    QueueFlags flags;
    QueueArgs args;
    protocol::FieldTable raw;
};
struct ExchangeItem {
    std::string vhost, name;
    exchanges::ExchangeType type;
    bool durable, auto_delete, internal;
    protocol::FieldTable arguments;
};
struct BindingItem {
    std::string vhost, source, destination, routing_key;
    bool to_exchange;
    protocol::FieldTable arguments;
};

std::string binding_text(const BindingItem& b) {
    return fmt::format("binding from exchange '{}' to {} '{}' (key '{}') in vhost '{}'", b.source,
                       b.to_exchange ? "exchange" : "queue", b.destination, b.routing_key, b.vhost);
}

}  // namespace

AdminStatus Broker::import_definitions(std::string_view text) {
    json doc = json::parse(text.begin(), text.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return AdminError{AdminError::Kind::Invalid, "", "not a JSON object"};
    std::vector<VHostItem> vhosts;
    std::vector<std::pair<UserSpec, std::optional<UserLimits>>> users;
    std::vector<PermissionItem> permissions, topic_permissions;
    std::vector<std::pair<PolicyKind, PolicySpec>> policies;
    std::vector<std::pair<std::string, std::string>> globals;
    std::vector<QueueItem> queues;
    std::vector<ExchangeItem> exchange_items;
    std::vector<BindingItem> bindings;
    try {
        for (const json& v : list(doc, "vhosts")) {
            VHostItem item;
            item.name = str(v, "name", "vhosts");
            const std::string where = fmt::format("vhost '{}'", item.name);
            // 3.10 puts the description and tags under "metadata"; older files at the top.
            const json* meta = &v;
            if (auto it = v.find("metadata"); it != v.end() && it->is_object() && !v.contains("description"))
                meta = &*it;
            item.settings = {str(*meta, "description", where, false), tags_of(*meta, where)};
            vhosts.push_back(std::move(item));
        }
        for (const json& p : list(doc, "parameters")) {
            const std::string component = str(p, "component", "parameters");
            const std::string vhost = str(p, "vhost", "parameters");
            const std::string name = str(p, "name", "parameters");
            const std::string where =
                fmt::format("parameter '{}' of component '{}' in vhost '{}'", name, component, vhost);
            auto value = p.find("value");
            if (value == p.end() || !value->is_object())
                throw Bad{"value", fmt::format("{}: 'value' is not an object", where)};
            if (component == "operator_policy" || component == "policy") {
                auto kind = component == "policy" ? PolicyKind::Policy : PolicyKind::Operator;
                policies.emplace_back(kind, policy_of(*value, vhost, name, where));
                continue;
            }
            if (component != "vhost-limits")
                throw Bad{"component", fmt::format("{}: Warren has no '{}' component (it takes vhost-limits and "
                                                   "operator_policy parameters)",
                                                   where, component)};
            VHostLimits l{limit_of(*value, "max-connections", where), limit_of(*value, "max-queues", where)};
            auto it = std::find_if(vhosts.begin(), vhosts.end(), [&](const VHostItem& i) { return i.name == vhost; });
            if (it == vhosts.end()) {
                vhosts.push_back({vhost, {}, l});
                if (VHost* existing = find_vhost(vhost)) vhosts.back().settings = existing->settings();
            } else {
                it->limits = l;
            }
        }
        for (const json& g : list(doc, "global_parameters")) {
            const std::string name = str(g, "name", "global_parameters");
            const std::string where = fmt::format("global parameter '{}'", name);
            if (name.starts_with("internal")) {
                // RabbitMQ leaves these out of its exports; a node makes its own.
                log::warning("definitions: {} ignored (Warren keeps no internal cluster parameters)", where);
                continue;
            }
            if (name != "cluster_name")
                throw Bad{"global_parameters", fmt::format("{}: Warren knows only cluster_name", where)};
            auto value = g.find("value");
            if (value == g.end() || !value->is_string())
                throw Bad{"value", fmt::format("{}: 'value' is not a string", where)};
            globals.emplace_back(name, value->dump());
        }
        for (const json& u : list(doc, "users")) {
            UserSpec spec;
            spec.name = str(u, "name", "users");
            const std::string where = fmt::format("user '{}'", spec.name);
            if (u.contains("password"))
                spec.password = str(u, "password", where);
            else
                spec.password_hash = str(u, "password_hash", where);
            std::string algorithm = str(u, "hashing_algorithm", where, false);
            if (!algorithm.empty()) spec.hashing_algorithm = algorithm;
            spec.tags = tags_of(u, where);
            std::optional<UserLimits> limits;
            if (auto it = u.find("limits"); it != u.end()) {
                if (!it->is_object()) throw Bad{"limits", fmt::format("{}: 'limits' is not an object", where)};
                limits = UserLimits{limit_of(*it, "max-connections", where), limit_of(*it, "max-channels", where)};
            }
            users.emplace_back(std::move(spec), limits);
        }
        for (const json& p : list(doc, "permissions"))
            permissions.push_back({str(p, "user", "permissions"), str(p, "vhost", "permissions"), "",
                                   str(p, "configure", "permissions"), str(p, "write", "permissions"),
                                   str(p, "read", "permissions")});
        for (const json& p : list(doc, "topic_permissions"))
            topic_permissions.push_back({str(p, "user", "topic_permissions"), str(p, "vhost", "topic_permissions"),
                                         str(p, "exchange", "topic_permissions"), "",
                                         str(p, "write", "topic_permissions"), str(p, "read", "topic_permissions")});
        for (const json& p : list(doc, "policies")) {
            const std::string vhost = str(p, "vhost", "policies"), name = str(p, "name", "policies");
            policies.emplace_back(PolicyKind::Policy,
                                  policy_of(p, vhost, name, fmt::format("policy '{}' in vhost '{}'", name, vhost)));
        }
        for (const json& x : list(doc, "exchanges")) {
            const std::string vhost = str(x, "vhost", "exchanges"), name = str(x, "name", "exchanges");
            const std::string where = fmt::format("exchange '{}' in vhost '{}'", name, vhost);
            const std::string type_name = str(x, "type", where);
            ExchangeItem item{vhost,
                              name,
                              exchanges::ExchangeType::Direct,
                              flag(x, "durable", true, where),
                              flag(x, "auto_delete", false, where),
                              flag(x, "internal", false, where),
                              arguments_of(x, where)};
            if (name.empty() || name.starts_with("amq.")) {
                log::warning("definitions: {} skipped: built-in or reserved name, as RabbitMQ skips it", where);
                continue;
            }
            auto type = exchanges::parse_exchange_type(type_name);
            if (!type) throw Bad{"type", fmt::format("{}: unknown exchange type '{}'", where, type_name)};
            item.type = *type;
            if (auto invalid = exchanges::validate_exchange_arguments(*type, item.arguments))
                throw Bad{"arguments", fmt::format("{}: {}", where, *invalid)};
            if (const auto* ae = item.arguments.find(args::alternate_exchange); ae && !ae->as_string())
                throw Bad{"arguments", fmt::format("{}: 'alternate-exchange' is not a string", where)};
            exchange_items.push_back(std::move(item));
        }
        for (const json& q : list(doc, "queues")) {
            const std::string vhost = str(q, "vhost", "queues"), name = str(q, "name", "queues");
            const std::string where = fmt::format("queue '{}' in vhost '{}'", name, vhost);
            if (name.starts_with("amq.")) {
                log::warning("definitions: {} skipped: reserved name, as RabbitMQ skips it", where);
                continue;
            }
            QueueItem item{vhost,
                           name,
                           {flag(q, "durable", true, where), false, flag(q, "auto_delete", false, where)},
                           {},
                           arguments_of(q, where)};
            QueueArgsResult parsed = parse_queue_args(item.raw, where);
            if (!parsed.args) throw Bad{"arguments", parsed.error};
            if (parsed.args->type != QueueType::Classic && (!item.flags.durable || item.flags.auto_delete))
                throw Bad{"durable", fmt::format("{}: a {} queue is durable and not auto-delete", where,
                                                 queue_type_name(parsed.args->type))};
            item.args = std::move(*parsed.args);
            queues.push_back(std::move(item));
        }
        for (const json& b : list(doc, "bindings")) {
            BindingItem item;
            item.vhost = str(b, "vhost", "bindings");
            item.source = str(b, "source", "bindings");
            item.destination = str(b, "destination", "bindings");
            const std::string kind = str(b, "destination_type", "bindings");
            if (kind != "queue" && kind != "exchange")
                throw Bad{"destination_type",
                          fmt::format("a binding's destination_type is '{}', not queue or exchange", kind)};
            item.to_exchange = kind == "exchange";
            item.routing_key = str(b, "routing_key", "bindings", false);
            item.arguments = arguments_of(b, binding_text(item));
            bindings.push_back(std::move(item));
        }
    } catch (const Bad& bad) {
        return AdminError{AdminError::Kind::Invalid, bad.field, bad.text};
    }

    // Checked in full before anything is applied: every value, and every name an entry uses.
    std::set<std::string> user_names, vhost_names;
    for (const auto& [name, u] : auth_.users()) user_names.insert(name);
    for (const auto& [name, vh] : vhosts_) vhost_names.insert(name);
    for (const auto& v : vhosts) vhost_names.insert(v.name);
    for (const auto& v : vhosts)
        if (auto e = check_vhost_input(v.name, v.settings)) {
            e->text = fmt::format("vhost '{}': {}", v.name, e->text);
            return e;
        }
    for (const auto& [spec, limits] : users) {
        user_names.insert(spec.name);
        if (auto e = check_user_input(spec)) {
            e->text = fmt::format("user '{}': {}", spec.name, e->text);
            return e;
        }
    }
    auto check_pattern = [](const std::string& field, const std::string& pattern,
                            const PermissionItem& p) -> AdminStatus {
        auto compiled = PermissionRegex::compile(pattern);
        if (auto* e = std::get_if<std::string>(&compiled))
            return AdminError{
                AdminError::Kind::Invalid, field,
                fmt::format("permissions of user '{}' in vhost '{}': field '{}': {}", p.user, p.vhost, field, *e)};
        return std::nullopt;
    };
    for (const auto* group : {&permissions, &topic_permissions})
        for (const auto& p : *group) {
            if (!user_names.contains(p.user))
                return AdminError{AdminError::Kind::NotFound, "user",
                                  fmt::format("permissions name user '{}', which does not exist", p.user)};
            if (!vhost_names.contains(p.vhost))
                return AdminError{AdminError::Kind::NotFound, "vhost",
                                  fmt::format("permissions name vhost '{}', which does not exist", p.vhost)};
            if (group == &permissions)
                if (auto e = check_pattern("configure", p.configure, p)) return e;
            if (auto e = check_pattern("write", p.write, p)) return e;
            if (auto e = check_pattern("read", p.read, p)) return e;
        }
    auto missing_vhost = [&](const std::string& vhost, const std::string& what) -> AdminStatus {
        if (vhost_names.contains(vhost)) return std::nullopt;
        return AdminError{AdminError::Kind::NotFound, "vhost",
                          fmt::format("{}: vhost '{}' does not exist", what, vhost)};
    };
    for (const auto& [kind, spec] : policies) {
        const std::string what = fmt::format(
            "{} '{}' in vhost '{}'", kind == PolicyKind::Policy ? "policy" : "operator policy", spec.name, spec.vhost);
        if (auto e = missing_vhost(spec.vhost, what)) return e;
        auto made = make_policy(spec, kind);
        if (auto* e = std::get_if<PolicyError>(&made))
            return AdminError{AdminError::Kind::Invalid, e->field, fmt::format("{}: {}", what, e->text)};
    }
    // What exists once the file is applied: existing entities stay as they are.
    std::set<std::tuple<std::string, std::string>> exchange_names, queue_names;
    for (const auto& [name, vh] : vhosts_) {
        for (const auto& [xname, x] : vh->exchanges()) exchange_names.emplace(name, xname);
        for (const auto& [qname, q] : vh->queues()) queue_names.emplace(name, qname);
    }
    std::map<std::tuple<std::string, std::string>, exchanges::ExchangeType> new_exchange_types;
    for (const auto& x : exchange_items) {
        if (auto e = missing_vhost(x.vhost, fmt::format("exchange '{}'", x.name))) return e;
        if (exchange_names.emplace(x.vhost, x.name).second)
            new_exchange_types.emplace(std::tuple(x.vhost, x.name), x.type);
    }
    std::map<std::string, std::size_t> new_queues;
    for (const auto& q : queues) {
        if (auto e = missing_vhost(q.vhost, fmt::format("queue '{}'", q.name))) return e;
        if (queue_names.emplace(q.vhost, q.name).second) ++new_queues[q.vhost];
    }
    for (const auto& [vhost, count] : new_queues) {
        std::optional<std::int64_t> limit;
        VHost* vh = find_vhost(vhost);
        if (vh) limit = vh->limits().max_queues;
        for (const auto& v : vhosts)
            if (v.name == vhost && v.limits) limit = v.limits->max_queues;
        const std::size_t existing = vh ? vh->queues().size() : 0;
        if (limit && *limit >= 0 && existing + count > static_cast<std::size_t>(*limit))
            return AdminError{
                AdminError::Kind::Invalid, "queues",
                fmt::format("{} new queues in vhost '{}' would pass its limit of {} queues", count, vhost, *limit)};
    }
    for (const auto& b : bindings) {
        const std::string what = binding_text(b);
        if (auto e = missing_vhost(b.vhost, what)) return e;
        if (b.source.empty())
            return AdminError{AdminError::Kind::Invalid, "source",
                              fmt::format("{}: the default exchange takes no bindings", what)};
        if (!exchange_names.contains({b.vhost, b.source}))
            return AdminError{AdminError::Kind::NotFound, "source",
                              fmt::format("{}: exchange '{}' does not exist", what, b.source)};
        const auto& names = b.to_exchange ? exchange_names : queue_names;
        if (!names.contains({b.vhost, b.destination}))
            return AdminError{
                AdminError::Kind::NotFound, "destination",
                fmt::format("{}: {} '{}' does not exist", what, b.to_exchange ? "exchange" : "queue", b.destination)};
        std::optional<std::string> invalid;
        if (auto it = new_exchange_types.find({b.vhost, b.source}); it != new_exchange_types.end())
            invalid = exchanges::make_exchange(it->second)->validate_binding(b.arguments);
        else if (VHost* vh = find_vhost(b.vhost); vh && vh->find_exchange(b.source))
            invalid = vh->find_exchange(b.source)->router->validate_binding(b.arguments);
        if (invalid) return AdminError{AdminError::Kind::Invalid, "arguments", fmt::format("{}: {}", what, *invalid)};
        // x-consistent-hash: the routing key is the queue's weight.
        if (auto it = new_exchange_types.find({b.vhost, b.source}); it != new_exchange_types.end())
            invalid = exchanges::make_exchange(it->second)->validate_binding_key(b.routing_key);
        else if (VHost* vh = find_vhost(b.vhost); vh && vh->find_exchange(b.source))
            invalid = vh->find_exchange(b.source)->router->validate_binding_key(b.routing_key);
        if (invalid)
            return AdminError{AdminError::Kind::Invalid, "routing_key", fmt::format("{}: {}", what, *invalid)};
    }

    // Applied in dependency order; every check the API makes was made above.
    for (const auto& v : vhosts) {
        if (auto e = add_vhost(v.name, v.settings)) return e;
        if (v.limits)
            if (auto e = set_vhost_limits(v.name, *v.limits)) return e;
    }
    for (const auto& [spec, limits] : users) {
        if (auto e = put_user(spec)) return e;
        if (limits)
            if (auto e = set_user_limits(spec.name, *limits)) return e;
    }
    for (const auto& p : permissions)
        if (auto e = set_permissions(p.user, p.vhost, p.configure, p.write, p.read)) return e;
    for (const auto& p : topic_permissions)
        if (auto e = set_topic_permissions(p.user, p.vhost, p.exchange, p.write, p.read)) return e;
    for (const auto& [name, value] : globals)
        if (auto e = set_global_parameter(name, value)) return e;
    for (const auto& [kind, spec] : policies)
        if (auto e = put_policy(kind, spec)) return e;
    for (auto& x : exchange_items) {
        VHost& vh = *find_vhost(x.vhost);
        if (vh.find_exchange(x.name)) continue;
        vh.add_exchange(x.name, x.type, x.durable, x.auto_delete, x.internal, std::move(x.arguments));
    }
    for (auto& q : queues) {
        VHost& vh = *find_vhost(q.vhost);
        if (vh.find_queue(q.name)) continue;
        vh.add_queue(q.name, q.flags, std::move(q.args), std::move(q.raw), 0);
    }
    for (const auto& b : bindings) {
        VHost& vh = *find_vhost(b.vhost);
        ExchangeEntry& source = *vh.find_exchange(b.source);
        exchanges::Destination destination = b.to_exchange ? vh.find_exchange(b.destination)->as_destination()
                                                           : vh.find_queue(b.destination)->as_destination();
        vh.bind(source, destination, b.routing_key, b.arguments);
    }
    return std::nullopt;
}

AdminStatus Broker::import_definitions_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return AdminError{AdminError::Kind::NotFound, "load_definitions", fmt::format("cannot read {}", path)};
    std::stringstream text;
    text << in.rdbuf();
    AdminStatus s = import_definitions(text.str());
    if (s) s->text = fmt::format("{}: {}", path, s->text);
    return s;
}

}  // namespace warren::broker
