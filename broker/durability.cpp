// See durability.hpp.
#include "broker/durability.hpp"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "broker/log.hpp"
#include "store/posix_file_system.hpp"

namespace warren::broker {

namespace {
void warn_line(std::string_view line) { log::warning("storage: {}", line); }
}  // namespace

Durability::Durability(const Config& config, Post post, std::shared_ptr<store::FileSystem> fs)
    : dir_(config.data_dir),
      fsync_confirms_(config.fsync_confirms),
      fs_(fs ? std::move(fs) : std::make_shared<store::PosixFileSystem>()) {
    log_options_.segment_size = config.segment_size;
    log_options_.preallocate = config.segment_preallocate;
    log_options_.reuse_segments = config.segment_reuse;
    log_options_.warn = warn_line;
    sync_ = std::make_unique<store::SyncService>(std::move(post),
                                                 [this](const store::SyncResult& r) { on_synced(r); });
}

Durability::~Durability() = default;

std::unique_ptr<Durability> Durability::open(const Config& config, Post post, std::string& error,
                                             std::shared_ptr<store::FileSystem> fs) {
    std::unique_ptr<Durability> d(new Durability(config, std::move(post), std::move(fs)));
    if (auto s = d->fs_->make_directories(d->dir_); !s) {
        error = fmt::format("cannot create the data directory {}: {}", d->dir_, s.error().message);
        return nullptr;
    }
    auto lock = d->fs_->lock(d->dir_ + "/LOCK");
    if (!lock) {
        error = fmt::format("the data directory {} is in use by another Warren ({})", d->dir_, lock.error().message);
        return nullptr;
    }
    d->lock_ = std::move(*lock);
    store::MetaOptions meta_options;
    meta_options.warn = warn_line;
    auto meta = store::MetaLog::open(*d->fs_, d->dir_ + "/meta", meta_options, *d->sync_);
    if (!meta) {
        error = fmt::format("cannot open the definitions log: {}", meta.error().message);
        return nullptr;
    }
    d->meta_ = std::move(*meta);
    return d;
}

void Durability::append_definition(std::string_view record) {
    meta_->append(std::as_bytes(std::span(record.data(), record.size())));
    ++definition_appends_;
}

store::Result<store::MessageLog*> Durability::open_message_log(std::uint32_t vhost_id) {
    if (auto it = logs_.find(vhost_id); it != logs_.end()) return it->second.get();
    auto log = store::MessageLog::open(*fs_, fmt::format("{}/vhosts/{}", dir_, vhost_id), log_options_, *sync_);
    if (!log) return log.error();
    store::MessageLog* raw = log->get();
    logs_.emplace(vhost_id, std::move(*log));
    return raw;
}

void Durability::remove_message_log(std::uint32_t vhost_id) {
    logs_.erase(vhost_id);  // closes its files and lock; the sync thread keeps its own handles
    const std::string dir = fmt::format("{}/vhosts/{}", dir_, vhost_id);
    auto names = fs_->list(dir);
    if (!names) return;
    for (const std::string& name : *names)
        if (auto s = fs_->unlink(store::join_path(dir, name)); !s)
            log::warning("storage: cannot remove {}: {}", store::join_path(dir, name), s.error().message);
    if (auto s = fs_->unlink(dir); !s) log::warning("storage: cannot remove {}: {}", dir, s.error().message);
}

std::vector<std::uint32_t> Durability::message_log_ids() const {
    std::vector<std::uint32_t> ids;
    auto names = fs_->list(dir_ + "/vhosts");
    if (!names) return ids;
    for (const std::string& name : *names) {
        if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) continue;
        ids.push_back(static_cast<std::uint32_t>(std::stoul(name)));
    }
    return ids;
}

// ---- tickets ----------------------------------------------------------------------------------

std::uint64_t Durability::ticket(Need need) {
    wanted_ = true;
    if (need == Need::All) wanted_events_ = true;
    return next_ticket_;
}

void Durability::when_stored(std::uint64_t ticket, Done done) {
    if (ticket < next_ticket_ && !waiters_.contains(ticket) &&
        (in_sync_.empty() || in_sync_.front().ticket > ticket)) {
        // Already settled: a ticket is only handed out before its turn ends, so this is a
        // caller that waited too late; treat it as settled as the storage's health says.
        done(healthy());
        return;
    }
    waiters_[ticket].push_back(std::move(done));
}

void Durability::complete(std::uint64_t ticket, bool ok) {
    auto node = waiters_.extract(ticket);
    if (node.empty()) return;
    for (auto& done : node.mapped()) done(ok);
}

void Durability::flush() {
    bool wrote = meta_->has_unflushed();
    if (meta_->has_unflushed()) {
        if (auto s = meta_->flush(); !s) write_failed(fmt::format("writing definitions failed: {}", s.error().message));
    }
    for (auto& [id, log] : logs_) {
        if (!log->has_unflushed()) continue;
        wrote = true;
        if (auto s = log->flush(); !s) write_failed(fmt::format("writing messages failed: {}", s.error().message));
    }
    if (wrote) written_unsynced_ = true;
}

void Durability::end_turn() {
    flush();
    if (!wanted_) {
        turn_failed_ = false;
        return;
    }
    const std::uint64_t t = next_ticket_++;
    const bool events = wanted_events_;
    wanted_ = false;
    wanted_events_ = false;
    const bool failed = turn_failed_ || storage_failed_;
    turn_failed_ = false;
    if (failed) {
        complete(t, false);
    } else if (!fsync_confirms_) {
        complete(t, true);
    } else {
        in_sync_.push_back({t, sync_->request_sync(events), std::chrono::steady_clock::now()});
        // A round that left the sidecars behind still owes them to the periodic sync.
        written_unsynced_ = !events;
    }
}

void Durability::on_synced(const store::SyncResult& result) {
    if (result.error) fail_storage(fmt::format("fdatasync failed: {}", result.message));
    const auto now = std::chrono::steady_clock::now();
    while (!in_sync_.empty() && in_sync_.front().sync_ticket <= result.ticket) {
        std::uint64_t t = in_sync_.front().ticket;
        if (!result.error)
            commit_latency_.observe(std::chrono::duration<double>(now - in_sync_.front().requested).count());
        in_sync_.pop_front();
        complete(t, !result.error);
    }
}

void Durability::compact_definitions(std::span<const std::byte> snapshot) {
    const std::uint64_t before = meta_->log_bytes();
    if (auto s = meta_->compact(snapshot); !s) {
        log::error("storage: compacting the definitions log failed: {}; it keeps growing until the next try",
                   s.error().message);
        compact_definitions_at_ = before + std::max<std::uint64_t>(compact_definitions_min_, 2 * snapshot.size());
        return;
    }
    log::info("storage: definitions log compacted: {} bytes of records replaced by a {}-byte snapshot", before,
              snapshot.size());
    compact_definitions_at_ = std::max<std::uint64_t>(compact_definitions_min_, 2 * snapshot.size());
}

void Durability::set_definitions_compaction_min(std::uint64_t bytes) {
    compact_definitions_min_ = compact_definitions_at_ = bytes;
}

void Durability::periodic_sync() {
    if (!written_unsynced_ || storage_failed_) return;
    written_unsynced_ = false;
    sync_->request_sync();
}

void Durability::finish_writes() {
    flush();
    std::uint64_t last = sync_->request_sync();
    if (std::error_code e = sync_->wait(last)) log::error("storage: the last sync at shutdown failed: {}", e.message());
}

void Durability::stop() {
    // The event loop goes next: nothing may be posted to it from here on.
    sync_->stop();
}

// A write that failed (a full disk, an I/O error) was cut back by the store: what it carried is
// not stored, so this turn's ticket fails, and later writes may succeed again.
void Durability::write_failed(const std::string& why) {
    turn_failed_ = true;
    ++write_failures_;
    log::error("storage: {}; what it carried is not confirmed", why);
}

// After a failed fdatasync the kernel may have dropped the dirty pages: nothing written since the
// last good sync can be called durable again, so every later ticket fails until a restart.
void Durability::wait_for_syncs() {
    if (!in_sync_.empty()) (void)sync_->wait(in_sync_.back().sync_ticket);
}

void Durability::fail_storage(const std::string& why) {
    log::error("storage: {}; nothing more is confirmed as stored until the disk is repaired and Warren restarted",
               why);
    if (!storage_failed_) failure_ = why;
    storage_failed_ = true;
}

std::optional<std::uint64_t> Durability::free_bytes() const {
    if (!dynamic_cast<store::PosixFileSystem*>(fs_.get())) return std::nullopt;  // an in-memory one
    struct statvfs s {};
    if (::statvfs(dir_.c_str(), &s) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

}  // namespace warren::broker
