// The broker: configuration, vhosts, the connections, the timers and the deferred work of
// the event loop (queues to dispatch, dead letters to route), and the memory alarm. One per
// process; everything here runs on the event-loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <utility>
#include <vector>

#include "broker/auth.hpp"
#include "broker/clock.hpp"
#include "broker/turn_clock.hpp"
#include "broker/config.hpp"
#include "broker/dead_letter.hpp"
#include "broker/policy.hpp"
#include "broker/stats.hpp"
#include "broker/string_map.hpp"
#include "broker/timer_queue.hpp"
#include "broker/vhost.hpp"
#include "store/file_system.hpp"

namespace warren::broker {

class Connection;
class Channel;
class Durability;
namespace definitions {
struct Definitions;
}

// Why an admin change was refused: the field at fault and a sentence for the operator. The
// kind lets an HTTP API pick its status (400, 404, 409).
struct AdminError {
    enum class Kind { Invalid, NotFound, Exists, Storage };
    Kind kind = Kind::Invalid;
    std::string field;  // "name", "configure", "password_hash", ...
    std::string text;   // a whole sentence naming the field
};
using AdminStatus = std::optional<AdminError>;

// A user as definitions files and the HTTP API give it: a password, or its hash.
struct UserSpec {
    std::string name;
    std::optional<std::string> password;       // hashed with SHA-256 and a new salt
    std::optional<std::string> password_hash;  // base64, as RabbitMQ stores it ("": no password)
    std::string hashing_algorithm = "rabbit_password_hashing_sha256";
    std::vector<std::string> tags;
};

class Broker {
public:
    Broker(Config config, Clock& clock);
    ~Broker();

    const Config& config() const { return config_; }
    // The time as the broker sees it: read once per event-loop handler (TurnClock). Everything
    // in the broker reads time through it; TurnClock::source() is the uncached clock.
    TurnClock& clock() const { return time_; }
    TimerQueue& timers() { return timers_; }
    TimePoint now() const { return time_.now(); }
    std::int64_t unix_ms() const { return time_.unix_ms(); }
    // Opened around each event-loop handler (see TurnClock).
    class TimeScope : public TurnClock::Scope {
    public:
        explicit TimeScope(Broker& broker) : TurnClock::Scope(broker.time_) {}
    };

    // ---- storage (broker_storage.cpp)
    // Opens the data directory (config.data_dir; nothing to do when it is empty) and rebuilds
    // the durable vhosts, exchanges, queues and bindings it holds. `post` runs a function on the
    // loop thread. Returns an error text when the broker cannot start.
    // `fs` null: the real file system.
    std::string start_storage(std::function<void(std::function<void()>)> post,
                              std::shared_ptr<store::FileSystem> fs = nullptr);
    Durability* durability() const { return durability_.get(); }
    std::uint32_t allocate_stored_queue_id() { return next_stored_queue_id_++; }
    // The end of a loop turn and the moment before any socket write: what is buffered for the
    // disk is written first, so that no reply can promise what the disk does not have.
    void end_turn_storage();
    void flush_storage();
    // Shutdown, after the connections are gone (their deliveries requeued): writes and syncs the
    // rest, writes each vhost's checkpoint (what makes the next start fast), stops the sync thread.
    void shut_down_storage();
    std::variant<std::uint64_t, std::string> recover_messages(VHost& vhost);

    VHost* find_vhost(std::string_view name);
    // The vhost named by the configuration's default_vhost (tests; it may have been deleted).
    VHost& default_vhost();
    const StringMap<std::unique_ptr<VHost>>& vhosts() const { return vhosts_; }

    // ---- users, vhosts, permissions, limits (broker_admin.cpp)
    // Each call validates all of its input first (an error names the field; nothing is applied
    // then), applies the change at once (connections and channels see it on their next check),
    // and records it in the definitions log. These are what the CLI, the HTTP API and
    // load_definitions call.
    //
    // Creates a vhost (with its built-in exchanges), or updates the metadata of one that exists.
    AdminStatus add_vhost(std::string_view name, const VHostSettings& settings = {});
    // Closes its connections (320 CONNECTION_FORCED "vhost 'x' is deleted"), deletes its
    // queues, exchanges, permissions and stored messages.
    AdminStatus delete_vhost(std::string_view name);
    // Replaces the vhost's limits (an empty VHostLimits clears them).
    AdminStatus set_vhost_limits(std::string_view vhost, const VHostLimits& limits);
    // Refused with Kind::Exists if the user exists.
    AdminStatus add_user(std::string_view name, std::string_view password, const std::vector<std::string>& tags = {});
    // Creates or replaces a user (password or password_hash; neither: keeps the current one,
    // or none for a new user). Permissions and limits are left as they are.
    AdminStatus put_user(const UserSpec& spec);
    // Closes the user's connections (320 "user 'u' is deleted") and drops their permissions.
    AdminStatus delete_user(std::string_view name);
    AdminStatus set_password(std::string_view user, std::string_view password);
    AdminStatus set_password_hash(std::string_view user, std::string_view password_hash,
                                  std::string_view hashing_algorithm = "rabbit_password_hashing_sha256");
    AdminStatus set_tags(std::string_view user, const std::vector<std::string>& tags);
    // Replaces the user's limits (an empty UserLimits clears them).
    AdminStatus set_user_limits(std::string_view user, const UserLimits& limits);
    AdminStatus set_permissions(std::string_view user, std::string_view vhost, std::string_view configure,
                                std::string_view write, std::string_view read);
    AdminStatus clear_permissions(std::string_view user, std::string_view vhost);
    AdminStatus set_topic_permissions(std::string_view user, std::string_view vhost, std::string_view exchange,
                                      std::string_view write, std::string_view read);
    // One exchange's topic permissions, or (exchange nullopt) all of the user's in the vhost.
    AdminStatus clear_topic_permissions(std::string_view user, std::string_view vhost,
                                        std::optional<std::string_view> exchange = std::nullopt);
    // The checks of add_vhost and put_user alone (names, tags, hash and algorithm), for callers
    // that check a batch before applying any of it.
    static AdminStatus check_vhost_input(std::string_view name, const VHostSettings& settings);
    static AdminStatus check_user_input(const UserSpec& spec);
    // ---- policies and operator policies (broker_policies.cpp, policy.hpp)
    // Checked as RabbitMQ checks them (the error's text is RabbitMQ's), applied at once to
    // every queue and exchange of the vhost (what a lower length limit drops is dead-lettered
    // before this returns), and recorded. Setting replaces the policy of the same name.
    AdminStatus set_policy(const PolicySpec& spec);
    AdminStatus clear_policy(std::string_view vhost, std::string_view name);
    AdminStatus set_operator_policy(const PolicySpec& spec);
    AdminStatus clear_operator_policy(std::string_view vhost, std::string_view name);
    struct PolicyListing {
        std::string vhost;
        PolicyRef policy;
    };
    // The policies of one kind in one vhost or (nullopt) in all, by vhost, then by priority,
    // highest first, then by name.
    std::vector<PolicyListing> list_policies(PolicyKind kind,
                                             std::optional<std::string_view> vhost = std::nullopt) const;

    // ---- global parameters: cluster_name (its value a JSON string), as rabbitmqctl
    // set_cluster_name keeps it; the server's cluster_name property stays the configured one.
    AdminStatus set_global_parameter(std::string_view name, std::string_view value_json);
    AdminStatus clear_global_parameter(std::string_view name);
    const std::map<std::string, std::string, std::less<>>& global_parameters() const { return global_parameters_; }

    // ---- definitions (definitions_import.cpp, definitions_export.cpp)
    // A RabbitMQ definitions file (3.10's format; tags as a string or a list): vhosts, users,
    // permissions, topic permissions, limits, policies, operator policies, global and vhost
    // parameters, durable exchanges, queues and bindings. Checked in full before anything is
    // applied; an error names the entry. An entity that exists already is updated (users,
    // vhosts, policies) or left alone when it is equivalent (exchanges, queues); a queue or
    // exchange that exists with other properties is an error, as RabbitMQ's import fails.
    AdminStatus import_definitions(std::string_view json_text);
    AdminStatus import_definitions_file(const std::string& path);
    // Everything durable in RabbitMQ 3.10's export format (rabbitmqctl export_definitions,
    // GET /api/definitions): rabbit_version, rabbitmq_version, product_name, product_version,
    // users, vhosts, permissions, topic_permissions, parameters, global_parameters, policies,
    // queues, exchanges, bindings.
    nlohmann::json export_definitions() const;
    const AuthRegistry& auth() const { return auth_; }
    std::uint64_t auth_epoch() const { return auth_.epoch(); }
    Access access(std::string_view user, std::string_view vhost) const { return auth_.access(user, vhost); }

    // Checks a login; the reason for a refusal goes to the log, never to the client.
    bool check_login(std::string_view user, std::string_view password, bool from_loopback,
                     std::string& refusal_reason) const;
    // For a login without a password (EXTERNAL: the TLS layer vouched for the name): whether
    // the user exists, and whether it may connect only from loopback.
    bool user_exists(std::string_view user) const { return auth().find_user(user) != nullptr; }
    bool is_loopback_only(std::string_view user) const {
        return config_.default_user_loopback_only && user == config_.default_user;
    }
    // Open connections (past connection.open) in a vhost, of a user, and the user's channels.
    std::size_t connections_in_vhost(const VHost& vhost) const;
    std::size_t connections_of_user(std::string_view user) const;
    std::size_t channels_of_user(std::string_view user) const;

    // ---- connections
    std::uint64_t register_connection(Connection& connection);
    void unregister_connection(Connection& connection);
    std::size_t connection_count() const { return connections_.size(); }
    Connection* find_connection(std::uint64_t id) const {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : it->second;
    }
    const std::unordered_map<std::uint64_t, Connection*>& connections() const { return connections_; }

    // ---- statistics: takes a sample of every counter, for the rates the management API shows
    // (every few seconds, from a timer; the hot path only adds to counters). Also sets the
    // gauges (queue and vhost message counts) and the broker-wide totals.
    void sample_stats();
    const Stats& totals() const { return totals_; }
    ChurnCounters& churn() { return churn_; }
    const ChurnCounters& churn() const { return churn_; }
    MessageSizes& message_sizes() { return message_sizes_; }
    const MessageSizes& message_sizes() const { return message_sizes_; }
    // Frames and bytes received on every connection, counted where the core reads them: the
    // event loop's measure of input pressure (input batching), whatever the transport.
    struct InputCounters {
        std::uint64_t frames = 0;
        std::uint64_t bytes = 0;
    };
    InputCounters& input() { return input_; }
    const InputCounters& input() const { return input_; }
    // An ack gave credit back to a consumer that had none left: its next deliveries wait for
    // this turn's end, so the event loop does not pause after it (input batching).
    void note_credit_freed() { credit_freed_ = true; }
    bool take_credit_freed() { return std::exchange(credit_freed_, false); }
    // A held message released now, due at `deadline`. One whose deadline passed before the
    // broker started (released at once on start-up, by design) is not counted. The clock is read
    // here, not the turn's cached time: a batch's later releases wait for its earlier ones
    // (reads of paged-out bodies), and that wait is lateness too.
    void note_release(TimePoint deadline) {
        if (deadline < release_floor_) return;
        const TimePoint t = time_.source().now();
        release_lateness_.observe(t > deadline
                                      ? static_cast<std::uint64_t>(
                                            std::chrono::duration_cast<std::chrono::microseconds>(t - deadline).count())
                                      : 0);
    }
    const ReleaseLateness& release_lateness() const { return release_lateness_; }
    // At shutdown, while every part of the broker is still alive: each connection releases its
    // channels, consumers and exclusive queues, so nothing is left for destructors to untangle.
    void tear_down_connections(std::string_view reason);

    // ---- deferred work: queues to dispatch once per loop turn
    void mark_dirty(Queue& queue);
    void forget_queue(Queue& queue);
    // Runs the pending dispatches (bounded) and timers that are due. The event loop calls this
    // after each batch of input; tests call it after each step.
    void run_pending();
    bool has_pending() const { return !dirty_.empty() || !dead_letters_.empty(); }
    // Set by the event loop: called when run_pending() should be scheduled.
    std::function<void()> on_work_pending;

    // ---- the dead-letter work list
    // The cascade requeue -> expire -> dead-letter -> route -> enqueue -> deliver runs from this
    // list, never by recursion: a queue pushes a dead letter and returns, and the list is drained
    // at the drain points (the end of each channel method, publish and channel close, and of
    // each timer and dispatch in run_pending), where no caller is walking a queue's or a
    // channel's containers. Routing one dead letter may push more; they join the end of the list.
    void push_dead_letter(DeadLetter dead_letter);
    void drain_dead_letters() {
        if (!dead_letters_.empty()) drain_dead_letters_now();
    }
    std::size_t pending_dead_letters() const { return dead_letters_.size(); }

    // ---- resource alarms: publishers are blocked while either is on
    bool publishing_blocked() const { return memory_alarm_ || disk_alarm_; }
    // RabbitMQ's texts in connection.blocked.
    std::string_view alarm_reason() const { return memory_alarm_ ? "low on memory" : "low on disk"; }
    // Compares the data directory's free space with disk_free_limit and raises or clears the
    // disk alarm.
    void update_disk_free(std::uint64_t free_bytes);
    bool disk_alarm() const { return disk_alarm_; }

    // ---- memory alarm
    std::uint64_t memory_limit() const { return memory_limit_; }
    bool memory_alarm() const { return memory_alarm_; }
    // Past half the watermark (RabbitMQ's paging ratio), queues write even transient messages
    // to disk to make room, so that the alarm is the last resort, not the first.
    bool memory_pressure() const { return memory_pressure_; }
    // Compares a measurement of the broker's memory use with the watermark and raises or
    // clears the alarm (blocking or unblocking publishing connections).
    void update_memory_use(std::uint64_t bytes_used);
    // How memory use is measured (memory_in_use() by default); tests substitute their own.
    std::function<std::uint64_t()> memory_probe;
    void check_memory() { update_memory_use(memory_probe()); }
    // What the alarm measures: the bytes held by live messages (each counted once however many
    // queues hold it, plus an estimate of its bookkeeping in a queue) and the input and output
    // waiting in the connections' buffers. Not RSS: memory the allocator gets back from freed
    // messages stays resident, so RSS does not fall when queues drain and the alarm would never
    // clear. Asking glibc (mallinfo2) walks its free lists: 50-170 ms on a fragmented heap.
    std::uint64_t memory_in_use() const;

    // ---- direct reply-to: pseudo-queue names registered by reply consumers
    std::string register_reply_to(Channel& channel);
    void unregister_reply_to(const std::string& name);
    Channel* find_reply_to(std::string_view name);

    // ---- names and ids
    std::string generate_name(std::string_view prefix);  // "amq.gen-…", "amq.ctag-…"
    std::uint64_t next_id() { return ++last_id_; }
    // 64 random bits (retry jitter); not for secrets.
    std::uint64_t random() { return rng_(); }

private:
    Config config_;
    mutable TurnClock time_;  // mutable: clock() hands it out from const members
    AuthRegistry auth_;
    // The default user, with full permissions on the default vhost (a fresh data directory or
    // none, as RabbitMQ's first start).
    void create_default_user();
    // The records that keep auth state, for the definitions log (no-ops without storage).
    void append_admin_record(const std::string& record);
    void record_user(const User& user);
    void record_vhost(const VHost& vhost);
    void record_permissions(std::string_view user, const VHost& vhost);
    void record_topic_permission(std::string_view user, const VHost& vhost, std::string_view exchange);
    void record_policy(const VHost& vhost, PolicyKind kind, std::string_view name);
    AdminStatus put_policy(PolicyKind kind, const PolicySpec& spec);
    AdminStatus erase_policy(PolicyKind kind, std::string_view vhost, std::string_view name);
    std::map<std::string, std::string, std::less<>> global_parameters_;
    // Closes (320) every connection for which `which` is true.
    void force_close_connections(const std::function<bool(const Connection&)>& which, const std::string& text);
    // Rebuilds users and permissions from stored definitions (broker_storage.cpp).
    void restore_auth(const definitions::Definitions& defs);
    std::unique_ptr<Durability> durability_;
    std::uint32_t next_stored_queue_id_ = 1;
    std::uint32_t next_vhost_id_ = 1;
    TimerQueue timers_;
    StringMap<std::unique_ptr<VHost>> vhosts_;
    std::unordered_map<std::uint64_t, Connection*> connections_;  // by id
    Stats totals_;  // the sum of the vhosts' (overview)
    ChurnCounters churn_;
    MessageSizes message_sizes_;
    InputCounters input_;
    bool credit_freed_ = false;
    ReleaseLateness release_lateness_;
    TimePoint release_floor_{};  // when storage was recovered: earlier deadlines are not counted
    std::vector<Queue*> dirty_;
    std::vector<Queue*> running_;  // the batch run_pending() is dispatching
    bool work_scheduled_ = false;
    void schedule_work();

    std::deque<DeadLetter> dead_letters_;
    bool draining_dead_letters_ = false;
    void drain_dead_letters_now();

    std::uint64_t memory_limit_ = 0;
    bool memory_alarm_ = false;
    bool memory_pressure_ = false;
    bool page_out_everything_ = false;  // pressure began: every queue looks at all it holds
    bool disk_alarm_ = false;
    void notify_alarms();

    StringMap<Channel*> reply_to_;
    std::uint64_t last_id_ = 0;
    std::uint64_t name_counter_ = 0;
    std::uint64_t name_seed_ = 0;
    std::mt19937_64 rng_;
};

// The memory there is: MemTotal from /proc/meminfo, or the container's cgroup limit (v2
// memory.max, then v1 memory.limit_in_bytes) when that is lower. The paths are parameters for tests.
std::uint64_t total_memory_bytes(const std::string& meminfo_path, const std::vector<std::string>& cgroup_limit_paths);
std::uint64_t total_memory_bytes();

}  // namespace warren::broker
