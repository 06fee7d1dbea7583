// Users, vhosts, permissions, topic permissions and limits through the API, as RabbitMQ 3.10
// answers them (recorded by tools/mgmt_reference: statuses, and its reason texts for bad input).
// Every change goes through the Broker's admin API, which checks all of it first and stores it;
// the answer waits until it is stored, as a durable declare-ok does.
#include <fmt/format.h>

#include <algorithm>

#include "broker/base64.hpp"
#include "broker/broker.hpp"
#include "broker/vhost.hpp"
#include "mgmt/api.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/auth_json.hpp"

namespace warren::mgmt {

json user_json(const broker::User& u) {
    json limits = json::object();
    if (u.limits.max_connections) limits["max-connections"] = *u.limits.max_connections;
    if (u.limits.max_channels) limits["max-channels"] = *u.limits.max_channels;
    return json{{"name", u.name},
                {"password_hash", broker::encode_password_hash(u.password)},
                {"hashing_algorithm", broker::hashing_algorithm_name(u.password.algorithm)},
                {"tags", u.tags},
                {"limits", limits}};
}

json permission_json(const std::string& user, const std::string& vhost, const broker::Permissions& p) {
    return json{{"user", user},
                {"vhost", vhost},
                {"configure", p.configure.pattern()},
                {"write", p.write.pattern()},
                {"read", p.read.pattern()}};
}

json topic_permission_json(const std::string& user, const std::string& vhost, const broker::TopicPermission& t) {
    return json{{"user", user},
                {"vhost", vhost},
                {"exchange", t.exchange},
                {"write", t.write_pattern},
                {"read", t.read_pattern}};
}

json vhost_limits_json(const broker::VHostLimits& l) {
    json v = json::object();
    if (l.max_connections) v["max-connections"] = *l.max_connections;
    if (l.max_queues) v["max-queues"] = *l.max_queues;
    return v;
}

namespace {

// RabbitMQ's text for absent keys: its Erlang term, "[{key_missing,write},{key_missing,read}]".
std::optional<std::string> missing_keys(const json& body, std::initializer_list<const char*> keys) {
    std::string out;
    for (const char* k : keys)
        if (!body.contains(k)) out += fmt::format("{}{{key_missing,{}}}", out.empty() ? "" : ",", k);
    if (out.empty()) return std::nullopt;
    return "[" + out + "]";
}

// A JSON value as the text RabbitMQ's messages show (a string as an Erlang binary).
std::string erlang_text(const json& v) {
    return v.is_string() ? fmt::format("<<\"{}\">>", v.get<std::string>()) : v.dump();
}

// "a,b" or ["a", "b"]; nothing when it is neither.
std::optional<std::vector<std::string>> parse_tags(const json& v) {
    std::vector<std::string> tags;
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        std::size_t start = 0;
        while (start <= s.size()) {
            std::size_t comma = s.find(',', start);
            if (comma == std::string::npos) comma = s.size();
            std::string tag = s.substr(start, comma - start);
            tag.erase(0, tag.find_first_not_of(' '));
            tag.erase(tag.find_last_not_of(' ') + 1);
            if (!tag.empty()) tags.push_back(std::move(tag));
            start = comma + 1;
        }
        return tags;
    }
    if (!v.is_array()) return std::nullopt;
    for (const json& t : v) {
        if (!t.is_string()) return std::nullopt;
        tags.push_back(t.get<std::string>());
    }
    return tags;
}

// An admin refusal as an HTTP answer.
void refuse(Api::Call& call, const broker::AdminError& e) {
    switch (e.kind) {
        case broker::AdminError::Kind::NotFound:
            return call.not_found();
        case broker::AdminError::Kind::Storage:
            return call.error(500, "internal_error", e.text);
        default:
            return call.bad_request(e.text);
    }
}

const char* regex_field(const broker::AdminError& e) {
    return e.field == "configure" || e.field == "write" || e.field == "read" ? e.field.c_str() : nullptr;
}

}  // namespace

// ---- reads ----------------------------------------------------------------------------------

void Api::get_users(Call& call) {
    if (!require(call, Need::Administrator)) return;
    const auto& s = call.seg();
    const auto& auth = broker_.auth();
    if (s.size() == 2 || (s.size() == 3 && s[2] == "without-permissions")) {
        const bool only_without = s.size() == 3;
        std::vector<std::string> names;
        for (const auto& [name, u] : auth.users()) names.push_back(name);
        std::sort(names.begin(), names.end());
        json a = json::array();
        for (const std::string& n : names) {
            if (only_without) {
                bool any = false;
                for (const auto& [key, p] : auth.permissions()) any = any || key.first == n;
                if (any) continue;
            }
            a.push_back(user_json(*auth.find_user(n)));
        }
        return call.reply_json(a);
    }
    const broker::User* u = auth.find_user(s[2]);
    if (!u) return call.not_found();
    if (s.size() == 3) return call.reply_json(user_json(*u));
    if (s.size() == 4 && s[3] == "permissions") {
        json a = json::array();
        for (const auto& [key, p] : auth.permissions())
            if (key.first == u->name) a.push_back(permission_json(key.first, key.second, *p));
        return call.reply_json(a);
    }
    if (s.size() == 4 && s[3] == "topic-permissions") {
        json a = json::array();
        for (const auto& [key, topics] : auth.topic_permissions())
            if (key.first == u->name)
                for (const auto& [x, t] : *topics) a.push_back(topic_permission_json(key.first, key.second, t));
        return call.reply_json(a);
    }
    call.not_found();
}

// /api/permissions[/{vhost}/{user}] and /api/vhosts/{vhost}/permissions.
void Api::get_permissions(Call& call) {
    if (!require(call, Need::Administrator)) return;
    const auto& s = call.seg();
    const auto& auth = broker_.auth();
    if (s[1] == "permissions" && s.size() == 4) {
        if (!view_.has_vhost(s[2])) return call.not_found();
        const broker::Permissions* p = auth.find_permissions(s[3], s[2]);
        if (!p) return call.not_found();
        return call.reply_json(permission_json(s[3], s[2], *p));
    }
    std::optional<std::string> vhost;
    if (s[1] == "vhosts") {
        if (!view_.has_vhost(s[2])) return call.not_found();
        vhost = s[2];
    }
    json a = json::array();
    for (const auto& [key, p] : auth.permissions())
        if (!vhost || key.second == *vhost) a.push_back(permission_json(key.first, key.second, *p));
    call.reply_json(a);
}

// /api/topic-permissions[/{vhost}/{user}] and /api/vhosts/{vhost}/topic-permissions.
void Api::get_topic_permissions(Call& call) {
    if (!require(call, Need::Administrator)) return;
    const auto& s = call.seg();
    std::optional<std::string> vhost, user;
    if (s[1] == "vhosts") {
        if (!view_.has_vhost(s[2])) return call.not_found();
        vhost = s[2];
    } else if (s.size() == 4) {
        if (!view_.has_vhost(s[2]) || !broker_.auth().find_user(s[3])) return call.not_found();
        vhost = s[2];
        user = s[3];
    } else if (s.size() != 2) {
        return call.not_found();
    }
    json a = json::array();
    for (const auto& [key, topics] : broker_.auth().topic_permissions())
        if ((!vhost || key.second == *vhost) && (!user || key.first == *user))
            for (const auto& [x, t] : *topics) a.push_back(topic_permission_json(key.first, key.second, t));
    // One user's in one vhost: none is 404 (recorded).
    if (user && a.empty()) return call.not_found();
    call.reply_json(a);
}

// /api/vhost-limits[/{vhost}] and /api/user-limits[/{user}]: objects with limits only.
void Api::get_limits(Call& call) {
    const auto& s = call.seg();
    const bool of_vhosts = s[1] == "vhost-limits";
    if (!require(call, of_vhosts ? Need::Management : Need::Administrator)) return;
    if (s.size() > 3) return call.not_found();
    json a = json::array();
    if (of_vhosts) {
        if (s.size() == 3 && !view_.has_vhost(s[2])) return call.not_found();
        for (const std::string& v : s.size() == 3 ? std::vector<std::string>{s[2]} : vhosts_for(call)) {
            const broker::VHost* vh = broker_.find_vhost(v);
            if (!vh) continue;
            json value = vhost_limits_json(vh->limits());
            if (!value.empty()) a.push_back(json{{"vhost", v}, {"value", value}});
        }
        return call.reply_json(a);
    }
    const auto& auth = broker_.auth();
    if (s.size() == 3 && !auth.find_user(s[2])) return call.not_found();
    std::vector<std::string> names;
    if (s.size() == 3)
        names.push_back(s[2]);
    else
        for (const auto& [name, u] : auth.users()) names.push_back(name);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
        json value = user_json(*auth.find_user(n))["limits"];
        if (!value.empty()) a.push_back(json{{"user", n}, {"value", value}});
    }
    call.reply_json(a);
}

// ---- users ----------------------------------------------------------------------------------

void Api::put_user(Call& call, const std::string& name) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (!body->contains("tags")) return call.bad_request("tags_not_present");
    auto tags = parse_tags((*body)["tags"]);
    if (!tags) return call.bad_request("tags must be a comma-separated string or a list of strings");
    broker::UserSpec spec;
    spec.name = name;
    spec.tags = std::move(*tags);
    // A password wins over a password_hash, as at RabbitMQ; neither keeps the current one.
    if (auto it = body->find("password"); it != body->end() && !it->is_null()) {
        if (!it->is_string()) return call.bad_request("password must be a string");
        spec.password = it->get<std::string>();
    } else if (auto h = body->find("password_hash"); h != body->end() && !h->is_null()) {
        if (!h->is_string()) return call.bad_request("password_hash must be a string");
        spec.password_hash = h->get<std::string>();
        if (!spec.password_hash->empty() && !broker::base64_decode(*spec.password_hash))
            return call.reply_json(json{{"error", "bad_request"}, {"reason", {"not_base64", *spec.password_hash}}},
                                   400);
        if (auto a = body->find("hashing_algorithm"); a != body->end() && a->is_string())
            spec.hashing_algorithm = a->get<std::string>();
    }
    const bool existed = broker_.auth().find_user(name) != nullptr;
    if (auto e = broker_.put_user(spec)) return refuse(call, *e);
    answer_change(call, existed ? 204 : 201, true);
}

void Api::delete_user(Call& call, const std::string& name) {
    if (auto e = broker_.delete_user(name)) return refuse(call, *e);
    answer_change(call, 204, true);
}

// {"users": [...]}: all of them are checked before any is deleted.
void Api::bulk_delete_users(Call& call) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (auto missing = missing_keys(*body, {"users"})) return call.bad_request(*missing);
    const json& users = (*body)["users"];
    if (!users.is_array()) return call.bad_request("users must be a list of names");
    for (const json& u : users) {
        if (!u.is_string()) return call.bad_request("users must be a list of names");
        if (!broker_.auth().find_user(u.get<std::string>()))
            return call.reply_json(json{{"error", "bad_request"}, {"reason", {"no_such_user", u}}}, 400);
    }
    for (const json& u : users)
        if (auto e = broker_.delete_user(u.get<std::string>())) return refuse(call, *e);
    answer_change(call, 204, true);
}

// ---- permissions ----------------------------------------------------------------------------

void Api::put_permission(Call& call, const std::string& vhost, const std::string& user) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (auto missing = missing_keys(*body, {"configure", "write", "read"})) return call.bad_request(*missing);
    for (const char* k : {"configure", "write", "read"})
        if (!(*body)[k].is_string()) return call.bad_request(fmt::format("{} must be a string", k));
    if (!view_.has_vhost(vhost) || !broker_.auth().find_user(user)) return call.bad_request("vhost_or_user_not_found");
    const bool existed = broker_.auth().find_permissions(user, vhost) != nullptr;
    const std::string c = (*body)["configure"], w = (*body)["write"], r = (*body)["read"];
    if (auto e = broker_.set_permissions(user, vhost, c, w, r)) {
        if (const char* field = regex_field(*e)) {
            const std::string& pattern = std::string_view(field) == "configure" ? c
                                         : std::string_view(field) == "write"   ? w
                                                                                : r;
            return call.reply_json(json{{"error", "bad_request"}, {"reason", {"invalid_regexp", pattern, e->text}}},
                                   400);
        }
        return refuse(call, *e);
    }
    answer_change(call, existed ? 204 : 201, true);
}

void Api::delete_permission(Call& call, const std::string& vhost, const std::string& user) {
    if (!view_.has_vhost(vhost) || !broker_.auth().find_permissions(user, vhost)) return call.not_found();
    if (auto e = broker_.clear_permissions(user, vhost)) return refuse(call, *e);
    answer_change(call, 204, true);
}

void Api::put_topic_permission(Call& call, const std::string& vhost, const std::string& user) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (auto missing = missing_keys(*body, {"exchange", "write", "read"})) return call.bad_request(*missing);
    for (const char* k : {"exchange", "write", "read"})
        if (!(*body)[k].is_string()) return call.bad_request(fmt::format("{} must be a string", k));
    if (!view_.has_vhost(vhost) || !broker_.auth().find_user(user)) return call.bad_request("vhost_or_user_not_found");
    const std::string x = (*body)["exchange"], w = (*body)["write"], r = (*body)["read"];
    const broker::Access before = broker_.access(user, vhost);
    const bool existed = before.topics && before.topics->contains(x);
    if (auto e = broker_.set_topic_permissions(user, vhost, x, w, r)) {
        if (const char* field = regex_field(*e))
            return call.reply_json(
                json{{"error", "bad_request"},
                     {"reason", {"invalid_regexp", std::string_view(field) == "write" ? w : r, e->text}}},
                400);
        return refuse(call, *e);
    }
    answer_change(call, existed ? 204 : 201, true);
}

// Clears all of the user's topic permissions in the vhost, as RabbitMQ 3.10's DELETE does.
void Api::delete_topic_permission(Call& call, const std::string& vhost, const std::string& user) {
    if (!view_.has_vhost(vhost) || !broker_.auth().find_user(user) || !broker_.access(user, vhost).topics)
        return call.not_found();
    if (auto e = broker_.clear_topic_permissions(user, vhost)) return refuse(call, *e);
    answer_change(call, 204, true);
}

// ---- vhosts and limits ----------------------------------------------------------------------

void Api::put_vhost(Call& call, const std::string& name) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    broker::VHostSettings settings;
    const broker::VHost* existing = broker_.find_vhost(name);
    if (existing) settings = existing->settings();
    if (auto d = body->find("description"); d != body->end() && !d->is_null()) {
        if (!d->is_string()) return call.bad_request("description must be a string");
        settings.description = d->get<std::string>();
    }
    if (auto t = body->find("tags"); t != body->end() && !t->is_null()) {
        auto tags = parse_tags(*t);
        if (!tags) return call.bad_request("tags must be a comma-separated string or a list of strings");
        settings.tags = std::move(*tags);
    }
    if (auto e = broker_.add_vhost(name, settings)) return refuse(call, *e);
    // RabbitMQ gives the user who creates a vhost through the API full permissions in it.
    if (!existing && !broker_.auth().find_permissions(call.user.name, name))
        if (auto e = broker_.set_permissions(call.user.name, name, ".*", ".*", ".*")) return refuse(call, *e);
    answer_change(call, existing ? 204 : 201, true);
}

void Api::delete_vhost(Call& call, const std::string& name) {
    if (auto e = broker_.delete_vhost(name)) return refuse(call, *e);
    answer_change(call, 204, true);
}

// PUT and DELETE /api/vhost-limits/{vhost}/{name}, /api/user-limits/{user}/{name}.
void Api::change_limit(Call& call) {
    const auto& s = call.seg();
    const bool of_vhost = s[1] == "vhost-limits";
    const std::string &owner = s[2], &name = s[3];
    if (of_vhost && !view_.has_vhost(owner)) return call.error(404, "not_found", "vhost_not_found");
    const bool known = of_vhost ? (name == "max-connections" || name == "max-queues")
                                : (name == "max-connections" || name == "max-channels");
    std::optional<std::int64_t> value;
    if (call.is("PUT")) {
        auto body = call.body_json();
        if (!body) return;
        if (!body->is_object()) return call.bad_request("not_json");
        if (auto missing = missing_keys(*body, {"value"})) return call.bad_request(*missing);
        const json& v = (*body)["value"];
        // RabbitMQ's validation texts (rabbit_vhost_limit, rabbit_auth_backend_internal).
        if (!known)
            return call.bad_request(
                of_vhost ? fmt::format("Validation failed\n\nUnrecognised terms [{{<<\"{}\">>,{}}}] "
                                       "in limits\n",
                                       name, erlang_text(v))
                         : fmt::format("Unrecognised terms [{{<<\"{}\">>,{}}}] in user-limits", name, erlang_text(v)));
        if (!v.is_number_integer()) {
            const std::string text = fmt::format("{} should be a number, actually was {}", name, erlang_text(v));
            return call.bad_request(of_vhost ? "Validation failed\n\n" + text + "\n" : text);
        }
        value = v.get<std::int64_t>();
    } else if (!call.is("DELETE")) {
        return call.method_not_allowed();
    }
    const broker::User* u = of_vhost ? nullptr : broker_.auth().find_user(owner);
    if (!of_vhost && !u) {
        if (!value) return call.not_found();
        return call.reply_json(json{{"error", "bad_request"}, {"reason", {"no_such_user", owner}}}, 400);
    }
    // Deleting a limit that is not set, or has no such name, changes nothing: 204 (recorded).
    if (!known) return call.reply(204);
    broker::AdminStatus e;
    if (of_vhost) {
        broker::VHostLimits limits = broker_.find_vhost(owner)->limits();
        (name == "max-connections" ? limits.max_connections : limits.max_queues) = value;
        e = broker_.set_vhost_limits(owner, limits);
    } else {
        broker::UserLimits limits = u->limits;
        (name == "max-connections" ? limits.max_connections : limits.max_channels) = value;
        e = broker_.set_user_limits(owner, limits);
    }
    if (e) return refuse(call, *e);
    answer_change(call, 204, true);
}

}  // namespace warren::mgmt
