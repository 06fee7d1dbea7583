// See definitions.hpp. Records are small JSON objects with an "op"; the snapshot is one object
// with every list. Nothing read back is trusted: a record with a missing or ill-typed field, or
// arguments that do not decode, is an error that names it (the caller logs it and skips it).
#include "broker/definitions.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "broker/base64.hpp"
#include "protocol/table_view.hpp"

namespace warren::broker::definitions {

using json = nlohmann::json;

namespace {

// 2: users and permissions; 3: policies and global parameters; 4: streams' tracked offsets
// (older formats are still read).
constexpr int snapshot_format = 4;

struct BadRecord {
    std::string what;
};

std::string encode_args(const protocol::FieldTable& t) {
    protocol::ByteBuffer bytes = protocol::encode_table_body(t);
    return base64_encode(bytes.span());
}

protocol::FieldTable decode_args(const json& v) {
    if (!v.is_string()) throw BadRecord{"'arguments' is not a string"};
    auto bytes = base64_decode(v.get<std::string>());
    if (!bytes) throw BadRecord{"'arguments' is not base64"};
    auto view = protocol::TableView::parse(*bytes);
    if (!view) throw BadRecord{"'arguments' is not a field table"};
    return view->to_table();
}

const json& field(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end()) throw BadRecord{fmt::format("'{}' is missing", key)};
    return *it;
}

std::string get_string(const json& o, const char* key) {
    const json& v = field(o, key);
    if (!v.is_string()) throw BadRecord{fmt::format("'{}' is not a string", key)};
    return v.get<std::string>();
}

bool get_bool(const json& o, const char* key) {
    const json& v = field(o, key);
    if (!v.is_boolean()) throw BadRecord{fmt::format("'{}' is not a boolean", key)};
    return v.get<bool>();
}

std::uint32_t get_u32(const json& o, const char* key) {
    const json& v = field(o, key);
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() > 0xFFFFFFFFu)
        throw BadRecord{fmt::format("'{}' is not a 32-bit unsigned number", key)};
    return v.get<std::uint32_t>();
}

std::optional<std::int64_t> get_limit(const json& limits, const char* key) {
    auto it = limits.find(key);
    if (it == limits.end()) return std::nullopt;
    if (!it->is_number_integer()) throw BadRecord{fmt::format("limit '{}' is not an integer", key)};
    return it->get<std::int64_t>();
}

json limits_json(const StoredLimits& l) {
    json o = json::object();
    if (l.max_connections) o["max-connections"] = *l.max_connections;
    if (l.max_queues) o["max-queues"] = *l.max_queues;
    if (l.max_channels) o["max-channels"] = *l.max_channels;
    return o;
}

StoredLimits parse_limits(const json& o) {
    auto it = o.find("limits");
    if (it == o.end()) return {};
    if (!it->is_object()) throw BadRecord{"'limits' is not an object"};
    return {get_limit(*it, "max-connections"), get_limit(*it, "max-queues"), get_limit(*it, "max-channels")};
}

std::vector<std::string> get_strings(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end()) return {};
    if (!it->is_array()) throw BadRecord{fmt::format("'{}' is not a list", key)};
    std::vector<std::string> out;
    for (const json& v : *it) {
        if (!v.is_string()) throw BadRecord{fmt::format("an entry of '{}' is not a string", key)};
        out.push_back(v.get<std::string>());
    }
    return out;
}

std::string get_optional_string(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end()) return {};
    if (!it->is_string()) throw BadRecord{fmt::format("'{}' is not a string", key)};
    return it->get<std::string>();
}

json vhost_json(const StoredVHost& v) {
    return {{"name", v.name},
            {"id", v.id},
            {"description", v.description},
            {"tags", v.tags},
            {"limits", limits_json(v.limits)}};
}
json user_json(const StoredUser& u) {
    return {{"name", u.name},
            {"password_hash", u.password_hash},
            {"hashing_algorithm", u.hashing_algorithm},
            {"tags", u.tags},
            {"limits", limits_json(u.limits)}};
}
json permission_json(const StoredPermission& p) {
    return {{"user", p.user}, {"vhost", p.vhost}, {"configure", p.configure}, {"write", p.write}, {"read", p.read}};
}
json topic_permission_json(const StoredTopicPermission& p) {
    return {{"user", p.user}, {"vhost", p.vhost}, {"exchange", p.exchange}, {"write", p.write}, {"read", p.read}};
}
json exchange_json(const StoredExchange& x) {
    json o{{"vhost", x.vhost},
           {"name", x.name},
           {"type", x.type},
           {"auto_delete", x.auto_delete},
           {"internal", x.internal},
           {"arguments", encode_args(x.arguments)}};
    if (x.id) o["id"] = x.id;
    return o;
}
json queue_json(const StoredQueue& q) {
    return {{"vhost", q.vhost},
            {"name", q.name},
            {"id", q.id},
            {"auto_delete", q.auto_delete},
            {"arguments", encode_args(q.arguments)}};
}
json binding_json(const StoredBinding& b) {
    return {{"vhost", b.vhost},
            {"source", b.source},
            {"destination", b.destination},
            {"destination_type", b.to_exchange ? "exchange" : "queue"},
            {"routing_key", b.routing_key},
            {"arguments", encode_args(b.arguments)}};
}

json policy_json(const StoredPolicy& p) {
    return {{"vhost", p.vhost},          {"operator", p.operator_policy}, {"name", p.name},
            {"pattern", p.pattern},      {"apply_to", p.apply_to},        {"priority", p.priority},
            {"definition", p.definition}};
}
json global_parameter_json(const StoredGlobalParameter& p) {
    return {{"name", p.name}, {"value", p.value}};
}

std::int64_t get_i64(const json& o, const char* key) {
    const json& v = field(o, key);
    if (!v.is_number_integer()) throw BadRecord{fmt::format("'{}' is not an integer", key)};
    return v.get<std::int64_t>();
}

StoredPolicy parse_policy(const json& o) {
    return {get_u32(o, "vhost"),       get_bool(o, "operator"), get_string(o, "name"),      get_string(o, "pattern"),
            get_string(o, "apply_to"), get_i64(o, "priority"),  get_string(o, "definition")};
}
StoredGlobalParameter parse_global_parameter(const json& o) {
    return {get_string(o, "name"), get_string(o, "value")};
}

// Fields added after the first format are optional: records written before them still read.
StoredVHost parse_vhost(const json& o) {
    return {get_string(o, "name"), get_u32(o, "id"), get_optional_string(o, "description"), get_strings(o, "tags"),
            parse_limits(o)};
}
StoredUser parse_user(const json& o) {
    return {get_string(o, "name"), get_string(o, "password_hash"), get_string(o, "hashing_algorithm"),
            get_strings(o, "tags"), parse_limits(o)};
}
StoredPermission parse_permission(const json& o) {
    return {get_string(o, "user"), get_u32(o, "vhost"), get_string(o, "configure"), get_string(o, "write"),
            get_string(o, "read")};
}
StoredTopicPermission parse_topic_permission(const json& o) {
    return {get_string(o, "user"), get_u32(o, "vhost"), get_string(o, "exchange"), get_string(o, "write"),
            get_string(o, "read")};
}
StoredExchange parse_exchange(const json& o) {
    StoredExchange x{get_u32(o, "vhost"),         get_string(o, "name"),     get_string(o, "type"),
                     get_bool(o, "auto_delete"), get_bool(o, "internal"), decode_args(field(o, "arguments"))};
    if (o.contains("id")) x.id = get_u32(o, "id");
    return x;
}
json stream_offset_json(const StoredStreamOffset& s) {
    return {{"vhost", s.vhost}, {"queue", s.queue}, {"name", s.name}, {"offset", s.offset}};
}
StoredStreamOffset parse_stream_offset(const json& o) {
    const json& offset = field(o, "offset");
    if (!offset.is_number_unsigned()) throw BadRecord{"'offset' is not a number"};
    return {get_u32(o, "vhost"), get_u32(o, "queue"), get_string(o, "name"), offset.get<std::uint64_t>()};
}
StoredQueue parse_queue(const json& o) {
    return {get_u32(o, "vhost"), get_string(o, "name"), get_u32(o, "id"), get_bool(o, "auto_delete"),
            decode_args(field(o, "arguments"))};
}
StoredBinding parse_binding(const json& o) {
    std::string kind = get_string(o, "destination_type");
    if (kind != "queue" && kind != "exchange") throw BadRecord{"'destination_type' is neither queue nor exchange"};
    return {get_u32(o, "vhost"),          get_string(o, "source"),      get_string(o, "destination"),
            kind == "exchange",           get_string(o, "routing_key"), decode_args(field(o, "arguments"))};
}

std::string with_op(json o, const char* op) {
    o["op"] = op;
    return o.dump();
}

template <class T, class Same>
void put(std::vector<T>& list, T item, Same same) {
    auto it = std::find_if(list.begin(), list.end(), [&](const T& e) { return same(e, item); });
    if (it != list.end())
        *it = std::move(item);
    else
        list.push_back(std::move(item));
}

json parse_object(std::span<const std::byte> bytes) {
    json doc = json::parse(reinterpret_cast<const char*>(bytes.data()),
                           reinterpret_cast<const char*>(bytes.data()) + bytes.size(), nullptr, false);
    if (doc.is_discarded()) throw BadRecord{"not JSON"};
    if (!doc.is_object()) throw BadRecord{"not a JSON object"};
    return doc;
}

}  // namespace

bool StoredBinding::operator==(const StoredBinding& o) const {
    return vhost == o.vhost && source == o.source && destination == o.destination && to_exchange == o.to_exchange &&
           routing_key == o.routing_key && arguments == o.arguments;
}

std::string vhost_record(const StoredVHost& v) { return with_op(vhost_json(v), "vhost"); }
std::string vhost_delete_record(std::uint32_t id) { return with_op({{"id", id}}, "vhost.delete"); }
std::string user_record(const StoredUser& u) { return with_op(user_json(u), "user"); }
std::string user_delete_record(std::string_view name) { return with_op({{"name", name}}, "user.delete"); }
std::string permission_record(const StoredPermission& p) { return with_op(permission_json(p), "permission"); }
std::string permission_delete_record(std::string_view user, std::uint32_t vhost) {
    return with_op({{"user", user}, {"vhost", vhost}}, "permission.delete");
}
std::string topic_permission_record(const StoredTopicPermission& p) {
    return with_op(topic_permission_json(p), "topic_permission");
}
std::string topic_permission_delete_record(std::string_view user, std::uint32_t vhost, std::string_view exchange) {
    return with_op({{"user", user}, {"vhost", vhost}, {"exchange", exchange}}, "topic_permission.delete");
}
std::string exchange_record(const StoredExchange& x) { return with_op(exchange_json(x), "exchange"); }
std::string exchange_delete_record(std::uint32_t vhost, std::string_view name) {
    return with_op({{"vhost", vhost}, {"name", name}}, "exchange.delete");
}
std::string queue_record(const StoredQueue& q) { return with_op(queue_json(q), "queue"); }
std::string queue_delete_record(std::uint32_t vhost, std::string_view name, std::uint32_t id) {
    return with_op({{"vhost", vhost}, {"name", name}, {"id", id}}, "queue.delete");
}
std::string binding_record(const StoredBinding& b) { return with_op(binding_json(b), "binding"); }
std::string binding_delete_record(const StoredBinding& b) { return with_op(binding_json(b), "binding.delete"); }
std::string stream_offset_record(const StoredStreamOffset& o) {
    return with_op(stream_offset_json(o), "stream_offset");
}

std::string policy_record(const StoredPolicy& p) {
    return with_op(policy_json(p), "policy");
}
std::string policy_delete_record(std::uint32_t vhost, bool operator_policy, std::string_view name) {
    return with_op({{"vhost", vhost}, {"operator", operator_policy}, {"name", name}}, "policy.delete");
}
std::string global_parameter_record(const StoredGlobalParameter& p) {
    return with_op(global_parameter_json(p), "global_parameter");
}
std::string global_parameter_delete_record(std::string_view name) {
    return with_op({{"name", name}}, "global_parameter.delete");
}

std::string snapshot(const Definitions& d) {
    json doc{{"format", snapshot_format}, {"next_vhost_id", d.next_vhost_id}, {"next_queue_id", d.next_queue_id}};
    json& vhosts = doc["vhosts"] = json::array();
    for (const auto& v : d.vhosts) vhosts.push_back(vhost_json(v));
    json& users = doc["users"] = json::array();
    for (const auto& u : d.users) users.push_back(user_json(u));
    json& permissions = doc["permissions"] = json::array();
    for (const auto& p : d.permissions) permissions.push_back(permission_json(p));
    json& topic_permissions = doc["topic_permissions"] = json::array();
    for (const auto& p : d.topic_permissions) topic_permissions.push_back(topic_permission_json(p));
    json& exchanges = doc["exchanges"] = json::array();
    for (const auto& x : d.exchanges) exchanges.push_back(exchange_json(x));
    json& queues = doc["queues"] = json::array();
    for (const auto& q : d.queues) queues.push_back(queue_json(q));
    json& bindings = doc["bindings"] = json::array();
    for (const auto& b : d.bindings) bindings.push_back(binding_json(b));
    json& offsets = doc["stream_offsets"] = json::array();
    for (const auto& s : d.stream_offsets) offsets.push_back(stream_offset_json(s));
    json& policies = doc["policies"] = json::array();
    for (const auto& p : d.policies) policies.push_back(policy_json(p));
    json& globals = doc["global_parameters"] = json::array();
    for (const auto& p : d.global_parameters) globals.push_back(global_parameter_json(p));
    return doc.dump();
}

std::optional<std::string> Definitions::apply_record(std::span<const std::byte> bytes) {
    try {
        json o = parse_object(bytes);
        std::string op = get_string(o, "op");
        if (op == "vhost") {
            StoredVHost v = parse_vhost(o);
            next_vhost_id = std::max(next_vhost_id, v.id + 1);
            put(vhosts, std::move(v), [](const StoredVHost& a, const StoredVHost& b) { return a.name == b.name; });
        } else if (op == "vhost.delete") {
            std::uint32_t id = get_u32(o, "id");
            std::erase_if(vhosts, [&](const StoredVHost& v) { return v.id == id; });
            std::erase_if(exchanges, [&](const StoredExchange& x) { return x.vhost == id; });
            std::erase_if(queues, [&](const StoredQueue& q) { return q.vhost == id; });
            std::erase_if(bindings, [&](const StoredBinding& b) { return b.vhost == id; });
            std::erase_if(stream_offsets, [&](const StoredStreamOffset& s) { return s.vhost == id; });
            std::erase_if(permissions, [&](const StoredPermission& p) { return p.vhost == id; });
            std::erase_if(topic_permissions, [&](const StoredTopicPermission& p) { return p.vhost == id; });
            std::erase_if(policies, [&](const StoredPolicy& p) { return p.vhost == id; });
        } else if (op == "user") {
            users_stored = true;
            put(users, parse_user(o), [](const StoredUser& a, const StoredUser& b) { return a.name == b.name; });
        } else if (op == "user.delete") {
            std::string name = get_string(o, "name");
            std::erase_if(users, [&](const StoredUser& u) { return u.name == name; });
            std::erase_if(permissions, [&](const StoredPermission& p) { return p.user == name; });
            std::erase_if(topic_permissions, [&](const StoredTopicPermission& p) { return p.user == name; });
        } else if (op == "permission") {
            put(permissions, parse_permission(o), [](const StoredPermission& a, const StoredPermission& b) {
                return a.user == b.user && a.vhost == b.vhost;
            });
        } else if (op == "permission.delete") {
            std::string user = get_string(o, "user");
            std::uint32_t vh = get_u32(o, "vhost");
            std::erase_if(permissions, [&](const StoredPermission& p) { return p.user == user && p.vhost == vh; });
        } else if (op == "topic_permission") {
            put(topic_permissions, parse_topic_permission(o),
                [](const StoredTopicPermission& a, const StoredTopicPermission& b) {
                    return a.user == b.user && a.vhost == b.vhost && a.exchange == b.exchange;
                });
        } else if (op == "topic_permission.delete") {
            std::string user = get_string(o, "user");
            std::uint32_t vh = get_u32(o, "vhost");
            std::string exchange = get_string(o, "exchange");
            std::erase_if(topic_permissions, [&](const StoredTopicPermission& p) {
                return p.user == user && p.vhost == vh && p.exchange == exchange;
            });
        } else if (op == "exchange") {
            StoredExchange x = parse_exchange(o);
            next_queue_id = std::max(next_queue_id, x.id + 1);
            put(exchanges, std::move(x),
                [](const StoredExchange& a, const StoredExchange& b) { return a.vhost == b.vhost && a.name == b.name; });
        } else if (op == "exchange.delete") {
            std::uint32_t vh = get_u32(o, "vhost");
            std::string name = get_string(o, "name");
            std::erase_if(exchanges, [&](const StoredExchange& x) { return x.vhost == vh && x.name == name; });
            // Bindings from it and to it go with it.
            std::erase_if(bindings, [&](const StoredBinding& b) {
                return b.vhost == vh && (b.source == name || (b.to_exchange && b.destination == name));
            });
        } else if (op == "queue") {
            StoredQueue q = parse_queue(o);
            next_queue_id = std::max(next_queue_id, q.id + 1);
            put(queues, std::move(q),
                [](const StoredQueue& a, const StoredQueue& b) { return a.vhost == b.vhost && a.name == b.name; });
        } else if (op == "queue.delete") {
            std::uint32_t vh = get_u32(o, "vhost");
            std::string name = get_string(o, "name");
            std::uint32_t id = get_u32(o, "id");
            std::erase_if(queues, [&](const StoredQueue& q) { return q.vhost == vh && q.name == name && q.id == id; });
            std::erase_if(stream_offsets, [&](const StoredStreamOffset& s) { return s.vhost == vh && s.queue == id; });
            std::erase_if(bindings, [&](const StoredBinding& b) {
                return b.vhost == vh && !b.to_exchange && b.destination == name;
            });
        } else if (op == "binding") {
            StoredBinding b = parse_binding(o);
            if (std::find(bindings.begin(), bindings.end(), b) == bindings.end()) bindings.push_back(std::move(b));
        } else if (op == "stream_offset") {
            put(stream_offsets, parse_stream_offset(o), [](const StoredStreamOffset& a, const StoredStreamOffset& b) {
                return a.vhost == b.vhost && a.queue == b.queue && a.name == b.name;
            });
        } else if (op == "binding.delete") {
            StoredBinding b = parse_binding(o);
            std::erase(bindings, b);
        } else if (op == "policy") {
            put(policies, parse_policy(o), [](const StoredPolicy& a, const StoredPolicy& b) {
                return a.vhost == b.vhost && a.operator_policy == b.operator_policy && a.name == b.name;
            });
        } else if (op == "policy.delete") {
            std::uint32_t vh = get_u32(o, "vhost");
            bool operator_policy = get_bool(o, "operator");
            std::string name = get_string(o, "name");
            std::erase_if(policies, [&](const StoredPolicy& p) {
                return p.vhost == vh && p.operator_policy == operator_policy && p.name == name;
            });
        } else if (op == "global_parameter") {
            put(global_parameters, parse_global_parameter(o),
                [](const StoredGlobalParameter& a, const StoredGlobalParameter& b) { return a.name == b.name; });
        } else if (op == "global_parameter.delete") {
            std::string name = get_string(o, "name");
            std::erase_if(global_parameters, [&](const StoredGlobalParameter& p) { return p.name == name; });
        } else {
            return fmt::format("unknown op '{}'", op);
        }
    } catch (const BadRecord& e) {
        return e.what;
    }
    return std::nullopt;
}

std::optional<std::string> Definitions::apply_snapshot(std::span<const std::byte> bytes) {
    try {
        json o = parse_object(bytes);
        const json& format = field(o, "format");
        if (!format.is_number_integer() || format.get<int>() < 1 || format.get<int>() > snapshot_format)
            throw BadRecord{"unknown snapshot format"};
        Definitions d;
        d.next_vhost_id = get_u32(o, "next_vhost_id");
        d.next_queue_id = get_u32(o, "next_queue_id");
        auto each = [&](const char* key, auto parse, auto& out) {
            const json& list = field(o, key);
            if (!list.is_array()) throw BadRecord{fmt::format("'{}' is not a list", key)};
            for (const json& item : list) {
                if (!item.is_object()) throw BadRecord{fmt::format("an entry of '{}' is not an object", key)};
                out.push_back(parse(item));
            }
        };
        each("vhosts", parse_vhost, d.vhosts);
        if (format.get<int>() >= 2) {
            d.users_stored = true;
            each("users", parse_user, d.users);
            each("permissions", parse_permission, d.permissions);
            each("topic_permissions", parse_topic_permission, d.topic_permissions);
        }
        each("exchanges", parse_exchange, d.exchanges);
        each("queues", parse_queue, d.queues);
        each("bindings", parse_binding, d.bindings);
        if (format.get<int>() >= 3) {
            each("policies", parse_policy, d.policies);
            each("global_parameters", parse_global_parameter, d.global_parameters);
        }
        // Format 4 always has them; the streams branch wrote them into format-2 snapshots.
        if (format.get<int>() >= 4 || o.contains("stream_offsets"))
            each("stream_offsets", parse_stream_offset, d.stream_offsets);
        *this = std::move(d);
    } catch (const BadRecord& e) {
        return e.what;
    }
    return std::nullopt;
}

}  // namespace warren::broker::definitions
