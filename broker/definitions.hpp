// What the definitions log holds: durable vhosts, exchanges, queues and bindings, as JSON records
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

struct StoredVHost {
    std::string name;
    std::uint32_t id = 0;
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

// The durable state, as replayed from the log.
struct Definitions {
    std::vector<StoredVHost> vhosts;
    std::vector<StoredExchange> exchanges;
    std::vector<StoredQueue> queues;
    std::vector<StoredBinding> bindings;
    std::uint32_t next_vhost_id = 1;
    std::uint32_t next_queue_id = 1;

    // Applies one record or a snapshot; an error names what is wrong with it.
    std::optional<std::string> apply_record(std::span<const std::byte> bytes);
    std::optional<std::string> apply_snapshot(std::span<const std::byte> bytes);
};

// One change each.
std::string vhost_record(const StoredVHost& v);
std::string exchange_record(const StoredExchange& x);
std::string exchange_delete_record(std::uint32_t vhost, std::string_view name);
std::string queue_record(const StoredQueue& q);
std::string queue_delete_record(std::uint32_t vhost, std::string_view name, std::uint32_t id);
std::string binding_record(const StoredBinding& b);
std::string binding_delete_record(const StoredBinding& b);
// The whole state.
std::string snapshot(const Definitions& d);

}  // namespace warren::broker::definitions
