// A vhost's policies and operator policies: kept by name, matched against every queue and
// exchange whenever one changes (rabbit_policy:update_matched_objects/3), and against each new
// queue and exchange when it is created.
#include "broker/broker.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

PolicyRef VHost::find_policy(PolicyKind kind, std::string_view name) const {
    for (const PolicyRef& p : policies(kind))
        if (p->name == name) return p;
    return nullptr;
}

void VHost::put_policy(PolicyKind kind, Policy policy) {
    auto& list = kind == PolicyKind::Policy ? policies_ : operator_policies_;
    auto ref = std::make_shared<const Policy>(std::move(policy));
    auto it = std::find_if(list.begin(), list.end(), [&](const PolicyRef& p) { return p->name == ref->name; });
    if (it != list.end())
        *it = std::move(ref);
    else
        list.push_back(std::move(ref));
    apply_policies_everywhere();
}

bool VHost::erase_policy(PolicyKind kind, std::string_view name) {
    auto& list = kind == PolicyKind::Policy ? policies_ : operator_policies_;
    if (std::erase_if(list, [&](const PolicyRef& p) { return p->name == name; }) == 0) return false;
    apply_policies_everywhere();
    return true;
}

void VHost::apply_policies(Queue& queue) {
    const PolicyRef* p = match_policy(policies_, queue.name(), true);
    const PolicyRef* op = match_policy(operator_policies_, queue.name(), true);
    PolicyRef policy = p ? *p : nullptr, operator_policy = op ? *op : nullptr;
    if (policy == queue.policy() && operator_policy == queue.operator_policy()) return;
    queue.set_policies(std::move(policy), std::move(operator_policy));
}

bool VHost::apply_policies(ExchangeEntry& x) {
    // The default exchange routes by queue name alone (rabbit_exchange:route/2): no policy.
    if (x.name.empty()) return false;
    const PolicyRef* p = match_policy(policies_, x.name, false);
    const PolicyRef* op = match_policy(operator_policies_, x.name, false);
    x.policy = p ? *p : nullptr;
    x.operator_policy = op ? *op : nullptr;
    x.alternate_exchange = effective_alternate_exchange(x.arguments, x.policy.get());
    // LavinMQ's delayed-message turns delaying on (never off: a declared delay stays). Not on
    // the built-in amq.* exchanges: they are not recorded, so what they held could not be
    // found again after a restart.
    x.delaying = x.declared_delayed || (policy_delays(x.policy.get()) && !x.name.starts_with("amq."));
    if (!x.delaying || x.delayed) return false;
    make_delayed(x, 0);
    return true;
}

void VHost::apply_policies_everywhere() {
    // An exchange a policy made delayed is recorded again, with the id its messages are stored
    // under.
    for (auto& [name, x] : exchanges_)
        if (apply_policies(*x)) record_exchange(*x);
    // A queue over a new length limit pushes what it drops onto the dead-letter list; the
    // caller drains it (nothing here deletes a queue).
    for (auto& [name, q] : queues_) apply_policies(*q);
}

}  // namespace warren::broker
