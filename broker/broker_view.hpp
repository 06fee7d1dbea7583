// What the management API may read of the broker: snapshots (plain values, copied) of one
// vhost, queue, exchange, connection or channel at a time, and the names to list. The API builds
// long lists in bounded pieces by asking for one object after another across loop turns; an
// object gone in between is simply skipped. Nothing here walks a queue's messages.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/stats.hpp"
#include "protocol/field_table.hpp"

namespace warren::broker {

class Broker;
class Connection;

struct StatsSnapshot {
    std::array<std::uint64_t, stat_count> value{};
    std::array<double, stat_count> rate{};
    static StatsSnapshot of(const Stats& s);
    std::uint64_t operator[](Stat s) const { return value[static_cast<std::size_t>(s)]; }
    double rate_of(Stat s) const { return rate[static_cast<std::size_t>(s)]; }
};

struct QueueSnapshot {
    std::string vhost, name;
    bool durable = false, auto_delete = false, exclusive = false;
    protocol::FieldTable arguments;
    std::string type;  // "classic", "quorum" or "stream"
    std::uint64_t messages_ready = 0, messages_unacknowledged = 0;
    std::uint64_t message_bytes_ready = 0, messages_ram = 0;
    std::uint64_t messages_delayed = 0;  // waiting out a retry backoff (RabbitMQ 4.3's name)
    std::uint64_t consumers = 0, memory = 0;
    std::optional<double> consumer_utilisation;  // none without consumers
    std::string owner_connection;                // the exclusive owner's connection name
    std::string exclusive_consumer_tag;          // an exclusive consumer's tag
    std::optional<std::string> single_active_consumer_tag;
    std::int64_t idle_since_ms = 0;  // wall clock: when a counter last changed
    // The policy and operator policy that apply (empty: none) and their merged definition (JSON).
    std::string policy, operator_policy, effective_policy_definition = "{}";
    StatsSnapshot stats;
};

struct ExchangeSnapshot {
    std::string vhost, name, type;
    bool durable = false, auto_delete = false, internal = false;
    protocol::FieldTable arguments;
    std::string policy;  // the policy that applies (empty: none)
    StatsSnapshot stats;
    // Held until their x-delay ends (the plugin's messages_delayed); only for an exchange that
    // is or was delayed.
    std::optional<std::uint64_t> messages_delayed;
};

// Delayed messages summed over a broker's queues (retry backoffs) and exchanges (x-delay).
struct DelayedTotals {
    std::uint64_t queues = 0, exchanges = 0;
};

struct BindingSnapshot {
    std::string vhost, source, destination;
    bool to_exchange = false;
    std::string routing_key;
    protocol::FieldTable arguments;
};

struct ConnectionSnapshot {
    std::uint64_t id = 0;
    std::string name;  // "127.0.0.1:53422 -> 127.0.0.1:5672", as RabbitMQ names it
    std::string user, vhost, peer_host, host;
    std::uint16_t peer_port = 0, port = 0;
    protocol::FieldTable client_properties;
    std::uint32_t frame_max = 0;
    std::uint16_t channel_max = 0, heartbeat = 0;
    std::size_t channels = 0;
    std::int64_t connected_at_ms = 0;
    std::string state;  // "starting", "running", "blocked", "closing"
    StatsSnapshot stats;
};

struct ChannelSnapshot {
    std::uint64_t connection_id = 0;
    std::uint16_t number = 0;
    std::string name;  // "<connection name> (<number>)"
    std::string connection_name, user, vhost, peer_host;
    std::uint16_t peer_port = 0;
    std::uint16_t prefetch_count = 0, global_prefetch_count = 0;
    bool confirm = false, transactional = false, closing = false;
    std::size_t consumers = 0, unacked = 0, unconfirmed = 0;
    std::int64_t idle_since_ms = 0;
    StatsSnapshot stats;
};

struct ConsumerSnapshot {
    std::string vhost, queue, tag, channel_name, connection_name, peer_host, user;
    std::uint16_t channel_number = 0, peer_port = 0;
    std::uint16_t prefetch_count = 0;
    bool ack_required = true, exclusive = false, active = true;
    std::int32_t priority = 0;
    bool has_priority = false;
};

// The rest of the overview: counts of everything.
struct ObjectTotals {
    std::size_t connections = 0, channels = 0, consumers = 0, exchanges = 0, queues = 0, vhosts = 0;
};

class BrokerView {
public:
    explicit BrokerView(Broker& broker) : broker_(broker) {}

    std::vector<std::string> vhost_names() const;  // sorted
    bool has_vhost(std::string_view name) const;
    StatsSnapshot vhost_stats(std::string_view name) const;
    StatsSnapshot totals() const;
    ObjectTotals object_totals() const;
    // One constant-time count per queue and exchange, summed (no message is walked).
    DelayedTotals delayed_totals() const;

    // Names sorted as RabbitMQ lists them (by name); then one snapshot per call.
    std::vector<std::string> queue_names(std::string_view vhost) const;
    std::optional<QueueSnapshot> queue(std::string_view vhost, std::string_view name) const;
    std::vector<std::string> exchange_names(std::string_view vhost) const;
    std::optional<ExchangeSnapshot> exchange(std::string_view vhost, std::string_view name) const;

    // Bindings with this exchange as source (for the default exchange "": one per queue, the
    // implicit bindings RabbitMQ lists), and those with this queue or exchange as destination.
    std::vector<BindingSnapshot> bindings_from(std::string_view vhost, std::string_view exchange) const;
    std::vector<BindingSnapshot> bindings_to(std::string_view vhost, std::string_view destination,
                                             bool to_exchange) const;

    std::vector<std::uint64_t> connection_ids() const;  // in the order they connected
    std::optional<ConnectionSnapshot> connection(std::uint64_t id) const;
    std::vector<ChannelSnapshot> channels(std::uint64_t connection_id) const;
    std::vector<ConsumerSnapshot> consumers(std::uint64_t connection_id) const;

private:
    std::int64_t last_change_ms(const Stats& stats) const;
    Broker& broker_;
};

// "127.0.0.1:5672" -> host and port; "[::1]:5672" too.
void split_address(std::string_view address, std::string& host, std::uint16_t& port);
// RabbitMQ's name for a connection: "peer -> local".
std::string connection_name(const Connection& c);

}  // namespace warren::broker
