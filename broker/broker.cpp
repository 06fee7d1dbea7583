// See broker.hpp.
#include "broker/broker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <stdexcept>

#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/scope_guard.hpp"
#include "broker/message.hpp"

namespace warren::broker {

namespace {
// Queues dispatch at most this many messages per loop turn, so one busy queue cannot starve
// the rest of the loop (reading sockets, other queues, timers).
constexpr std::size_t dispatch_budget = 256;
// A queued message costs about this much beyond its own allocation: its 24-byte entry in the
// queue and the allocator's header and rounding (measured: 1 M queued 16-byte messages take
// 89 bytes each, of which the message allocation is 48).
constexpr std::uint64_t message_bookkeeping_bytes = 40;
}  // namespace

Broker::Broker(Config config, Clock& clock) : config_(std::move(config)), time_(clock) {
    vhosts_.emplace(config_.default_vhost, std::make_unique<VHost>(*this, config_.default_vhost));
    vhosts_.begin()->second->set_id(next_vhost_id_++);
    create_default_user();
    memory_limit_ = config_.memory_high_watermark_bytes
                        ? *config_.memory_high_watermark_bytes
                        : static_cast<std::uint64_t>(static_cast<double>(total_memory_bytes()) *
                                                     config_.memory_high_watermark);
    memory_probe = [this] { return memory_in_use(); };
    std::random_device rd;
    name_seed_ = (std::uint64_t{rd()} << 32) ^ rd();
    rng_.seed((std::uint64_t{rd()} << 32) ^ rd());
}

Broker::~Broker() {
    // Queues and channels release their stored messages through the durability: vhosts first.
    vhosts_.clear();
}

VHost* Broker::find_vhost(std::string_view name) {
    auto it = vhosts_.find(name);
    return it == vhosts_.end() ? nullptr : it->second.get();
}

VHost& Broker::default_vhost() {
    VHost* vh = find_vhost(config_.default_vhost);
    if (!vh) throw std::logic_error("the default vhost does not exist");
    return *vh;
}

// rabbit_auth_backend_internal:user_login_authentication/2, then RabbitMQ's loopback_users
// check (the default user only, unless configured otherwise).
bool Broker::check_login(std::string_view user, std::string_view password, bool from_loopback,
                         std::string& refusal_reason) const {
    if (password.empty()) {
        refusal_reason = fmt::format("user '{}' attempted to log in with a blank password, which is prohibited by "
                                     "the internal authN backend",
                                     user);
        return false;
    }
    const User* u = auth_.find_user(user);
    if (!u || !verify_password(u->password, password)) {
        refusal_reason = fmt::format("user '{}' - invalid credentials", user);
        return false;
    }
    if (config_.default_user_loopback_only && user == config_.default_user && !from_loopback) {
        refusal_reason = fmt::format("user '{}' can only connect via localhost", user);
        return false;
    }
    return true;
}

std::uint64_t Broker::register_connection(Connection& connection) {
    const std::uint64_t id = next_id();
    connections_.emplace(id, &connection);
    ++churn_.connections_opened;
    return id;
}

void Broker::unregister_connection(Connection& connection) {
    if (connections_.erase(connection.id())) ++churn_.connections_closed;
}

void Broker::schedule_work() {
    if (!work_scheduled_ && on_work_pending) {
        work_scheduled_ = true;
        on_work_pending();
    }
}

void Broker::mark_dirty(Queue& queue) {
    if (queue.is_dirty()) return;
    queue.set_dirty(true);
    dirty_.push_back(&queue);
    schedule_work();
}

void Broker::forget_queue(Queue& queue) {
    for (Queue*& q : running_)
        if (q == &queue) q = nullptr;
    if (!queue.is_dirty()) return;
    queue.set_dirty(false);
    std::erase(dirty_, &queue);
}

void Broker::run_pending() {
    work_scheduled_ = false;
    timers_.fire_due(now());
    drain_dead_letters();
    // Each queue dispatched once per turn; a queue with more to deliver goes to the next turn.
    running_.clear();
    running_.swap(dirty_);
    for (auto& q : running_) q->set_dirty(false);
    std::size_t i = 0;
    try {
        for (; i < running_.size(); ++i) {
            Queue* q = running_[i];
            if (q && q->dispatch(dispatch_budget)) mark_dirty(*q);
            drain_dead_letters();
        }
    } catch (...) {
        // A bug or exhausted memory (deliveries themselves fail only their consumer's
        // connection, see Channel::try_deliver). The queues not dispatched yet stay dirty; the
        // one that threw dispatches again at its next event (publish, ack, consume, drain).
        for (++i; i < running_.size(); ++i)
            if (running_[i]) mark_dirty(*running_[i]);
        running_.clear();
        throw;
    }
    running_.clear();
    if (!dirty_.empty()) schedule_work();
}

void Broker::push_dead_letter(DeadLetter dead_letter) {
    dead_letters_.push_back(std::move(dead_letter));
    schedule_work();  // a safety net: every path that pushes also reaches a drain point
}

void Broker::drain_dead_letters_now() {
    if (draining_dead_letters_) return;
    FlagGuard draining(draining_dead_letters_);
    while (!dead_letters_.empty()) {
        // Taken off the list before routing: a dead letter that throws is not retried forever.
        DeadLetter d = std::move(dead_letters_.front());
        dead_letters_.pop_front();
        d.vhost->route_dead_letter(d);
    }
}

void Broker::update_memory_use(std::uint64_t bytes_used) {
    const bool pressure = bytes_used > memory_limit_ / 2;
    if (pressure && !memory_pressure_) {
        page_out_everything_ = true;
        if (durability_)
            log::info("memory use {} bytes is past half the high watermark: queues page messages out to disk",
                      bytes_used);
    }
    memory_pressure_ = pressure;
    bool alarm = bytes_used > memory_limit_;
    if (alarm == memory_alarm_) return;
    memory_alarm_ = alarm;
    if (alarm)
        log::warning("memory alarm: {} bytes used, above the high watermark of {} bytes; blocking publishers",
                     bytes_used, memory_limit_);
    else
        log::info("memory alarm cleared: {} bytes used", bytes_used);
    notify_alarms();
}

void Broker::update_disk_free(std::uint64_t free_bytes) {
    bool alarm = free_bytes < config_.disk_free_limit;
    if (alarm == disk_alarm_) return;
    disk_alarm_ = alarm;
    if (alarm)
        log::warning("disk alarm: {} bytes free on the data directory's file system, below disk_free_limit of {} bytes; "
                     "blocking publishers",
                     free_bytes, config_.disk_free_limit);
    else
        log::info("disk alarm cleared: {} bytes free", free_bytes);
    notify_alarms();
}

void Broker::notify_alarms() {
    const bool blocked = publishing_blocked();
    std::vector<Connection*> all;
    for (auto& [id, c] : connections_) all.push_back(c);
    for (Connection* c : all) c->on_alarm(blocked);
}

std::uint64_t Broker::memory_in_use() const {
    std::uint64_t bytes = live_message_bytes() + live_message_count() * message_bookkeeping_bytes;
    for (const auto& [id, c] : connections_) bytes += c->buffered_bytes();
    return bytes;
}

void Broker::tear_down_connections(std::string_view reason) {
    std::vector<Connection*> all;
    for (auto& [id, c] : connections_) all.push_back(c);
    for (Connection* c : all) c->on_transport_closed(reason);
}

std::string Broker::register_reply_to(Channel& channel) {
    std::string name = generate_name("amq.rabbitmq.reply-to.");
    reply_to_[name] = &channel;
    return name;
}

void Broker::unregister_reply_to(const std::string& name) { reply_to_.erase(name); }

Channel* Broker::find_reply_to(std::string_view name) {
    auto it = reply_to_.find(name);
    return it == reply_to_.end() ? nullptr : it->second;
}

std::string Broker::generate_name(std::string_view prefix) {
    // RabbitMQ's names are prefix + 22 characters of url-safe base64 of a random 128-bit id.
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::uint64_t a = name_seed_ ^ (++name_counter_ * 0x9E3779B97F4A7C15ull);
    std::uint64_t b = (a ^ (a >> 31)) * 0xBF58476D1CE4E5B9ull + name_counter_;
    std::string name(prefix);
    for (int i = 0; i < 22; ++i) {
        std::uint64_t& src = i < 11 ? a : b;
        name += alphabet[src & 63];
        src = (src >> 6) | (src << 58);
    }
    return name;
}

std::uint64_t total_memory_bytes(const std::string& meminfo_path, const std::vector<std::string>& cgroup_limit_paths) {
    std::uint64_t total = 8ull << 30;
    std::ifstream meminfo(meminfo_path);
    std::string key, unit;
    std::uint64_t kb = 0;
    while (meminfo >> key >> kb >> unit) {
        if (key == "MemTotal:") {
            total = kb * 1024;
            break;
        }
    }
    // In a container the cgroup's limit is the memory there really is. "max" (no limit) does not
    // parse as a number and is skipped; v1 reports no limit as a huge number, above MemTotal.
    for (const std::string& path : cgroup_limit_paths) {
        std::ifstream limit_file(path);
        std::uint64_t limit = 0;
        if (limit_file >> limit && limit > 0 && limit < total) return limit;
    }
    return total;
}

std::uint64_t total_memory_bytes() {
    return total_memory_bytes("/proc/meminfo",
                              {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"});
}

}  // namespace warren::broker
