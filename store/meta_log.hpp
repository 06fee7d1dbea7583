// The definitions log (one per broker): opaque records (the broker writes JSON) appended in
// generations. Generation g is a snapshot (g.snap, absent for generation 0) plus a log of the
// records after it (g.log). compact() writes the next snapshot atomically (tmp file, fsync,
// rename, fsync the directory) and starts its log; the old generation's files go after.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "store/buffer.hpp"
#include "store/file_system.hpp"
#include "store/recovery_stats.hpp"
#include "store/result.hpp"
#include "store/sync_service.hpp"

namespace warren::store {

struct MetaOptions {
    std::uint32_t epoch = 0;
    std::uint32_t max_record_size = std::uint32_t{1} << 30;
    WarnSink warn;
};

class MetaLog {
public:
    // Creates `dir` if needed and locks it (dir/LOCK). Call recover() next.
    static Result<std::unique_ptr<MetaLog>> open(FileSystem& fs, std::string dir, MetaOptions options,
                                                 SyncService& sync);
    ~MetaLog();
    MetaLog(const MetaLog&) = delete;
    MetaLog& operator=(const MetaLog&) = delete;

    enum class Kind { Snapshot, Entry };
    // The newest good snapshot first (none for generation 0), then the log's records in order.
    // Bad records are skipped and reported, a torn tail is cut. Fails only when the directory
    // cannot be listed.
    using Visitor = std::function<void(Kind kind, std::span<const std::byte> bytes)>;
    Result<RecoveryStats> recover(const Visitor& visit);

    // True when recovery could not read the current log: flush() fails until compact().
    bool needs_compaction() const { return log_unusable_; }

    // Buffered; written by flush() and made durable by the next sync ticket, as messages are.
    void append(std::span<const std::byte> bytes);
    // One write; on an error the file is cut back and the records stay buffered for the next
    // flush (definitions are never dropped: the broker holds them in memory already).
    Status flush();
    bool has_unflushed() const { return !pending_.empty(); }

    // Makes `snapshot` (the broker's whole definitions, including every record appended so far)
    // the new generation. The broker calls it after recover(), and when log_bytes() grows past a
    // threshold. Synchronous: it syncs on the calling thread (two fdatasyncs and two
    // directory fsyncs), so call it at startup or seldom. Buffered records are dropped: the
    // snapshot has them. On an error before the rename the old generation stays current.
    Status compact(std::span<const std::byte> snapshot);

    std::uint32_t generation() const { return generation_; }
    std::uint64_t log_bytes() const { return written_ + pending_.size(); }  // compact past a threshold

private:
    MetaLog(FileSystem& fs, std::string dir, MetaOptions options, SyncService& sync, std::unique_ptr<FileLock> lock,
            std::shared_ptr<File> dir_handle);
    std::string path_of(std::uint32_t generation, const char* extension) const;
    Status write_new_file(const std::string& path, std::uint32_t generation, bool snapshot,
                          std::span<const std::byte> payload, std::shared_ptr<File>* out);
    bool read_snapshot(std::uint32_t generation, const Visitor& visit, RecoveryStats& stats, Buffer& window);
    void read_log(const Visitor& visit, RecoveryStats& stats, Buffer& window);

    FileSystem& fs_;
    std::string dir_;
    MetaOptions options_;
    SyncService& sync_;
    std::unique_ptr<FileLock> lock_;
    std::shared_ptr<File> dir_handle_;
    std::shared_ptr<File> log_;  // the current generation's log; created by the first flush
    std::uint32_t generation_ = 0;
    std::uint32_t next_generation_ = 1;
    std::uint64_t written_ = 0;  // bytes of the log file (file header included)
    std::uint64_t next_seq_ = 1;
    Buffer pending_;
    bool recovered_ = false;
    bool log_unusable_ = false;
};

}  // namespace warren::store
