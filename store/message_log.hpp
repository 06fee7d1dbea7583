// The message log of one vhost: persistent messages in append-only segment files, and what
// happened to them (delivered, returned, acked) in each segment's sidecar. The loop calls it
// directly; appends and events are buffered and written by flush(), one write per file; syncing,
// zero-filling the head segment ahead of its writes and writing sealed segments' indexes are the
// SyncService's. A segment is deleted once every (message, queue) pair in it is settled.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "store/buffer.hpp"
#include "store/event_record.hpp"
#include "store/file_system.hpp"
#include "store/message_record.hpp"
#include "store/recovery_stats.hpp"
#include "store/result.hpp"
#include "store/segment.hpp"
#include "store/sync_service.hpp"

namespace warren::store {

// Where a record is: segment number << 32 | offset of the record in the segment file.
using Location = std::uint64_t;
inline constexpr Location no_location = 0;  // offset 0 is a file header, never a record
inline constexpr std::uint32_t location_segment(Location l) {
    return static_cast<std::uint32_t>(l >> 32);
}
inline constexpr std::uint32_t location_offset(Location l) {
    return static_cast<std::uint32_t>(l);
}

struct LogOptions {
    std::uint64_t segment_size = std::uint64_t{64} << 20;    // roll to a new segment past this (4 KiB .. 2 GiB)
    std::uint32_t epoch = 0;                                 // written in every record and file header
    std::size_t read_ahead = std::size_t{256} << 10;         // bytes read at once by read()
    std::uint32_t max_record_size = std::uint32_t{1} << 30;  // payload bound; larger lengths are corrupt
    // Zero-fill the head segment this far ahead of its writes (the sync service's extender), so
    // that a sync after an append flushes data only, not the file system's journal. 0: off.
    std::uint64_t preallocate = 0;
    // ... but only while this much stays free on the file system: near a full disk the space is
    // for the sidecars' and definitions' writes, which zeros reserved in a segment would starve.
    std::uint64_t preallocate_keep_free = std::uint64_t{64} << 20;
    // Keep up to this many settled segment files (renamed *.spare) and write the next segments
    // into them: their blocks are allocated already, so a sync flushes data only, and nothing is
    // freed or allocated per segment. 0: delete settled segments.
    std::uint32_t reuse_segments = 0;
    WarnSink warn;  // one line per problem found
};

// A (message, queue) pair still unsettled when the log ended, as recover() hands it over.
struct RecoveredEntry {
    std::uint32_t queue_id = 0;
    std::uint64_t queue_seq = 0;
    Location location = no_location;
    std::uint32_t record_size = 0;  // header and payload: the bytes read() will read
    std::uint32_t body_size = 0;
    std::uint64_t publish_ms = 0;
    std::uint32_t ttl_ms = no_ttl;
    std::uint8_t priority = 0;
    std::uint8_t flags = 0;
    std::uint16_t delivery_count = 0;  // from the last Return or Hold event
    bool delivered = false;            // delivered and neither returned nor acked since
    // From the last event, if it was a Hold: back in its queue but not ready before this
    // instant (unix ms; -1: ready). A retry with backoff.
    std::int64_t hold_until_ms = -1;
    // From a checkpoint: the message's absolute deadline (unix ms; -1: none), which then
    // replaces publish_ms and ttl_ms (the queue that wrote the checkpoint knew it).
    bool has_deadline = false;
    std::int64_t deadline_ms = -1;
};

struct LogStats {
    std::uint64_t segments = 0;
    std::uint64_t bytes_on_disk = 0;       // .seg and .evt bytes written (their logical sizes)
    std::uint64_t preallocated_bytes = 0;  // zeros ahead of the head segment's records
    std::uint64_t unflushed_bytes = 0;
    std::uint64_t live_pairs = 0;
    std::uint64_t appends = 0;
    std::uint64_t flushes = 0;
    std::uint64_t write_errors = 0;
    std::uint64_t bad_records = 0;    // reads whose record failed its checks
    std::uint64_t read_errors = 0;    // reads the file system refused
    std::uint64_t stale_events = 0;   // events for locations the log no longer holds (ignored)
    std::uint64_t settle_errors = 0;  // an ack or forget with nothing left unsettled (a caller bug)
    std::uint64_t segments_deleted = 0;
    std::uint64_t segments_reused = 0;  // segments written into the file of a settled one
    std::uint64_t indexes_written = 0;       // sealed segments' .idx, reported done by the extender
    std::uint64_t index_write_failures = 0;  // ... or failed (logged; the segment has no index)
    std::uint64_t index_writes_pending = 0;  // handed to the extender, not reported done yet
};

class MessageLog {
public:
    // Creates `dir` if needed and locks it (dir/LOCK). Call recover() next, before anything else.
    static Result<std::unique_ptr<MessageLog>> open(FileSystem& fs, std::string dir, LogOptions options,
                                                    SyncService& sync);
    // Waits for the index writes still on the extender (a close must not lose the head's index,
    // nor leave an .idx appearing in a directory being removed).
    ~MessageLog();
    MessageLog(const MessageLog&) = delete;
    MessageLog& operator=(const MessageLog&) = delete;

    // Reads every segment and sidecar, cuts torn tails, skips bad records (counted, reported)
    // and calls `visit` for each unsettled pair, segment by segment in order. `visit` returns
    // false to drop a pair (its queue no longer exists, it expired): it counts as settled.
    // Fully settled segments are deleted. Fails only when the directory cannot be listed.
    using Visitor = std::function<bool(const RecoveredEntry&)>;
    Result<RecoveryStats> recover(const Visitor& visit);

    // Buffers a message record; its segment holds one unsettled pair per queue in m.queues.
    Location append(const MessageRecord& m);
    // Events about one pair (buffered). Each pair is settled exactly once, by ack or forget.
    void deliver(Location location, std::uint32_t queue_id);
    void ret(Location location, std::uint32_t queue_id, std::uint16_t delivery_count);  // back in the queue
    // Back in the queue, but held until `hold_until_ms` (unix ms): a retry waiting for its backoff.
    void hold(Location location, std::uint32_t queue_id, std::uint16_t delivery_count, std::int64_t hold_until_ms);
    void ack(Location location, std::uint32_t queue_id);  // settled
    // Settled without an event: the queue is deleted (recovery drops pairs of unknown queues).
    void forget(Location location);

    // Writes everything buffered: each segment with new records, then each sidecar with events,
    // one write per file, and marks the files for the next sync; hands the indexes of the
    // segments sealed since to the sync service's extender (their outcome is posted back). All
    // or nothing: on an error the files are cut back to where they were, the records appended
    // since the previous flush are dropped (their locations are dead: contains() is false, events
    // on them are ignored) and their segment takes no more appends; buffered events are kept for
    // the next flush.
    Status flush();
    bool has_unflushed() const { return !unflushed_segments_.empty() || !unflushed_sidecars_.empty(); }

    // True while the log holds a record at `location` (written, or buffered).
    bool contains(Location location) const;
    // True while the log holds a record at `location` that a flush has written (a buffered one
    // can still be dropped by a failed flush).
    bool is_written(Location location) const;
    // The record at `location`, its checksum checked (buffered records are served from memory).
    // The view is valid until the next call to read(), append() or flush(). A read from the
    // file reads `read_ahead` bytes at once (LogOptions::read_ahead by default): reading in
    // order costs one pread per window; a reader that jumps around (messages released in
    // deadline order) asks for less.
    Result<MessageRecordView> read(Location location, std::size_t read_ahead = 0);

    // A clean shutdown: with nothing buffered, records every unsettled pair (as the broker's
    // queues hold them, deadlines included) and the size of every file, so that the next
    // recover() reads this instead of every segment and sidecar. It is used only if no file
    // changed since, and deleted once read. Refused (an error) when the pairs do not add up to
    // what the log counts per segment: then the next start reads the segments as after a crash.
    // It waits for the sync service's extender and cuts the zeros off the segments first, so
    // that every file's size is its logical size (shutdown only: it blocks). Before anything
    // else, whether the checkpoint then succeeds or not, it seals the head segment and writes
    // its index, so that no later start reads that segment record by record; a later append
    // goes to a new segment. It waits for every index write it handed over (shutdown only).
    Status write_checkpoint(std::span<const RecoveredEntry> pairs);

    LogStats stats() const;
    const std::string& directory() const { return dir_; }

private:
    MessageLog(FileSystem& fs, std::string dir, LogOptions options, SyncService& sync, std::unique_ptr<FileLock> lock,
               std::shared_ptr<File> dir_handle);

    Segment* find(std::uint32_t number) const;
    Segment* holder(Location location) const;  // the segment holding a live record there, or null
    Segment& add_segment(std::uint32_t number);
    Segment& roll();
    void event(Segment& segment, const Event& e);
    void event_at(Location location, const Event& e);
    void settle(Segment& segment, std::uint32_t offset);
    void doom(Segment& segment);
    Status write_segments();
    Result<std::shared_ptr<File>> create_segment_file(Segment& s);
    bool keep_for_reuse(Segment& s, bool extender_done);
    Status write_sidecars();
    void commit();
    void roll_back();
    void delete_doomed();
    void preallocate_head();
    Status trim_preallocation();
    void write_indexes();
    void write_index(Segment& s);
    void index_written(const std::shared_ptr<IndexWrite>& w);
    void wait_for_index_writes();
    void seal_head();
    Result<const std::byte*> load(Segment& segment, std::uint32_t offset, std::size_t read_ahead);
    std::string path_of(std::uint32_t number, const char* extension) const;
    void warn(const std::string& line) const;

    // Recovery (message_log_recovery.cpp).
    struct RecoveryScratch;
    void recover_segment(std::uint32_t number, bool has_sidecar, bool has_index, const Visitor& visit,
                         RecoveryStats& stats, RecoveryScratch& scratch);
    void scan_sidecar(File& file, const std::string& path, RecoveryStats& stats, RecoveryScratch& scratch);
    // The segment's records from its .idx, if it proves itself and matches the segment's size.
    bool read_segment_index(std::uint32_t number, File& segment, std::uint64_t segment_size, RecoveryStats& stats,
                            RecoveryScratch& scratch);
    // Writes the .idx of a segment recovery has just read whole, so the next one need not.
    void index_recovered(Segment& s, RecoveryStats& stats, RecoveryScratch& scratch, std::uint64_t last_seq,
                         std::uint32_t last_crc);
    // The checkpoint, if there is one that matches the files: true when it was used.
    bool recover_from_checkpoint(const Visitor& visit, RecoveryStats& stats);

    FileSystem& fs_;
    std::string dir_;
    LogOptions options_;
    SyncService& sync_;
    std::unique_ptr<FileLock> lock_;
    std::shared_ptr<File> dir_handle_;

    std::deque<std::unique_ptr<Segment>> segments_;  // segments_[i] is number first_number_ + i (or gone)
    std::uint32_t first_number_ = 1;
    std::uint32_t next_number_ = 1;
    Segment* head_ = nullptr;  // takes appends; null until the first append after open or a failure
    std::uint64_t next_seq_ = 1;
    bool recovered_ = false;
    bool preallocation_warned_ = false;  // a failed zero-fill was reported, none worked since

    std::vector<Segment*> unflushed_segments_;
    std::vector<Segment*> unflushed_sidecars_;
    std::vector<Segment*> doomed_;
    std::vector<std::string> spares_;  // settled segments' files kept for reuse (LogOptions::reuse_segments)
    // Sealed, their .idx not handed over yet: the flush that writes their last records does.
    std::vector<Segment*> index_due_;
    // Handed to the extender, their completion not processed yet (a deleted segment's too).
    std::vector<std::shared_ptr<IndexWrite>> index_writes_;
    // What a completion posted to the loop holds: null once the log is gone.
    std::shared_ptr<MessageLog*> self_ = std::make_shared<MessageLog*>(this);
    struct Undo {
        File* file;
        std::uint64_t size;
    };
    std::vector<Undo> undo_;
    std::vector<DirtyFile> dirty_;

    Buffer read_buffer_;  // read-ahead: bytes [read_offset_, + size) of segment read_segment_
    std::uint32_t read_segment_ = 0;
    std::uint64_t read_offset_ = 0;

    LogStats stats_;
};

}  // namespace warren::store
