// A virtual host: its exchanges, queues and the bindings between them, and the mechanics of
// routing and publishing. Every entity is reachable from its vhost. Protocol checks and
// reply texts live in the channel handlers; this class keeps the state consistent.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/auth.hpp"
#include "broker/dead_letter.hpp"
#include "broker/delayed_exchange.hpp"
#include "broker/exchange_entry.hpp"
#include "broker/queue.hpp"
#include "broker/string_map.hpp"
#include "exchanges/destination.hpp"
#include "store/message_record.hpp"

namespace warren::broker {

class Broker;
class Durability;
class VHostStorage;

// A vhost's metadata (RabbitMQ 3.10: description and tags).
struct VHostSettings {
    std::string description;
    std::vector<std::string> tags;
};

struct PublishResult {
    bool routed = false;    // reached at least one queue (a delayed exchange holding it does not
                            // count: a mandatory message is returned, as the plugin returns it)
    bool rejected = false;  // a queue refused it (x-overflow reject-publish[-dlx])
    bool stored = false;    // written to the message log: its confirm waits until it is stored
};

class VHost {
public:
    VHost(Broker& broker, std::string name);
    ~VHost();
    VHost(const VHost&) = delete;
    VHost& operator=(const VHost&) = delete;

    Broker& broker() const { return broker_; }
    const std::string& name() const { return name_; }
    // The vhost's id in the data directory (0 when nothing is stored).
    std::uint32_t id() const { return id_; }
    void set_id(std::uint32_t id) { id_ = id; }
    // Where durable changes are recorded; null keeps them in memory only (no data directory,
    // or while the vhost is being rebuilt from the log at start-up).
    void set_durability(Durability* d) { durability_ = d; }
    Durability* durability() const { return durability_; }
    const VHostSettings& settings() const { return settings_; }
    void set_settings(VHostSettings settings) { settings_ = std::move(settings); }
    // max-connections (checked at connection.open) and max-queues (at queue.declare).
    const VHostLimits& limits() const { return limits_; }
    void set_limits(VHostLimits limits) { limits_ = limits; }
    // The vhost's message log (null: messages in memory only).
    VHostStorage* storage() const { return storage_.get(); }
    void set_storage(std::unique_ptr<VHostStorage> storage);

    // ---- exchanges
    ExchangeEntry* find_exchange(std::string_view name);
    ExchangeEntry* exchange_by_id(std::uint64_t id);
    // `delayed`: a delayed exchange (holding messages with x-delay); a durable one gets a stored
    // id for them (`stored_id` when it comes from the log at start-up; a new one otherwise).
    ExchangeEntry& add_exchange(std::string name, exchanges::ExchangeType type, bool durable, bool auto_delete,
                                bool internal, protocol::FieldTable arguments, DelayedMode delayed = DelayedMode::None,
                                std::uint32_t stored_id = 0);
    // Removes the exchange and every binding from or to it.
    void delete_exchange(ExchangeEntry& exchange);
    const StringMap<std::unique_ptr<ExchangeEntry>>& exchanges() const { return exchanges_; }

    // ---- queues
    Queue* find_queue(std::string_view name);
    Queue* queue_by_id(QueueId id);
    // A durable queue that is not exclusive is recorded and gets a stored id (`stored_id`
    // when it comes from the log at start-up; a new one otherwise).
    Queue& add_queue(std::string name, QueueFlags flags, QueueArgs args, protocol::FieldTable raw_args,
                     std::uint64_t owner_connection, std::uint32_t stored_id = 0);
    // Cancels the queue's consumers (notifying clients that asked), removes its bindings and
    // drops its messages. Returns the number of ready messages it held.
    std::size_t delete_queue(Queue& queue);
    const StringMap<std::unique_ptr<Queue>>& queues() const { return queues_; }

    // ---- policies (vhost_policies.cpp, policy.hpp)
    // The matching policy of highest priority applies to each queue and exchange, and so does
    // the matching operator policy; every change re-applies them to all queues and exchanges
    // at once. Recording the change is the caller's (Broker's admin API).
    const std::vector<PolicyRef>& policies(PolicyKind kind) const {
        return kind == PolicyKind::Policy ? policies_ : operator_policies_;
    }
    PolicyRef find_policy(PolicyKind kind, std::string_view name) const;
    // Adds the policy, or replaces the one of the same name.
    void put_policy(PolicyKind kind, Policy policy);
    bool erase_policy(PolicyKind kind, std::string_view name);
    void apply_policies(Queue& queue);
    // Returns true when a policy has just made the exchange delayed (it is to be recorded again).
    bool apply_policies(ExchangeEntry& exchange);

    // ---- bindings
    // Returns false if the identical binding existed already.
    bool bind(ExchangeEntry& source, const exchanges::Destination& destination, std::string_view routing_key,
              const protocol::FieldTable& arguments);
    // Returns false if there was no such binding. An auto-delete source left without bindings
    // is deleted.
    bool unbind(ExchangeEntry& source, const exchanges::Destination& destination, std::string_view routing_key,
                const protocol::FieldTable& arguments);

    // ---- routing and publishing
    // The queues a message published to `exchange` reaches, each at most once, following
    // exchange-to-exchange bindings and alternate exchanges as RabbitMQ does.
    void route(ExchangeEntry& exchange, const exchanges::RoutingInput& input, std::vector<Queue*>& out);
    // Routes a message as basic.publish does (CC and BCC headers add routing keys) and returns
    // it as queues keep it (without BCC); `targets` gets each queue once. A delayed exchange
    // reached with a positive x-delay holds the message instead of routing it on: it goes to
    // `held` (each once; none when null), except `no_hold`, the exchange that releases it.
    MessageRef route_message(ExchangeEntry& exchange, const MessageRef& message, std::vector<Queue*>& targets,
                             std::vector<ExchangeEntry*>* held = nullptr, const ExchangeEntry* no_hold = nullptr);
    PublishResult enqueue_routed(const MessageRef& message, const std::vector<Queue*>& targets);
    // The delayed exchanges that routing said hold `message`: each holds it (its x-delay made
    // negative, as the plugin does, so that no exchange delays it again), written once for those
    // that store it. Returns whether it was written (its confirm then waits for the disk).
    bool hold_routed(const MessageRef& message, const std::vector<ExchangeEntry*>& held);
    // A held message whose delay is over: routed from `exchange` by its bindings as they are now.
    void release_delayed(ExchangeEntry& exchange, MessageRef message);
    // Both: basic.publish.
    PublishResult publish(ExchangeEntry& exchange, const MessageRef& message);
    // For a publish in a transaction, routing resolved now as RabbitMQ does: the names of the
    // queues the message reaches (for the default exchange, the names its keys give, whether or
    // not the queues exist yet), and of the delayed exchanges that hold it; tx.commit enqueues it
    // to those that exist then.
    MessageRef route_names(ExchangeEntry& exchange, const MessageRef& message, std::vector<std::string>& names,
                           std::vector<std::string>& held);
    // The default exchange ("") routes to the queue named by the key.
    ExchangeEntry& default_exchange() { return *default_exchange_; }
    // Goes up whenever an exchange or a queue is deleted: a pointer looked up under an older
    // version may dangle (for the one-entry lookup caches on the publish path).
    std::uint64_t topology_version() const { return topology_version_; }

    // Republishes a dead letter to its dead-letter exchange (see dead_letter.cpp). Called only
    // by Broker::drain_dead_letters; the queues it reaches may push more dead letters.
    void route_dead_letter(DeadLetter& dead_letter);

    std::string resource_name_for(const Queue& queue) const;

    // Message statistics of every channel in this vhost (the management API's vhost and
    // overview message_stats).
    Stats& stats() { return stats_; }
    const Stats& stats() const { return stats_; }

    // Counters, for logs and later for metrics.
    std::uint64_t dead_letters_dropped_no_exchange = 0;
    std::uint64_t dead_letters_dropped_cycle = 0;
    // Messages this vhost's queues dead-lettered, by DeadLetterReason (kept when a queue goes).
    std::array<std::uint64_t, 4> dead_lettered{};

private:
    // Definitions records for durable changes (no-ops without a durability).
    void record_exchange(const ExchangeEntry& x);
    // Gives `x` its DelayedExchange, stored under `stored_id` (0: a new id if it is durable).
    void make_delayed(ExchangeEntry& x, std::uint32_t stored_id);
    void record_exchange_deleted(const ExchangeEntry& x);
    void record_queue(const Queue& q);
    void record_queue_deleted(const Queue& q);
    void record_binding(const ExchangeEntry& source, const exchanges::Destination& destination,
                        std::string_view routing_key, const protocol::FieldTable& arguments, bool deleted);
    bool is_stored(const ExchangeEntry& x) const;

    void route_keys(ExchangeEntry& exchange, const exchanges::RoutingInput& input, std::vector<Queue*>& out,
                    std::vector<ExchangeEntry*>* held = nullptr, const ExchangeEntry* no_hold = nullptr);
    void remove_destination_everywhere(const exchanges::Destination& destination,
                                       const std::vector<std::uint64_t>& sources);
    void delete_if_auto_delete(ExchangeEntry& exchange);
    void declare_builtin_exchanges();

    Broker& broker_;
    std::string name_;
    std::uint32_t id_ = 0;
    VHostSettings settings_;
    VHostLimits limits_;
    Durability* durability_ = nullptr;
    std::unique_ptr<VHostStorage> storage_;
    std::vector<store::QueueEntryRef> stored_for_;  // scratch: the queues a message is stored for
    StringMap<std::unique_ptr<ExchangeEntry>> exchanges_;
    std::unordered_map<std::uint64_t, ExchangeEntry*> exchanges_by_id_;
    StringMap<std::unique_ptr<Queue>> queues_;
    std::unordered_map<QueueId, Queue*> queues_by_id_;
    ExchangeEntry* default_exchange_ = nullptr;
    std::vector<PolicyRef> policies_, operator_policies_;
    void apply_policies_everywhere();

    // Reused scratch space for routing (no allocation per publish once warmed up).
    std::vector<exchanges::Destination> scratch_destinations_;
    std::vector<ExchangeEntry*> scratch_work_;
    std::vector<Queue*> scratch_queues_;
    std::vector<ExchangeEntry*> scratch_held_;
    std::uint64_t route_epoch_ = 0;
    std::uint64_t topology_version_ = 0;
    // The default exchange's last lookup: publishers mostly repeat the same routing key.
    std::string default_route_key_;
    Queue* default_route_queue_ = nullptr;
    std::uint64_t default_route_version_ = ~std::uint64_t{0};
    std::uint64_t exchange_epoch_ = 0;
    Stats stats_;
};

}  // namespace warren::broker
