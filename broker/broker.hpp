// The broker: configuration, vhosts, the connections, the timers and the deferred work of
// the event loop (queues to dispatch, dead letters to route), and the memory alarm. One per
// process; everything here runs on the event-loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "broker/clock.hpp"
#include "broker/config.hpp"
#include "broker/dead_letter.hpp"
#include "broker/stats.hpp"
#include "broker/string_map.hpp"
#include "broker/timer_queue.hpp"
#include "broker/vhost.hpp"
#include "store/file_system.hpp"

namespace warren::broker {

class Connection;
class Channel;
class Durability;

class Broker {
public:
    Broker(Config config, Clock& clock);
    ~Broker();

    const Config& config() const { return config_; }
    Clock& clock() const { return clock_; }
    TimerQueue& timers() { return timers_; }
    // The time. Inside a TimeScope (the event loop opens one around each handler: a read, a
    // write, an accept, a timer, a turn's end) the clock is read once and every later call gets
    // that instant: a batch of messages sees one time, and reading the clock per message showed
    // up in profiles (11% of the CPU). Outside any scope the clock is read on every call, so a
    // cached time is never read after the handler that cached it has returned.
    TimePoint now() const {
        if (time_scopes_ == 0) return clock_.now();
        if (!now_valid_) {
            cached_now_ = clock_.now();
            now_valid_ = true;
        }
        return cached_now_;
    }
    // Opened around each event-loop handler. Scopes nest; the outermost one starts a new cache.
    class TimeScope {
    public:
        explicit TimeScope(Broker& broker) : broker_(broker) {
            if (broker_.time_scopes_++ == 0) broker_.now_valid_ = false;
        }
        ~TimeScope() {
            if (--broker_.time_scopes_ == 0) broker_.now_valid_ = false;
        }
        TimeScope(const TimeScope&) = delete;
        TimeScope& operator=(const TimeScope&) = delete;

    private:
        Broker& broker_;
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
    std::variant<std::uint64_t, std::string> recover_messages(VHost& vhost);

    VHost* find_vhost(std::string_view name);
    VHost& default_vhost() { return *vhosts_.begin()->second; }

    // Checks a login; the reason for a refusal goes to the log, never to the client.
    bool check_login(std::string_view user, std::string_view password, bool from_loopback,
                     std::string& refusal_reason) const;

    // ---- connections
    std::uint64_t register_connection(Connection& connection);
    void unregister_connection(Connection& connection);
    std::size_t connection_count() const { return connections_.size(); }
    Connection* find_connection(std::uint64_t id) const {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : it->second;
    }
    const std::unordered_map<std::uint64_t, Connection*>& connections() const { return connections_; }
    const StringMap<std::unique_ptr<VHost>>& vhosts() const { return vhosts_; }

    // ---- statistics: takes a sample of every counter, for the rates the management API shows
    // (every few seconds, from a timer; the hot path only adds to counters). Also sets the
    // gauges (queue and vhost message counts) and the broker-wide totals.
    void sample_stats();
    const Stats& totals() const { return totals_; }
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

private:
    Config config_;
    Clock& clock_;
    std::unique_ptr<Durability> durability_;
    std::uint32_t next_stored_queue_id_ = 1;
    std::uint32_t next_vhost_id_ = 1;
    mutable TimePoint cached_now_{};
    mutable bool now_valid_ = false;
    int time_scopes_ = 0;  // open TimeScopes
    TimerQueue timers_;
    StringMap<std::unique_ptr<VHost>> vhosts_;
    std::unordered_map<std::uint64_t, Connection*> connections_;  // by id
    Stats totals_;  // the sum of the vhosts' (overview)
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
};

// The memory there is: MemTotal from /proc/meminfo, or the container's cgroup limit (v2
// memory.max, then v1 memory.limit_in_bytes) when that is lower. The paths are parameters for tests.
std::uint64_t total_memory_bytes(const std::string& meminfo_path, const std::vector<std::string>& cgroup_limit_paths);
std::uint64_t total_memory_bytes();

}  // namespace warren::broker
