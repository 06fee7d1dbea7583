// See policy.hpp. The checks and texts follow rabbit_policy:validation/3 and
// rabbit_policies:validate_policy0/2 of RabbitMQ 3.10 (ha-mode and queue-master-locator:
// rabbit_mirror_queue_misc and rabbit_queue_location_validator), recorded from a 3.10.8 node.
#include "broker/policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

namespace warren::broker {

using json = nlohmann::json;

std::string_view apply_to_name(PolicyApplyTo a) {
    switch (a) {
        case PolicyApplyTo::Queues:
            return "queues";
        case PolicyApplyTo::Exchanges:
            return "exchanges";
        case PolicyApplyTo::All:
            return "all";
    }
    return "all";
}

namespace {

// RabbitMQ's largest timer (?MAX_EXPIRY_TIMER). RabbitMQ's policy check takes larger TTLs and
// the queue then fails to arm its timer; Warren refuses them.
constexpr std::uint64_t max_expiry_timer = 4294967295ull;

// Keys Warren accepts and ignores, as RabbitMQ 3.10 (with the federation plugin) knows them.
constexpr std::array<std::string_view, 17> ignored_keys = {"ha-mode",
                                                           "ha-params",
                                                           "ha-sync-mode",
                                                           "ha-sync-batch-size",
                                                           "ha-promote-on-shutdown",
                                                           "ha-promote-on-failure",
                                                           "queue-master-locator",
                                                           "queue-version",
                                                           "max-in-memory-length",
                                                           "max-in-memory-bytes",
                                                           "dead-letter-strategy",
                                                           "max-age",
                                                           "stream-max-segment-size-bytes",
                                                           "queue-leader-locator",
                                                           "initial-cluster-size",
                                                           "federation-upstream",
                                                           "federation-upstream-set"};

// RabbitMQ 4.3 lets operator policies set the delayed-retry keys of its own (not LavinMQ's
// multiplier, nor Warren's jitter).
constexpr std::array<std::string_view, 10> operator_keys = {
    "expires",          "message-ttl",          "max-length",
    "max-length-bytes", "max-in-memory-length", "max-in-memory-bytes",
    "delivery-limit",   "delayed-retry-type",   "delayed-retry-min",
    "delayed-retry-max"};

// A JSON value as Erlang's ~p prints the term RabbitMQ decoded it to.
std::string erlang_term(const json& v) {
    switch (v.type()) {
        case json::value_t::string: {
            std::string out = "<<\"";
            for (char c : v.get_ref<const std::string&>()) {
                if (c == '"' || c == '\\') out += '\\';
                out += c;
            }
            return out + "\">>";
        }
        case json::value_t::boolean:
            return v.get<bool>() ? "true" : "false";
        case json::value_t::null:
            return "null";
        case json::value_t::number_float:
            return fmt::format("{}", v.get<double>());
        case json::value_t::array: {
            std::string out = "[";
            for (const json& e : v) out += (out.size() > 1 ? "," : "") + erlang_term(e);
            return out + "]";
        }
        case json::value_t::object: {
            std::string out = "#{";
            for (const auto& [k, e] : v.items())
                out += fmt::format("{}{} => {}", out.size() > 2 ? "," : "", erlang_term(json(k)), erlang_term(e));
            return out + "}";
        }
        default:
            return v.dump();  // integers
    }
}

std::optional<std::uint64_t> non_negative(const json& v, std::int64_t min = 0) {
    if (v.is_number_unsigned()) {
        auto n = v.get<std::uint64_t>();
        if (n >= static_cast<std::uint64_t>(min)) return n;
        return std::nullopt;
    }
    if (v.is_number_integer() && v.get<std::int64_t>() >= min) return static_cast<std::uint64_t>(v.get<std::int64_t>());
    return std::nullopt;
}

// One key of a definition: nullopt when accepted (recorded in `d`), or RabbitMQ's text.
// `known` is set false for a key neither RabbitMQ nor Warren knows.
std::optional<std::string> check_key(const std::string& key, const json& v, PolicyDefinition& d, bool& known) {
    known = true;
    auto bad = [&](std::string_view what) { return fmt::format("{} is not a valid {}", erlang_term(v), what); };
    auto string_key = [&](std::optional<std::string>& out, std::string_view what) -> std::optional<std::string> {
        if (!v.is_string()) return bad(what);
        out = v.get<std::string>();
        return std::nullopt;
    };
    auto number_key = [&](std::optional<std::uint64_t>& out, std::string_view what, std::int64_t min,
                          std::uint64_t max) -> std::optional<std::string> {
        auto n = non_negative(v, min);
        if (!n || *n > max) return bad(what);
        out = *n;
        return std::nullopt;
    };
    constexpr std::uint64_t any = ~std::uint64_t{0};
    if (key == "dead-letter-exchange") return string_key(d.dead_letter_exchange, "dead letter exchange name");
    if (key == "dead-letter-routing-key") return string_key(d.dead_letter_routing_key, "dead letter routing key");
    if (key == "alternate-exchange") return string_key(d.alternate_exchange, "alternate exchange name");
    if (key == "message-ttl") return number_key(d.message_ttl_ms, "message TTL", 0, max_expiry_timer);
    if (key == "expires") return number_key(d.expires_ms, "queue expiry", 1, max_expiry_timer);
    if (key == "max-length") return number_key(d.max_length, "maximum length", 0, any);
    if (key == "max-length-bytes") return number_key(d.max_length_bytes, "maximum length in bytes", 0, any);
    if (key == "delivery-limit") return number_key(d.delivery_limit, "delivery limit", 0, any);
    if (key == "overflow") {
        std::string s = v.is_string() ? v.get<std::string>() : "";
        if (s == "drop-head")
            d.overflow = Overflow::DropHead;
        else if (s == "reject-publish")
            d.overflow = Overflow::RejectPublish;
        else if (s == "reject-publish-dlx")
            d.overflow = Overflow::RejectPublishDlx;
        else
            return bad("overflow value");
        return std::nullopt;
    }
    if (key == "delayed-retry-type") {
        const std::string s = v.is_string() ? v.get<std::string>() : "";
        if (s == "all")
            d.retry.type = RetryType::All;
        else if (s == "failed")
            d.retry.type = RetryType::Failed;
        else if (s == "returned")
            d.retry.type = RetryType::Returned;
        else if (s == "disabled")
            d.retry.type = RetryType::Disabled;
        else
            return fmt::format("{} is not a valid delayed retry type. Must be one of: all, failed, returned, disabled",
                               erlang_term(v));
        return std::nullopt;
    }
    // rabbit_quorum_queue:validate_policy0/2's texts; Warren also bounds the delays by its
    // largest timer, as it does the x- arguments.
    auto retry_number = [&](std::optional<std::uint64_t>& out, std::string_view what, std::int64_t min,
                            std::uint64_t max, std::string_view must) -> std::optional<std::string> {
        auto n = non_negative(v, min);
        if (!n || *n > max)
            return fmt::format("{} is not a valid delayed retry {}. Must be {}", erlang_term(v), what, must);
        out = *n;
        return std::nullopt;
    };
    if (key == "delayed-retry-min")
        return retry_number(d.retry.min_ms, "minimum delay", 1, max_retry_delay_ms,
                            "a positive integer (at most 4294967295)");
    if (key == "delayed-retry-max")
        return retry_number(d.retry.max_ms, "maximum delay", 1, max_retry_delay_ms,
                            "a positive integer (at most 4294967295)");
    if (key == "delayed-retry-multiplier")
        return retry_number(d.retry.multiplier, "multiplier", 1, max_retry_delay_ms, "a positive integer");
    if (key == "delayed-retry-jitter")
        return retry_number(d.retry.jitter_percent, "jitter", 0, 100, "an integer from 0 to 100");
    if (key == "delayed-message") {
        if (!v.is_boolean()) return bad("delayed-message value");
        d.delayed_message = v.get<bool>();
        return std::nullopt;
    }
    if (key == "queue-mode") {
        if (!v.is_string() || (v.get<std::string>() != "default" && v.get<std::string>() != "lazy"))
            return bad("queue-mode value");
        d.queue_mode = v.get<std::string>();
        return std::nullopt;
    }
    if (std::find(ignored_keys.begin(), ignored_keys.end(), key) == ignored_keys.end()) {
        known = false;
        return std::nullopt;
    }
    // The ignored keys' values are checked where RabbitMQ's check is simple, so that a file
    // Warren takes would also load into RabbitMQ.
    std::optional<std::uint64_t> unused;
    if (key == "ha-mode" && !(v.is_string() && (v == "all" || v == "exactly" || v == "nodes")))
        return bad("ha-mode value");
    if (key == "queue-master-locator" &&
        !(v.is_string() && (v == "min-masters" || v == "client-local" || v == "random")))
        return fmt::format("{} invalid queue-master-locator value", erlang_term(v));
    if (key == "queue-version" && !(v == 1 || v == 2)) return bad("queue-version value");
    if (key == "max-in-memory-length" || key == "max-in-memory-bytes")
        if (auto e = number_key(unused, "maximum memory in bytes", 0, any)) return e;
    if (key == "dead-letter-strategy" && !(v == "at-most-once" || v == "at-least-once"))
        return bad("dead letter strategy");
    d.ignored.push_back(key);
    return std::nullopt;
}

}  // namespace

std::variant<Policy, PolicyError> make_policy(const PolicySpec& spec, PolicyKind kind) {
    Policy p;
    p.name = spec.name;
    p.pattern = spec.pattern;
    p.priority = spec.priority;
    // re:run with an empty pattern matches every name (unlike an empty permission).
    auto compiled = PermissionRegex::compile(spec.pattern.empty() ? std::string_view("(?:)") : spec.pattern);
    if (auto* e = std::get_if<std::string>(&compiled))
        return PolicyError{"pattern", fmt::format("pattern should be regular expression but is invalid: {}", *e)};
    p.regex = std::get<PermissionRegex>(std::move(compiled));
    if (spec.apply_to == "queues")
        p.apply_to = PolicyApplyTo::Queues;
    else if (spec.apply_to == "exchanges")
        p.apply_to = PolicyApplyTo::Exchanges;
    else if (spec.apply_to == "all")
        p.apply_to = PolicyApplyTo::All;
    else
        return PolicyError{"apply-to", fmt::format("apply-to '{}' unrecognised; should be 'queues', 'exchanges' or "
                                                   "'all'",
                                                   spec.apply_to)};

    json def = json::parse(spec.definition, nullptr, false);
    if (def.is_discarded())
        return PolicyError{"definition", fmt::format("JSON decoding error. Reason: '{}' is not JSON", spec.definition)};
    if (!def.is_object())
        return PolicyError{"definition", fmt::format("definition must be a dictionary: {}", erlang_term(def))};
    if (def.empty()) return PolicyError{"definition", "no policy provided"};
    // Known keys first, each with its own text; then the unknown ones, all together.
    json unknown = json::array();
    for (const auto& [key, value] : def.items()) {
        bool operator_allowed = std::find(operator_keys.begin(), operator_keys.end(), key) != operator_keys.end();
        bool known = false;
        if (kind == PolicyKind::Operator && !operator_allowed) {
            unknown.push_back(json::array({key, value}));
            continue;
        }
        if (auto e = check_key(key, value, p.keys, known)) return PolicyError{"definition", *e};
        if (!known) unknown.push_back(json::array({key, value}));
    }
    // rabbit_quorum_queue:validate_delayed_retry_constraints/1, once every key is known good.
    if (unknown.empty()) {
        const RetryArgs& r = p.keys.retry;
        if (r.type && *r.type != RetryType::Disabled && !r.min_ms)
            return PolicyError{"definition", fmt::format("delayed-retry-min is required when delayed-retry-type is {}",
                                                         retry_type_name(*r.type))};
        if (r.min_ms && r.max_ms && *r.max_ms < *r.min_ms)
            return PolicyError{"definition", fmt::format("delayed-retry-max ({}) must not be smaller than "
                                                         "delayed-retry-min ({})",
                                                         *r.max_ms, *r.min_ms)};
    }
    if (!unknown.empty()) {
        std::string list;
        for (const json& kv : unknown)
            list += fmt::format("{}{{{},{}}}", list.empty() ? "" : ",", erlang_term(kv[0]), erlang_term(kv[1]));
        return PolicyError{"definition", fmt::format("[{}] are not recognised policy settings", list)};
    }
    p.definition = def.dump();
    return p;
}

const PolicyRef* match_policy(const std::vector<PolicyRef>& policies, std::string_view name, bool queue) {
    const PolicyRef* best = nullptr;
    for (const PolicyRef& p : policies) {
        if (queue ? !p->applies_to_queues() : !p->applies_to_exchanges()) continue;
        if (best && (p->priority < (*best)->priority || (p->priority == (*best)->priority && p->name >= (*best)->name)))
            continue;
        if (p->regex.matches(name)) best = &p;
    }
    return best;
}

namespace {

std::optional<std::uint64_t> merged(const std::optional<std::uint64_t> PolicyDefinition::*key, const Policy* policy,
                                    const Policy* op) {
    std::optional<std::uint64_t> a = policy ? policy->keys.*key : std::nullopt;
    std::optional<std::uint64_t> b = op ? op->keys.*key : std::nullopt;
    if (a && b) return std::min(*a, *b);
    return a ? a : b;
}

void resolve_min(std::optional<std::uint64_t>& value, bool declared, std::optional<std::uint64_t> from_policy) {
    if (!from_policy) return;
    value = declared && value ? std::min(*value, *from_policy) : *from_policy;
}

}  // namespace

QueueArgs effective_queue_args(const QueueArgs& declared, const protocol::FieldTable& raw, const Policy* policy,
                               const Policy* op) {
    QueueArgs a = declared;
    if (!policy && !op) return a;
    resolve_min(a.message_ttl_ms, raw.find(args::message_ttl), merged(&PolicyDefinition::message_ttl_ms, policy, op));
    resolve_min(a.expires_ms, raw.find(args::expires), merged(&PolicyDefinition::expires_ms, policy, op));
    resolve_min(a.max_length, raw.find(args::max_length), merged(&PolicyDefinition::max_length, policy, op));
    resolve_min(a.max_length_bytes, raw.find(args::max_length_bytes),
                merged(&PolicyDefinition::max_length_bytes, policy, op));
    // A quorum queue's default limit (20) is no declared value: a policy replaces it.
    resolve_min(a.delivery_limit, raw.find(args::delivery_limit),
                merged(&PolicyDefinition::delivery_limit, policy, op));
    // Operator policies cannot set these: only the policy may, and the argument wins.
    if (policy) {
        if (!raw.find(args::dead_letter_exchange) && policy->keys.dead_letter_exchange)
            a.dead_letter_exchange = policy->keys.dead_letter_exchange;
        if (!raw.find(args::dead_letter_routing_key) && policy->keys.dead_letter_routing_key)
            a.dead_letter_routing_key = policy->keys.dead_letter_routing_key;
        if (!raw.find(args::overflow) && policy->keys.overflow) a.overflow = *policy->keys.overflow;
    }
    return a;
}

RetryArgs effective_retry_policy(const Policy* policy, const Policy* op) {
    RetryArgs r = policy ? policy->keys.retry : RetryArgs{};
    if (!op) return r;
    const RetryArgs& o = op->keys.retry;
    if (o.type) r.type = o.type;
    if (o.min_ms) r.min_ms = r.min_ms ? std::max(*r.min_ms, *o.min_ms) : *o.min_ms;
    if (o.max_ms) r.max_ms = r.max_ms ? std::min(*r.max_ms, *o.max_ms) : *o.max_ms;
    return r;
}

bool policy_delays(const Policy* policy) {
    return policy && policy->keys.delayed_message.value_or(false);
}

std::optional<std::string> effective_alternate_exchange(const protocol::FieldTable& arguments, const Policy* policy) {
    if (const auto* ae = arguments.find(args::alternate_exchange); ae && ae->as_string()) return *ae->as_string();
    if (policy) return policy->keys.alternate_exchange;
    return std::nullopt;
}

std::string effective_policy_definition(const Policy* policy, const Policy* op) {
    json out = json::object();
    if (policy) out = json::parse(policy->definition);
    if (op) {
        const json op_definition = json::parse(op->definition);
        for (const auto& [key, value] : op_definition.items()) {
            auto it = out.find(key);
            if (it == out.end() || key == "delayed-retry-type")
                out[key] = value;  // the operator policy's type wins (rabbit_quorum_queue)
            else if (it->is_number_integer() && value.is_number_integer())
                *it = key == "delayed-retry-min" ? std::max(it->get<std::int64_t>(), value.get<std::int64_t>())
                                                 : std::min(it->get<std::int64_t>(), value.get<std::int64_t>());
        }
    }
    return out.dump();
}

}  // namespace warren::broker
