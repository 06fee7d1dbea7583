// Importing a RabbitMQ definitions file's users, vhosts, permissions, topic permissions and
// limits (users' "limits", "vhost-limits" parameters) through the admin API. Everything is
// checked before anything is applied: JSON types, names, patterns, hashes, and that each
// permission names a user and a vhost that exist or that the file creates. Queues, exchanges,
// bindings and policies are not read here.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "broker/broker.hpp"

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

}  // namespace

AdminStatus Broker::import_definitions(std::string_view text) {
    json doc = json::parse(text.begin(), text.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return AdminError{AdminError::Kind::Invalid, "", "not a JSON object"};
    struct VHostItem {
        std::string name;
        VHostSettings settings;
        std::optional<VHostLimits> limits;
    };
    struct PermissionItem {
        std::string user, vhost, exchange, configure, write, read;
    };
    std::vector<VHostItem> vhosts;
    std::vector<std::pair<UserSpec, std::optional<UserLimits>>> users;
    std::vector<PermissionItem> permissions, topic_permissions;
    try {
        for (const json& v : list(doc, "vhosts")) {
            VHostItem item;
            item.name = str(v, "name", "vhosts");
            const std::string where = fmt::format("vhost '{}'", item.name);
            item.settings = {str(v, "description", where, false), tags_of(v, where)};
            vhosts.push_back(std::move(item));
        }
        for (const json& p : list(doc, "parameters")) {
            if (str(p, "component", "parameters") != "vhost-limits") continue;
            const std::string vhost = str(p, "vhost", "parameters");
            auto value = p.find("value");
            if (value == p.end() || !value->is_object())
                throw Bad{"value", fmt::format("vhost-limits of '{}': 'value' is not an object", vhost)};
            VHostLimits l{limit_of(*value, "max-connections", vhost), limit_of(*value, "max-queues", vhost)};
            auto it = std::find_if(vhosts.begin(), vhosts.end(), [&](const VHostItem& i) { return i.name == vhost; });
            if (it == vhosts.end()) {
                vhosts.push_back({vhost, {}, l});
                if (VHost* existing = find_vhost(vhost)) vhosts.back().settings = existing->settings();
            } else {
                it->limits = l;
            }
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
    } catch (const Bad& bad) {
        return AdminError{AdminError::Kind::Invalid, bad.field, bad.text};
    }

    // Checked in full before anything is applied: every value, and every name a permission uses.
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
