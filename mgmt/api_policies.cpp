// Policies and operator policies through the API (/api/policies, /api/operator-policies), and
// definitions imports (POST /api/definitions and /api/definitions/{vhost}) through the Broker's
// own import, as RabbitMQ 3.10 answers them (the export is built in pieces: api_read.cpp).
// Changes go through the Broker's admin API, which checks them whole (RabbitMQ's validation
// texts), applies them at once and stores them; the answer waits until they are stored.
#include <fmt/format.h>

#include "broker/broker.hpp"
#include "broker/log.hpp"
#include "mgmt/api.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/auth_json.hpp"

namespace warren::mgmt {
namespace {

broker::PolicyKind kind_of(const std::string& top) {
    return top == "operator-policies" ? broker::PolicyKind::Operator : broker::PolicyKind::Policy;
}

}  // namespace

json policy_json(const std::string& vhost, const broker::Policy& p) {
    return json{{"vhost", vhost},
                {"name", p.name},
                {"pattern", p.pattern},
                {"apply-to", std::string(broker::apply_to_name(p.apply_to))},
                {"definition", json::parse(p.definition, nullptr, false)},
                {"priority", p.priority}};
}

void Api::get_policies(Call& call) {
    if (!require(call, Need::Policymaker)) return;
    const auto& s = call.seg();
    const broker::PolicyKind kind = kind_of(s[1]);
    std::optional<std::string_view> vhost;
    if (s.size() >= 3) {
        if (!broker_.find_vhost(s[2])) return call.not_found();
        vhost = s[2];
    }
    json out = json::array();
    for (const auto& l : broker_.list_policies(kind, vhost)) {
        if (s.size() == 4) {
            if (l.policy->name == s[3]) return call.reply_json(policy_json(l.vhost, *l.policy));
            continue;
        }
        out.push_back(policy_json(l.vhost, *l.policy));
    }
    if (s.size() == 4) return call.not_found();
    call.reply_json(out);
}

void Api::put_policy(Call& call, const std::string& vhost, const std::string& name) {
    if (!require(call, Need::Policymaker)) return;
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    std::string missing;
    for (const char* k : {"pattern", "definition"})
        if (!body->contains(k)) missing += fmt::format("{}{{key_missing,{}}}", missing.empty() ? "" : ",", k);
    if (!missing.empty()) return call.bad_request("[" + missing + "]");
    if (!broker_.find_vhost(vhost)) return call.not_found();
    broker::PolicySpec spec;
    spec.vhost = vhost;
    spec.name = name;
    const json& pattern = (*body)["pattern"];
    const json& definition = (*body)["definition"];
    if (!pattern.is_string()) return call.bad_request("Validation failed\n\npattern should be a string\n");
    if (!definition.is_object())
        return call.bad_request("Validation failed\n\ndefinition must be a dictionary: " + definition.dump() + "\n");
    spec.pattern = pattern.get<std::string>();
    spec.definition = definition.dump();
    if (auto it = body->find("apply-to"); it != body->end()) {
        if (!it->is_string()) return call.bad_request("Validation failed\n\napply-to should be a string\n");
        spec.apply_to = it->get<std::string>();
    }
    if (auto it = body->find("priority"); it != body->end()) {
        if (it->is_number_integer())
            spec.priority = it->get<std::int64_t>();
        else if (it->is_string() && !it->get<std::string>().empty() &&
                 it->get<std::string>().find_first_not_of("-0123456789") == std::string::npos)
            spec.priority = std::stoll(it->get<std::string>());  // rabbitmqadmin sends it as text
        else
            return call.bad_request("Validation failed\n\npriority should be an integer\n");
    }
    const broker::PolicyKind kind = kind_of(call.seg()[1]);
    bool existed = false;
    for (const auto& l : broker_.list_policies(kind, vhost)) existed = existed || l.policy->name == name;
    auto e = kind == broker::PolicyKind::Operator ? broker_.set_operator_policy(spec) : broker_.set_policy(spec);
    if (e) {
        if (e->kind == broker::AdminError::Kind::Storage) return call.error(500, "internal_error", e->text);
        if (e->kind == broker::AdminError::Kind::NotFound) return call.not_found();
        return call.bad_request("Validation failed\n\n" + e->text + "\n");
    }
    answer_change(call, existed ? 204 : 201, true);
}

void Api::delete_policy(Call& call, const std::string& vhost, const std::string& name) {
    if (!require(call, Need::Policymaker)) return;
    if (!broker_.find_vhost(vhost)) return call.not_found();
    const broker::PolicyKind kind = kind_of(call.seg()[1]);
    bool exists = false;
    for (const auto& l : broker_.list_policies(kind, vhost)) exists = exists || l.policy->name == name;
    if (!exists) return call.not_found();
    auto e = kind == broker::PolicyKind::Operator ? broker_.clear_operator_policy(vhost, name)
                                                  : broker_.clear_policy(vhost, name);
    if (e) return call.error(e->kind == broker::AdminError::Kind::Storage ? 500 : 400, "bad_request", e->text);
    answer_change(call, 204, true);
}

void Api::post_all_definitions(Call& call) {
    if (!require(call, Need::Administrator)) return;
    if (call.request.body.empty()) return call.bad_request("failed_to_parse_json");
    if (auto e = broker_.import_definitions(call.request.body)) {
        if (e->kind == broker::AdminError::Kind::Storage) return call.error(500, "internal_error", e->text);
        return call.bad_request(e->text);
    }
    answer_change(call, 204, true);
}

// POST /api/definitions/{vhost}: RabbitMQ's per-vhost import takes the vhost's own sections
// (parameters, policies, queues, exchanges, bindings), puts every entry in the named vhost
// whatever its "vhost" field says, and ignores the broker-wide ones (users, vhosts,
// permissions, topic permissions, global parameters). It goes through the same all-or-nothing
// import as the whole-broker form.
void Api::post_definitions(Call& call) {
    if (!require(call, Need::Administrator)) return;
    const std::string& vhost = call.seg()[2];
    if (!broker_.find_vhost(vhost)) return call.not_found();
    if (call.request.body.empty()) return call.bad_request("failed_to_parse_json");
    json body = json::parse(call.request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return call.bad_request("failed_to_parse_json");
    json scoped = json::object();
    for (const char* key : {"parameters", "policies", "queues", "exchanges", "bindings"}) {
        auto it = body.find(key);
        if (it == body.end()) continue;
        json section = *it;
        if (section.is_array())
            for (json& entry : section)
                if (entry.is_object()) entry["vhost"] = vhost;
        scoped[key] = std::move(section);
    }
    for (const char* key : {"users", "vhosts", "permissions", "topic_permissions", "global_parameters"})
        if (auto it = body.find(key); it != body.end() && it->is_array() && !it->empty())
            log::warning("definitions import into vhost '{}': '{}' ignored, as RabbitMQ's per-vhost import does", vhost,
                         key);
    if (auto e = broker_.import_definitions(scoped.dump())) {
        if (e->kind == broker::AdminError::Kind::Storage) return call.error(500, "internal_error", e->text);
        return call.bad_request(e->text);
    }
    answer_change(call, 204, true);
}

}  // namespace warren::mgmt
