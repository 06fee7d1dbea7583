// MetaLog: appending, flushing and compacting the definitions log.
#include "store/meta_log.hpp"

#include <fmt/format.h>

#include <cstring>
#include <stdexcept>

#include "store/format.hpp"

namespace warren::store {

Result<std::unique_ptr<MetaLog>> MetaLog::open(FileSystem& fs, std::string dir, MetaOptions options,
                                               SyncService& sync) {
    if (Status s = fs.make_directories(dir); !s) return s.error();
    auto lock = fs.lock(join_path(dir, "LOCK"));
    if (!lock) return lock.error();
    auto handle = fs.open_directory(dir);
    if (!handle) return handle.error();
    return std::unique_ptr<MetaLog>(
        new MetaLog(fs, std::move(dir), std::move(options), sync, std::move(*lock), std::move(*handle)));
}

MetaLog::MetaLog(FileSystem& fs, std::string dir, MetaOptions options, SyncService& sync,
                 std::unique_ptr<FileLock> lock, std::shared_ptr<File> dir_handle)
    : fs_(fs),
      dir_(std::move(dir)),
      options_(std::move(options)),
      sync_(sync),
      lock_(std::move(lock)),
      dir_handle_(std::move(dir_handle)) {}

MetaLog::~MetaLog() = default;

std::string MetaLog::path_of(std::uint32_t generation, const char* extension) const {
    return join_path(dir_, fmt::format("{:08x}.{}", generation, extension));
}

void MetaLog::append(std::span<const std::byte> bytes) {
    if (!recovered_) throw std::logic_error("store: MetaLog::append before recover()");
    if (bytes.size() > options_.max_record_size) throw std::length_error("store: meta record over max_record_size");
    std::byte* p = pending_.extend(record_header_size + bytes.size());
    if (!bytes.empty()) std::memcpy(p + record_header_size, bytes.data(), bytes.size());
    RecordHeader h;
    h.payload_size = static_cast<std::uint32_t>(bytes.size());
    h.epoch = options_.epoch;
    h.seq = next_seq_++;
    h.type = RecordType::Entry;
    seal_record(p, h);
}

Status MetaLog::flush() {
    if (pending_.empty()) return {};
    if (log_unusable_)
        return make_error(std::errc::io_error,
                          fmt::format("store: {} could not be read at recovery: compact() first", dir_));
    if (!log_) {
        auto file = fs_.open(path_of(generation_, "log"), OpenMode::CreateTruncate);
        if (!file) return file.error();
        log_ = std::move(*file);
        written_ = 0;
        sync_.mark_dirty(dir_handle_, SyncClass::Directory);
    }
    std::byte header[file_header_size];
    iovec parts[2];
    std::size_t count = 0;
    if (written_ == 0) {
        encode_file_header(header, {FileKind::MetaLog, generation_, options_.epoch});
        parts[count++] = {header, file_header_size};
    }
    parts[count++] = {pending_.data(), pending_.size()};
    if (Status st = write_fully(*log_, {parts, count}, written_); !st) {
        if (std::error_code e = log_->truncate(written_); e && options_.warn)
            options_.warn(fmt::format("store: cannot cut {} back after a failed write: {}", log_->path(), e.message()));
        return st;
    }
    written_ += (written_ == 0 ? file_header_size : 0) + pending_.size();
    pending_.clear();
    sync_.mark_dirty(log_, SyncClass::Meta);
    return {};
}

// Creates `path` holding a file header and, for a snapshot, one record; syncs it.
Status MetaLog::write_new_file(const std::string& path, std::uint32_t generation, bool snapshot,
                               std::span<const std::byte> payload, std::shared_ptr<File>* out) {
    auto file = fs_.open(path, OpenMode::CreateTruncate);
    if (!file) return file.error();
    std::byte header[file_header_size];
    encode_file_header(header, {snapshot ? FileKind::Snapshot : FileKind::MetaLog, generation, options_.epoch});
    std::byte record[record_header_size];
    iovec parts[3] = {{header, file_header_size}, {}, {}};
    std::size_t count = 1;
    if (snapshot) {
        RecordHeader h;
        h.payload_size = static_cast<std::uint32_t>(payload.size());
        h.epoch = options_.epoch;
        h.seq = next_seq_++;
        h.type = RecordType::Snapshot;
        seal_record_header(record, h, payload);
        parts[count++] = {record, record_header_size};
        parts[count++] = {const_cast<std::byte*>(payload.data()), payload.size()};
    }
    if (Status st = write_fully(**file, {parts, count}, 0); !st) return st;
    if (std::error_code e = (*file)->sync()) return make_error(e, fmt::format("fdatasync {}: {}", path, e.message()));
    if (out) *out = std::move(*file);
    return {};
}

Status MetaLog::compact(std::span<const std::byte> snapshot) {
    if (!recovered_) throw std::logic_error("store: MetaLog::compact before recover()");
    if (snapshot.size() > options_.max_record_size) throw std::length_error("store: snapshot over max_record_size");
    const std::uint32_t next = next_generation_;
    const std::string tmp = join_path(dir_, "snapshot.tmp");
    const std::string snap = path_of(next, "snap");
    const std::string log = path_of(next, "log");
    auto dir_sync = [&]() -> Status {
        if (std::error_code e = dir_handle_->sync())
            return make_error(e, fmt::format("fsync {}: {}", dir_, e.message()));
        return {};
    };
    // 1. The snapshot, complete and synced, under a name recovery ignores.
    if (Status st = write_new_file(tmp, next, true, snapshot, nullptr); !st) {
        (void)fs_.unlink(tmp);
        return st;
    }
    // 2. The new generation's (empty) log, before the snapshot can be seen.
    std::shared_ptr<File> new_log;
    if (Status st = write_new_file(log, next, false, {}, &new_log); !st) {
        (void)fs_.unlink(tmp);
        (void)fs_.unlink(log);
        return st;
    }
    // 3. The switch: one rename, made durable by syncing the directory.
    if (Status st = fs_.rename(tmp, snap); !st) {
        (void)fs_.unlink(tmp);
        (void)fs_.unlink(log);
        return st;
    }
    const std::uint32_t old = generation_;
    // From here on the new generation is the current one, even if the directory sync fails:
    // a recovery that sees the new snapshot ignores the old log.
    generation_ = next;
    next_generation_ = next + 1;
    log_ = std::move(new_log);
    written_ = file_header_size;
    pending_.clear();
    log_unusable_ = false;
    if (Status st = dir_sync(); !st) return st;
    // 4. The old generation's files; recovery deletes them too if a crash comes first.
    for (const char* extension : {"log", "snap"}) {
        std::string path = path_of(old, extension);
        if (Status st = fs_.unlink(path); !st && st.code() != std::errc::no_such_file_or_directory && options_.warn)
            options_.warn("store: " + st.error().message);
    }
    sync_.mark_dirty(dir_handle_, SyncClass::Directory);
    return {};
}

}  // namespace warren::store
