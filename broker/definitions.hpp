// What the definitions log holds: vhosts, users, permissions, durable exchanges, queues,
// bindings, policies and global parameters, as JSON records
// (one change each) and as a whole snapshot. Replaying a snapshot and the records after it gives
// a Definitions model, from which the broker builds its vhosts at start-up. Arguments keep their
// AMQP types: they are stored as the encoded field table, base64 (a JSON number would lose them).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/field_table.hpp"

namespace warren::broker::definitions {

// A limit is absent (none) or a number, as RabbitMQ keeps them.
struct StoredLimits {
    std::optional<std::int64_t> max_connections;
    std::optional<std::int64_t> max_queues;    // vhosts
    std::optional<std::int64_t> max_channels;  // users
    bool operator==(const StoredLimits&) const = default;
};

struct StoredVHost {
    std::string name;
    std::uint32_t id = 0;
    std::string description;
    std::vector<std::string> tags;
    StoredLimits limits;
};

// Users as RabbitMQ's definitions hold them: the base64 salted hash and its algorithm's name.
struct StoredUser {
    std::string name;
    std::string password_hash;
    std::string hashing_algorithm;
    std::vector<std::string> tags;
    StoredLimits limits;
};

struct StoredPermission {
    std::string user;
    std::uint32_t vhost = 0;
    std::string configure, write, read;
};

struct StoredTopicPermission {
    std::string user;
    std::uint32_t vhost = 0;
    std::string exchange;
    std::string write, read;
};

struct StoredExchange {
    std::uint32_t vhost = 0;
    std::string name;
    std::string type;
    bool auto_delete = false;
    bool internal = false;
    protocol::FieldTable arguments;
    // A delayed exchange's id in its vhost's message log (from the queues' sequence; 0: none).
    // Absent from the records of exchanges that hold nothing, and of older brokers.
    std::uint32_t id = 0;
};

struct StoredQueue {
    std::uint32_t vhost = 0;
    std::string name;
    std::uint32_t id = 0;  // the queue's id in its vhost's message log; never reused
    bool auto_delete = false;
    protocol::FieldTable arguments;
};

struct StoredBinding {
    std::uint32_t vhost = 0;
    std::string source;
    std::string destination;
    bool to_exchange = false;  // destination is an exchange, not a queue
    std::string routing_key;
    protocol::FieldTable arguments;
    bool operator==(const StoredBinding& o) const;
};

// A stream consumer's tracked offset (x-stream-consumer-name): the last offset it processed.
struct StoredStreamOffset {
    std::uint32_t vhost = 0;
    std::uint32_t queue = 0;  // the stream's stored id
    std::string name;
    std::uint64_t offset = 0;
};

// A policy (operator: an operator policy) as given: the definition is its JSON text.
struct StoredPolicy {
    std::uint32_t vhost = 0;
    bool operator_policy = false;
    std::string name;
    std::string pattern;
    std::string apply_to;
    std::int64_t priority = 0;
    std::string definition;
};

// A global parameter (cluster_name) and its value as JSON text.
struct StoredGlobalParameter {
    std::string name;
    std::string value;
};

// The durable state, as replayed from the log.
struct Definitions {
    std::vector<StoredVHost> vhosts;
    std::vector<StoredUser> users;
    std::vector<StoredPermission> permissions;
    std::vector<StoredTopicPermission> topic_permissions;
    // False for a data directory written before users were stored (and for a fresh one): the
    // broker then creates the default user, as it always had one.
    bool users_stored = false;
    std::vector<StoredExchange> exchanges;
    std::vector<StoredQueue> queues;
    std::vector<StoredBinding> bindings;
    std::vector<StoredStreamOffset> stream_offsets;
    std::vector<StoredPolicy> policies;
    std::vector<StoredGlobalParameter> global_parameters;
    std::uint32_t next_vhost_id = 1;
    std::uint32_t next_queue_id = 1;

    // Applies one record or a snapshot; an error names what is wrong with it.
    std::optional<std::string> apply_record(std::span<const std::byte> bytes);
    std::optional<std::string> apply_snapshot(std::span<const std::byte> bytes);
};

// One change each.
std::string vhost_record(const StoredVHost& v);
// Deletes the vhost and everything in it: exchanges, queues, bindings, permissions.
std::string vhost_delete_record(std::uint32_t id);
std::string user_record(const StoredUser& u);
std::string user_delete_record(std::string_view name);  // with the user's permissions
std::string permission_record(const StoredPermission& p);
std::string permission_delete_record(std::string_view user, std::uint32_t vhost);
std::string topic_permission_record(const StoredTopicPermission& p);
std::string topic_permission_delete_record(std::string_view user, std::uint32_t vhost, std::string_view exchange);
std::string exchange_record(const StoredExchange& x);
std::string exchange_delete_record(std::uint32_t vhost, std::string_view name);
std::string queue_record(const StoredQueue& q);
std::string queue_delete_record(std::uint32_t vhost, std::string_view name, std::uint32_t id);
std::string binding_record(const StoredBinding& b);
std::string binding_delete_record(const StoredBinding& b);
std::string stream_offset_record(const StoredStreamOffset& o);
std::string policy_record(const StoredPolicy& p);
std::string policy_delete_record(std::uint32_t vhost, bool operator_policy, std::string_view name);
std::string global_parameter_record(const StoredGlobalParameter& p);
std::string global_parameter_delete_record(std::string_view name);
// The whole state.
std::string snapshot(const Definitions& d);

}  // namespace warren::broker::definitions
