// The broker's storage, seen from the event loop: the locked data directory, the definitions log,
// one message log per vhost, and tickets. A ticket names "everything buffered so far": whoever
// must not answer before that is stored (a confirm, tx.commit-ok, a declare-ok) asks for the
// current ticket and waits for it. The loop writes buffered records at the end of each turn,
// before any socket write; a ticket is done once written (fsync_confirms false) or fdatasync'ed
// by the sync thread (fsync_confirms true), and failed if either went wrong.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "broker/config.hpp"
#include "store/file_system.hpp"
#include "store/message_log.hpp"
#include "store/meta_log.hpp"
#include "store/sync_service.hpp"

namespace warren::broker {

class Durability {
public:
    using Post = store::SyncService::Post;
    using Done = std::function<void(bool ok)>;

    // Creates and locks the data directory and opens the definitions log (not yet recovered).
    // `post` runs a function on the loop thread. On failure returns null and sets `error`.
    // `fs` null: the real file system (tests give an in-memory one that injects faults).
    static std::unique_ptr<Durability> open(const Config& config, Post post, std::string& error,
                                            std::shared_ptr<store::FileSystem> fs = nullptr);
    ~Durability();
    Durability(const Durability&) = delete;
    Durability& operator=(const Durability&) = delete;

    const std::string& data_dir() const { return dir_; }
    store::MetaLog& meta() { return *meta_; }
    // Buffers one definitions record; the broker keeps count to hold replies until it is stored.
    void append_definition(std::string_view record);
    std::uint64_t definition_appends() const { return definition_appends_; }

    // The message log of a vhost, in data_dir/vhosts/<id>; opened (and locked) on first use.
    store::Result<store::MessageLog*> open_message_log(std::uint32_t vhost_id);
    // A deleted vhost's messages: its log is closed and its directory removed (logged on failure).
    void remove_message_log(std::uint32_t vhost_id);
    // The ids of the message log directories there are (deleted vhosts' may be left by a crash).
    std::vector<std::uint32_t> message_log_ids() const;

    bool fsync_confirms() const { return fsync_confirms_; }
    store::SyncStats sync_stats() const { return sync_->stats(); }
    // From the end of a turn whose records someone waits for (a publisher confirm, a redrive's
    // HTTP answer) to their being stored: the storage's share of a confirm's latency, once per
    // waited-for turn (not per message). Two clock reads per such turn.
    const store::SyncLatency& commit_latency() const { return commit_latency_; }

    // ---- tickets
    // The ticket that covers everything buffered up to now. Asking for it makes the end of this
    // turn write and (with fsync_confirms) sync. A publisher's confirm needs only its message
    // stored (Need::Messages); everything else (a commit-ok after acks, a declare-ok) asks for
    // all of it, the acks and deliveries in the sidecars included.
    enum class Need : std::uint8_t { Messages, All };
    std::uint64_t ticket(Need need = Need::All);
    // Runs `done(ok)` on the loop once `ticket` is stored, or once storing it failed. Callers
    // whose object may go away first capture a weak handle.
    void when_stored(std::uint64_t ticket, Done done);

    // ---- the loop's part
    // Writes what is buffered to the OS (definitions first, then messages). The event loop calls
    // it before it writes to any socket. A failed write fails this turn's ticket (logged).
    void flush();
    // End of a loop turn: flush, then settle or request this turn's ticket.
    void end_turn();
    // The sync thread finished a round (posted to the loop).
    void on_synced(const store::SyncResult& result);
    // Every sync_interval_ms: sync what was written since the last round, so that what no one
    // waits for (acks, deliveries, confirms without fsync) is on disk within that time.
    void periodic_sync();
    // Shutdown: write and sync everything and wait for it; then stop() the sync thread (before
    // the event loop it posts to is destroyed).
    void finish_writes();
    void stop();
    // Blocks until the syncs requested so far are done (their completions are posted). For
    // tests, which have no event loop to wait in; never the loop.
    void wait_for_syncs();
    bool has_syncs_in_flight() const { return !in_sync_.empty(); }

    // ---- the definitions log's growth
    // Every durable declare and delete appends a record: once the log passes max(min, twice the
    // last snapshot), the broker compacts it with a snapshot of the live definitions, at the end
    // of a turn (two fdatasyncs on the loop thread; seldom, and amortised by the growth).
    bool definitions_due() const { return healthy() && meta_->log_bytes() >= compact_definitions_at_; }
    // Makes `snapshot` (every definition, including this turn's records) the new generation; a
    // failure is logged, the old generation stays, and the next try waits for as much growth.
    void compact_definitions(std::span<const std::byte> snapshot);
    void set_definitions_compaction_min(std::uint64_t bytes);  // tests: a small log compacts

    // False once an fdatasync failed: nothing can be called stored from then on.
    bool healthy() const { return !storage_failed_; }
    const std::string& failure() const { return failure_; }
    std::uint64_t write_failures() const { return write_failures_; }
    // Free bytes on the data directory's file system (statvfs), or nullopt.
    std::optional<std::uint64_t> free_bytes() const;

private:
    Durability(const Config& config, Post post, std::shared_ptr<store::FileSystem> fs);
    void complete(std::uint64_t ticket, bool ok);
    void write_failed(const std::string& why);
    void fail_storage(const std::string& why);

    std::string dir_;
    bool fsync_confirms_;
    store::LogOptions log_options_;
    std::shared_ptr<store::FileSystem> fs_;
    std::unique_ptr<store::FileLock> lock_;
    std::unique_ptr<store::SyncService> sync_;
    std::unique_ptr<store::MetaLog> meta_;
    std::map<std::uint32_t, std::unique_ptr<store::MessageLog>> logs_;

    std::uint64_t definition_appends_ = 0;
    std::uint64_t compact_definitions_min_ = 4 << 20;
    std::uint64_t compact_definitions_at_ = 4 << 20;

    // Tickets: next_ticket_ is the one this turn will settle; wanted_ says someone asked for it.
    std::uint64_t next_ticket_ = 1;
    bool wanted_ = false;
    bool wanted_events_ = false;  // someone this turn needs the sidecars synced too
    bool turn_failed_ = false;   // a write failed during this turn
    bool written_unsynced_ = false;  // written since the last sync request (for periodic_sync)
    struct InSync {
        std::uint64_t ticket;       // ours
        std::uint64_t sync_ticket;  // the SyncService's
        std::chrono::steady_clock::time_point requested;
    };
    store::SyncLatency commit_latency_;
    std::deque<InSync> in_sync_;
    std::map<std::uint64_t, std::vector<Done>> waiters_;

    std::uint64_t write_failures_ = 0;
    bool storage_failed_ = false;
    std::string failure_;
};

}  // namespace warren::broker
