// Policies and operator policies (rabbit_policy, rabbit_policies in RabbitMQ 3.10): a policy
// and RabbitMQ's checks of it (with its texts), which policy of a vhost applies to a queue or an
// exchange, and how a queue's arguments, its policy and its operator policy combine into the
// arguments the queue acts on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/permission_regex.hpp"
#include "broker/queue_args.hpp"
#include "broker/retry_settings.hpp"
#include "protocol/field_table.hpp"

namespace warren::broker {

enum class PolicyKind : std::uint8_t { Policy, Operator };
enum class PolicyApplyTo : std::uint8_t { Queues, Exchanges, All };
std::string_view apply_to_name(PolicyApplyTo a);  // "queues", "exchanges", "all"

// The keys of a definition that Warren acts on; an absent key says nothing.
struct PolicyDefinition {
    std::optional<std::string> dead_letter_exchange;
    std::optional<std::string> dead_letter_routing_key;
    std::optional<std::string> alternate_exchange;
    std::optional<std::uint64_t> message_ttl_ms;
    std::optional<std::uint64_t> expires_ms;
    std::optional<std::uint64_t> max_length;
    std::optional<std::uint64_t> max_length_bytes;
    std::optional<std::uint64_t> delivery_limit;
    std::optional<Overflow> overflow;
    std::optional<std::string> queue_mode;  // accepted; every queue pages to disk the same way
    // delayed-retry-type, -min, -max (RabbitMQ 4.3), -multiplier (LavinMQ), -jitter (Warren).
    RetryArgs retry;
    // LavinMQ's delayed-message: true makes an exchange hold messages by their x-delay.
    std::optional<bool> delayed_message;
    // Keys RabbitMQ knows and Warren accepts without acting on them (ha-mode, queue-version, ...).
    std::vector<std::string> ignored;
};

struct Policy {
    std::string name;
    std::string pattern;
    PermissionRegex regex;
    PolicyApplyTo apply_to = PolicyApplyTo::All;
    std::int64_t priority = 0;
    std::string definition;  // the definition as a JSON object (keys sorted), for lists and export
    PolicyDefinition keys;

    bool applies_to_queues() const { return apply_to != PolicyApplyTo::Exchanges; }
    bool applies_to_exchanges() const { return apply_to != PolicyApplyTo::Queues; }
};
using PolicyRef = std::shared_ptr<const Policy>;

// What an operator gives: the definition as JSON text (an object).
struct PolicySpec {
    std::string vhost = "/";
    std::string name;
    std::string pattern;
    std::string apply_to = "all";
    std::int64_t priority = 0;
    std::string definition;
};

// Why a policy was refused: the field ("definition", "pattern", "apply-to", "name") and
// RabbitMQ's text for it (what follows "Validation failed" in rabbitmqctl and the HTTP API),
// e.g. `<<"x">> is not a valid overflow value` or `[{<<"foo">>,1}] are not recognised policy
// settings`.
struct PolicyError {
    std::string field;
    std::string text;
};

// Checks a policy as rabbit_policy:validate/5 does: the pattern compiles, apply-to is known,
// the definition is a non-empty object whose keys the kind allows (operator policies take only
// expires, message-ttl, max-length, max-length-bytes, max-in-memory-*, delivery-limit) and
// whose values rabbit_policies accepts.
std::variant<Policy, PolicyError> make_policy(const PolicySpec& spec, PolicyKind kind);

// The policy that applies to a queue or an exchange named `name` among `policies`: the
// matching one of highest priority. RabbitMQ leaves ties to its table's hash order; Warren
// picks the name that sorts first, so the choice never changes across restarts.
const PolicyRef* match_policy(const std::vector<PolicyRef>& policies, std::string_view name, bool queue);

// A queue's arguments with its policy and operator policy applied, as RabbitMQ's classic queue
// (rabbit_amqqueue_process:process_args_policy/1) combines them. Between a policy and an
// operator policy, each numeric limit takes the smaller value (rabbit_policies:
// merge_policy_value/3). Between that and the queue's own argument: expires, message-ttl,
// max-length, max-length-bytes and delivery-limit take the smaller; dead-letter-exchange,
// dead-letter-routing-key and overflow take the argument when there is one.
// `raw` is the declared table: it tells a declared value from a default.
QueueArgs effective_queue_args(const QueueArgs& declared, const protocol::FieldTable& raw, const Policy* policy,
                               const Policy* operator_policy);

// The retry keys of a policy and an operator policy merged as RabbitMQ 4.3's rabbit_quorum_queue:
// merge_policy_value/3 merges them: the operator policy's type, the larger minimum, the smaller
// maximum; multiplier and jitter only a policy sets. Empty when neither has any.
RetryArgs effective_retry_policy(const Policy* policy, const Policy* operator_policy);

// Whether a policy makes an exchange delayed (LavinMQ's delayed-message key).
bool policy_delays(const Policy* policy);

// An exchange's alternate exchange: its argument when it has one, else its policy's.
std::optional<std::string> effective_alternate_exchange(const protocol::FieldTable& arguments, const Policy* policy);

// rabbit_policy:merge_operator_definitions/2 as JSON text: every key of either, the smaller
// value where both set a numeric limit; "{}" when neither policy applies. For the management
// API's effective_policy_definition.
std::string effective_policy_definition(const Policy* policy, const Policy* operator_policy);

}  // namespace warren::broker
