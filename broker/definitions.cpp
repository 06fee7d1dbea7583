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

constexpr int snapshot_format = 1;

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

json vhost_json(const StoredVHost& v) { return {{"name", v.name}, {"id", v.id}}; }
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

StoredVHost parse_vhost(const json& o) { return {get_string(o, "name"), get_u32(o, "id")}; }
StoredExchange parse_exchange(const json& o) {
    StoredExchange x{get_u32(o, "vhost"),         get_string(o, "name"),     get_string(o, "type"),
                     get_bool(o, "auto_delete"), get_bool(o, "internal"), decode_args(field(o, "arguments"))};
    if (o.contains("id")) x.id = get_u32(o, "id");
    return x;
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

std::string snapshot(const Definitions& d) {
    json doc{{"format", snapshot_format}, {"next_vhost_id", d.next_vhost_id}, {"next_queue_id", d.next_queue_id}};
    json& vhosts = doc["vhosts"] = json::array();
    for (const auto& v : d.vhosts) vhosts.push_back(vhost_json(v));
    json& exchanges = doc["exchanges"] = json::array();
    for (const auto& x : d.exchanges) exchanges.push_back(exchange_json(x));
    json& queues = doc["queues"] = json::array();
    for (const auto& q : d.queues) queues.push_back(queue_json(q));
    json& bindings = doc["bindings"] = json::array();
    for (const auto& b : d.bindings) bindings.push_back(binding_json(b));
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
            std::erase_if(bindings, [&](const StoredBinding& b) {
                return b.vhost == vh && !b.to_exchange && b.destination == name;
            });
        } else if (op == "binding") {
            StoredBinding b = parse_binding(o);
            if (std::find(bindings.begin(), bindings.end(), b) == bindings.end()) bindings.push_back(std::move(b));
        } else if (op == "binding.delete") {
            StoredBinding b = parse_binding(o);
            std::erase(bindings, b);
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
        if (!format.is_number_integer() || format.get<int>() != snapshot_format)
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
        each("exchanges", parse_exchange, d.exchanges);
        each("queues", parse_queue, d.queues);
        each("bindings", parse_binding, d.bindings);
        *this = std::move(d);
    } catch (const BadRecord& e) {
        return e.what;
    }
    return std::nullopt;
}

}  // namespace warren::broker::definitions
