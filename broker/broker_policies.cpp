// The Broker's admin API for policies, operator policies and global parameters: each change is
// checked whole (policy.hpp), applied to the vhost's queues and exchanges at once, and recorded
// in the definitions log.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "broker/broker.hpp"
#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "protocol/utf8.hpp"

namespace warren::broker {

namespace {

std::string_view kind_name(PolicyKind kind) {
    return kind == PolicyKind::Policy ? "policy" : "operator policy";
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

void Broker::record_policy(const VHost& vh, PolicyKind kind, std::string_view name) {
    if (!durability_) return;
    const bool op = kind == PolicyKind::Operator;
    PolicyRef p = vh.find_policy(kind, name);
    if (!p) {
        append_admin_record(definitions::policy_delete_record(vh.id(), op, name));
        return;
    }
    append_admin_record(definitions::policy_record(
        {vh.id(), op, p->name, p->pattern, std::string(apply_to_name(p->apply_to)), p->priority, p->definition}));
}

AdminStatus Broker::put_policy(PolicyKind kind, const PolicySpec& spec) {
    if (spec.name.empty() || spec.name.size() > 255 || !protocol::is_valid_utf8(spec.name))
        return AdminError{AdminError::Kind::Invalid, "name",
                          fmt::format("field 'name': a {} name is UTF-8, 1 to 255 bytes", kind_name(kind))};
    auto made = make_policy(spec, kind);
    if (auto* e = std::get_if<PolicyError>(&made)) return AdminError{AdminError::Kind::Invalid, e->field, e->text};
    VHost* vh = find_vhost(spec.vhost);
    if (!vh)
        return AdminError{AdminError::Kind::NotFound, "vhost", fmt::format("vhost '{}' does not exist", spec.vhost)};
    Policy& policy = std::get<Policy>(made);
    if (!policy.keys.ignored.empty())
        log::warning(
            "{} '{}' in vhost '{}': {} accepted and ignored (Warren is one node with one queue engine: no "
            "mirroring, federation or streams)",
            kind_name(kind), log::escaped(spec.name), log::escaped(spec.vhost), join(policy.keys.ignored));
    vh->put_policy(kind, std::move(policy));
    record_policy(*vh, kind, spec.name);
    log::info("{} '{}' set in vhost '{}' for pattern '{}'", kind_name(kind), log::escaped(spec.name),
              log::escaped(spec.vhost), log::escaped(spec.pattern));
    drain_dead_letters();
    return std::nullopt;
}

AdminStatus Broker::erase_policy(PolicyKind kind, std::string_view vhost, std::string_view name) {
    VHost* vh = find_vhost(vhost);
    if (!vh) return AdminError{AdminError::Kind::NotFound, "vhost", fmt::format("vhost '{}' does not exist", vhost)};
    // rabbitmqctl's words for a policy that is not there.
    if (!vh->erase_policy(kind, name))
        return AdminError{AdminError::Kind::NotFound, "name", "Parameter does not exist"};
    record_policy(*vh, kind, name);
    drain_dead_letters();
    return std::nullopt;
}

AdminStatus Broker::set_policy(const PolicySpec& spec) {
    return put_policy(PolicyKind::Policy, spec);
}
AdminStatus Broker::set_operator_policy(const PolicySpec& spec) {
    return put_policy(PolicyKind::Operator, spec);
}
AdminStatus Broker::clear_policy(std::string_view vhost, std::string_view name) {
    return erase_policy(PolicyKind::Policy, vhost, name);
}
AdminStatus Broker::clear_operator_policy(std::string_view vhost, std::string_view name) {
    return erase_policy(PolicyKind::Operator, vhost, name);
}

std::vector<Broker::PolicyListing> Broker::list_policies(PolicyKind kind, std::optional<std::string_view> vhost) const {
    std::vector<PolicyListing> out;
    for (const auto& [name, vh] : vhosts_) {
        if (vhost && name != *vhost) continue;
        for (const PolicyRef& p : vh->policies(kind)) out.push_back({name, p});
    }
    std::sort(out.begin(), out.end(), [](const PolicyListing& a, const PolicyListing& b) {
        if (a.vhost != b.vhost) return a.vhost < b.vhost;
        if (a.policy->priority != b.policy->priority) return a.policy->priority > b.policy->priority;
        return a.policy->name < b.policy->name;
    });
    return out;
}

// ---- global parameters ----------------------------------------------------------------------

AdminStatus Broker::set_global_parameter(std::string_view name, std::string_view value_json) {
    if (name != "cluster_name")
        return AdminError{AdminError::Kind::Invalid, "name",
                          fmt::format("global parameter '{}' is unknown to Warren (it keeps cluster_name)", name)};
    auto value = nlohmann::json::parse(value_json, nullptr, false);
    if (value.is_discarded() || !value.is_string() || !protocol::is_valid_utf8(value.get<std::string>()))
        return AdminError{AdminError::Kind::Invalid, "value", "field 'value': cluster_name is a JSON string"};
    std::string text = value.dump();
    global_parameters_[std::string(name)] = text;
    if (durability_) append_admin_record(definitions::global_parameter_record({std::string(name), text}));
    return std::nullopt;
}

AdminStatus Broker::clear_global_parameter(std::string_view name) {
    auto it = global_parameters_.find(name);
    if (it == global_parameters_.end())
        return AdminError{AdminError::Kind::NotFound, "name", "Parameter does not exist"};
    global_parameters_.erase(it);
    if (durability_) append_admin_record(definitions::global_parameter_delete_record(name));
    return std::nullopt;
}

}  // namespace warren::broker
