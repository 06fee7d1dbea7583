// MessageLog: appends and events buffered per segment, written at flush, segments deleted when
// settled, the head segment zero-filled ahead and sealed segments indexed (both by the sync
// service's extender). Runs on the event loop; the only system calls are in flush() (and read()).
#include "store/message_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "store/format.hpp"
#include "store/segment_index.hpp"

namespace warren::store {

Result<std::unique_ptr<MessageLog>> MessageLog::open(FileSystem& fs, std::string dir, LogOptions options,
                                                     SyncService& sync) {
    if (options.segment_size < 4096 || options.segment_size > (std::uint64_t{1} << 31) || options.read_ahead < 4096)
        return make_error(std::errc::invalid_argument, "store: segment_size must be 4 KiB..2 GiB, read_ahead >= 4 KiB");
    if (Status s = fs.make_directories(dir); !s) return s.error();
    auto lock = fs.lock(join_path(dir, "LOCK"));
    if (!lock) return lock.error();
    auto handle = fs.open_directory(dir);
    if (!handle) return handle.error();
    return std::unique_ptr<MessageLog>(
        new MessageLog(fs, std::move(dir), std::move(options), sync, std::move(*lock), std::move(*handle)));
}

MessageLog::MessageLog(FileSystem& fs, std::string dir, LogOptions options, SyncService& sync,
                       std::unique_ptr<FileLock> lock, std::shared_ptr<File> dir_handle)
    : fs_(fs),
      dir_(std::move(dir)),
      options_(std::move(options)),
      sync_(sync),
      lock_(std::move(lock)),
      dir_handle_(std::move(dir_handle)) {}

MessageLog::~MessageLog() { wait_for_index_writes(); }

std::string MessageLog::path_of(std::uint32_t number, const char* extension) const {
    return join_path(dir_, fmt::format("{:08x}.{}", number, extension));
}

void MessageLog::warn(const std::string& line) const {
    if (options_.warn) options_.warn(line);
}

Segment* MessageLog::find(std::uint32_t number) const {
    if (number < first_number_ || number - first_number_ >= segments_.size()) return nullptr;
    return segments_[number - first_number_].get();
}

Segment* MessageLog::holder(Location location) const {
    Segment* s = find(location_segment(location));
    std::uint32_t offset = location_offset(location);
    if (!s || s->doomed || offset < file_header_size || offset >= s->size()) return nullptr;
    return s;
}

bool MessageLog::contains(Location location) const {
    return holder(location) != nullptr;
}

bool MessageLog::is_written(Location location) const {
    Segment* s = holder(location);
    return s && location_offset(location) < s->written;
}

Segment& MessageLog::add_segment(std::uint32_t number) {
    if (segments_.empty()) first_number_ = number;
    while (segments_.size() <= number - first_number_) segments_.push_back(nullptr);
    auto& slot = segments_[number - first_number_];
    slot = std::make_unique<Segment>();
    slot->number = number;
    return *slot;
}

Segment& MessageLog::roll() {
    if (head_) {
        head_->sealed = true;
        if (head_->live == 0) doom(*head_);
        if (head_->indexable) index_due_.push_back(head_);
        // Its buffer is needed until the flush; the new head starts small and grows once.
    }
    Segment& s = add_segment(next_number_++);
    s.reusable = true;
    FileHeader header{FileKind::Segment, s.number, options_.epoch};
    if (!spares_.empty()) {
        // Written into a settled segment's file at its first flush (create_segment_file).
        s.reuse_file = std::move(spares_.back());
        spares_.pop_back();
        s.reused = true;
        s.no_preallocation = true;  // its blocks are there already
        header.version = 3;         // what follows its records may be the file's earlier ones
    }
    encode_file_header(s.pending.extend(file_header_size), header);
    head_ = &s;
    return s;
}

// A segment's file at its first write: the settled segment's file it claimed at the roll, renamed
// (its header is rewritten by that write; a crash before the write leaves a file whose records
// name another segment, none of them this one's), or a new one.
Result<std::shared_ptr<File>> MessageLog::create_segment_file(Segment& s) {
    const std::string path = path_of(s.number, "seg");
    if (s.reused) {
        const std::string spare = std::exchange(s.reuse_file, {});
        Status renamed = fs_.rename(spare, path);
        if (renamed) {
            auto file = fs_.open(path, OpenMode::ReadWrite);
            if (file) {
                ++stats_.segments_reused;
                return file;
            }
            renamed = file.error();
        }
        warn(fmt::format("store: cannot reuse {} for {}: {}; creating it", spare, path, renamed.error().message));
        (void)fs_.unlink(spare);
        s.reused = false;
        encode_file_header(s.pending.data(), {FileKind::Segment, s.number, options_.epoch});
    }
    return fs_.open(path, OpenMode::CreateTruncate);
}

Location MessageLog::append(const MessageRecord& m) {
    if (!recovered_) throw std::logic_error("store: MessageLog::append before recover()");
    std::size_t payload = message_payload_size(m);
    if (payload > options_.max_record_size) throw std::length_error("store: message record over max_record_size");
    std::size_t total = record_header_size + payload;
    Segment* s = head_;
    if (!s || s->sealed || (s->size() > file_header_size && s->size() + total > options_.segment_size)) s = &roll();
    auto offset = static_cast<std::uint32_t>(s->size());
    std::byte* p = s->pending.extend(total);
    encode_message_payload(p + record_header_size, m);
    RecordHeader h;
    h.payload_size = static_cast<std::uint32_t>(payload);
    h.epoch = options_.epoch;
    h.seq = next_seq_++;
    h.type = RecordType::Message;
    h.segment = s->number;
    seal_record(p, h);
    s->last_seq = h.seq;
    s->last_crc = peek_record_header(p).crc;
    if (s->indexable) {
        // What recovery needs of this record, without the body: the segment's index once sealed.
        if (s->index.empty()) begin_index(s->index);
        append_index_entry(s->index,
                           {offset,
                            static_cast<std::uint32_t>(total),
                            static_cast<std::uint32_t>(m.body.size()),
                            m.ttl_ms,
                            m.publish_ms,
                            m.priority,
                            m.flags,
                            {}},
                           {p + record_header_size + message_fixed_size, m.queues.size() * queue_entry_size});
        ++s->index_records;
        if (s->index.size() > options_.max_record_size) {
            s->indexable = false;  // one record could not hold it: recovery reads this segment whole
            s->index = Buffer();
        }
    }
    s->live += m.queues.size();
    s->pending_pairs += m.queues.size();
    if (!s->queued_write) {
        s->queued_write = true;
        unflushed_segments_.push_back(s);
    }
    ++stats_.appends;
    return (Location{s->number} << 32) | offset;
}

void MessageLog::event(Segment& s, const Event& e) {
    append_event(s.events, e);
    if (!s.queued_events) {
        s.queued_events = true;
        unflushed_sidecars_.push_back(&s);
    }
}

void MessageLog::event_at(Location location, const Event& e) {
    if (Segment* s = holder(location))
        event(*s, e);
    else
        ++stats_.stale_events;
}

void MessageLog::deliver(Location location, std::uint32_t queue_id) {
    event_at(location, {location_offset(location), queue_id, 0, EventKind::Deliver});
}

void MessageLog::ret(Location location, std::uint32_t queue_id, std::uint16_t delivery_count) {
    event_at(location, {location_offset(location), queue_id, delivery_count, EventKind::Return});
}

void MessageLog::hold(Location location, std::uint32_t queue_id, std::uint16_t delivery_count,
                      std::int64_t hold_until_ms) {
    event_at(location, {location_offset(location), queue_id, delivery_count, EventKind::Hold, hold_until_ms});
}

void MessageLog::ack(Location location, std::uint32_t queue_id) {
    Segment* s = holder(location);
    if (!s) {
        ++stats_.stale_events;
        return;
    }
    event(*s, {location_offset(location), queue_id, 0, EventKind::Ack});
    settle(*s, location_offset(location));
}

void MessageLog::forget(Location location) {
    if (Segment* s = holder(location))
        settle(*s, location_offset(location));
    else
        ++stats_.stale_events;
}

void MessageLog::settle(Segment& s, std::uint32_t offset) {
    if (s.live == 0) {
        ++stats_.settle_errors;
        return;
    }
    --s.live;
    if (offset >= s.written) ++s.pending_settled;
    if (s.live == 0 && &s != head_) doom(s);
}

void MessageLog::doom(Segment& s) {
    if (s.doomed) return;
    s.doomed = true;
    doomed_.push_back(&s);
}

Status MessageLog::flush() {
    if (!has_unflushed() && doomed_.empty()) return {};
    undo_.clear();
    dirty_.clear();
    Status status = write_segments();
    if (status) status = write_sidecars();
    if (!status) {
        roll_back();
        return status;
    }
    commit();
    write_indexes();
    delete_doomed();
    preallocate_head();
    sync_.mark_dirty(dirty_);
    ++stats_.flushes;
    return {};
}

Status MessageLog::write_segments() {
    for (Segment* s : unflushed_segments_) {
        if (s->doomed || s->pending.empty()) continue;
        if (!s->file) {
            auto file = create_segment_file(*s);
            if (!file) return file.error();
            s->file = std::move(*file);
            dirty_.push_back({dir_handle_, SyncClass::Directory});
        }
        undo_.push_back({s->file.get(), s->written});
        // In a reused file the write goes on with zeros to the end of its last page: a page
        // written whole is never read first, and one of the earlier content that the page cache
        // no longer holds would be read from the disk, on the loop. The next write overwrites them.
        static constexpr std::byte page_of_zeros[4096] = {};
        const std::uint64_t end = s->written + s->pending.size();
        iovec parts[2] = {{s->pending.data(), s->pending.size()},
                          {const_cast<std::byte*>(page_of_zeros), (4096 - end % 4096) % 4096}};
        const std::size_t count = s->reused && parts[1].iov_len != 0 ? 2 : 1;
        if (Status st = write_fully(*s->file, {parts, count}, s->written); !st) return st;
    }
    return {};
}

Status MessageLog::write_sidecars() {
    for (Segment* s : unflushed_sidecars_) {
        if (s->doomed || s->events.empty()) continue;
        if (!s->sidecar) {
            auto file = fs_.open(path_of(s->number, "evt"), OpenMode::CreateTruncate);
            if (!file) return file.error();
            s->sidecar = std::move(*file);
            s->sidecar_written = 0;
            dirty_.push_back({dir_handle_, SyncClass::Directory});
        }
        std::byte file_header[file_header_size];
        std::byte record_header[record_header_size];
        iovec parts[3];
        std::size_t count = 0;
        if (s->sidecar_written == 0) {
            encode_file_header(file_header, {FileKind::Sidecar, s->number, options_.epoch});
            parts[count++] = {file_header, file_header_size};
        }
        RecordHeader h;
        h.payload_size = static_cast<std::uint32_t>(s->events.size());
        h.epoch = options_.epoch;
        h.seq = next_seq_;  // taken for good in commit(): a failed flush reuses it
        h.type = RecordType::Events;
        seal_record_header(record_header, h, s->events.span());
        parts[count++] = {record_header, record_header_size};
        parts[count++] = {s->events.data(), s->events.size()};
        undo_.push_back({s->sidecar.get(), s->sidecar_written});
        if (Status st = write_fully(*s->sidecar, {parts, count}, s->sidecar_written); !st) return st;
        ++next_seq_;
    }
    return {};
}

void MessageLog::commit() {
    constexpr std::size_t keep_buffer = std::size_t{8} << 20;
    for (Segment* s : unflushed_segments_) {
        s->queued_write = false;
        if (!s->doomed && !s->pending.empty()) {
            s->written += s->pending.size();
            dirty_.push_back({s->file, SyncClass::Segment});
        }
        s->pending.clear();
        s->pending_pairs = s->pending_settled = 0;
        if (s != head_)
            s->pending = Buffer();  // a rolled segment gets no more appends
        else
            s->pending.release_if_empty_above(keep_buffer);
    }
    unflushed_segments_.clear();
    for (Segment* s : unflushed_sidecars_) {
        s->queued_events = false;
        if (!s->doomed && !s->events.empty()) {
            if (s->sidecar_written == 0) s->sidecar_written = file_header_size;
            s->sidecar_written += record_header_size + s->events.size();
            dirty_.push_back({s->sidecar, SyncClass::Sidecar});
        }
        s->events.clear();
        s->events.release_if_empty_above(keep_buffer);
    }
    unflushed_sidecars_.clear();
}

void MessageLog::roll_back() {
    ++stats_.write_errors;
    // Cut every file this flush wrote back to its size before the flush.
    for (const Undo& u : undo_) {
        if (std::error_code e = u.file->truncate(u.size))
            warn(fmt::format("store: cannot cut {} back to {} bytes after a failed write: {}", u.file->path(), u.size,
                             e.message()));
    }
    // The records of this flush are not stored: drop them and seal their segments, so that
    // their offsets are never used again (events about them may have reached a sidecar).
    for (Segment* s : unflushed_segments_) {
        s->queued_write = false;
        if (s->pending.empty()) continue;
        s->live -= s->pending_pairs - s->pending_settled;
        s->pending.clear();
        s->indexable = false;  // its index holds the dropped records
        s->index = Buffer();
        s->pending_pairs = s->pending_settled = 0;
        s->sealed = true;
        if (s == head_) head_ = nullptr;
        if (s->live == 0) doom(*s);
    }
    unflushed_segments_.clear();
    // Events stay buffered for the next flush, except those about the dropped records.
    for (Segment* s : unflushed_sidecars_) {
        Buffer kept;
        EventCursor events(s->events.span());
        for (Event e; events.next(e);)
            if (e.offset < s->written) append_event(kept, e);
        s->events = std::move(kept);
    }
    // A sidecar written for the first time in this flush gets its header again next time.
    undo_.clear();
}

// The segments sealed since the last flush are whole on disk now: each gets its index, written
// by the extender (one write, to the page cache), not the loop: for a 64 MiB segment of 1 KiB
// messages that is 2-3 MB, a millisecond or more of a loop turn. It is not synced: recovery
// checks it against its segment before using it, so one lost or torn in a power cut only means
// that segment is read whole; no fdatasync (and journal commit) competes with the confirms'.
// A failed write costs the same and nothing else.
void MessageLog::write_indexes() {
    for (Segment* s : index_due_) {
        if (!s->doomed && s->indexable && s->file && s->index_records != 0) write_index(*s);
        s->index = Buffer();
    }
    index_due_.clear();
}

// Hands the index over. The extender runs it after the zero-fills asked for this segment while it
// was the head, then cuts the zeros (IndexWrite::run); until the completion comes back the segment
// has no index as far as the loop knows, and deleting it cancels the write.
void MessageLog::write_index(Segment& s) {
    auto w = std::make_shared<IndexWrite>();
    w->fs = &fs_;
    w->segment = s.file;
    w->zeros = s.zeros;
    w->reused = s.reused;
    w->path = path_of(s.number, "idx");
    w->number = s.number;
    w->epoch = options_.epoch;
    w->segment_size = s.written;
    w->last_seq = s.last_seq;
    w->last_crc = s.last_crc;
    w->record_count = s.index_records;
    w->payload = std::move(s.index);
    s.index_write = w;
    index_writes_.push_back(w);
    sync_.run_on_extender([w] { w->run(); },
                          [w, log = std::weak_ptr<MessageLog*>(self_)] {
                              if (auto self = log.lock()) (*self)->index_written(w);
                          });
}

// Loop thread: an index write is done (posted by the extender, or found done by a wait). Once
// only: a completion that comes after a wait settled it finds nothing to do.
void MessageLog::index_written(const std::shared_ptr<IndexWrite>& w) {
    auto it = std::find(index_writes_.begin(), index_writes_.end(), w);
    if (it == index_writes_.end()) return;
    index_writes_.erase(it);
    if (w->written) {
        ++stats_.indexes_written;
    } else if (!w->error.empty()) {
        ++stats_.index_write_failures;
        warn(w->error);
    }
    // A deleted segment is gone from segments_ (its .idx was dealt with by cancel()).
    Segment* s = find(w->number);
    if (!s || s->index_write != w) return;
    s->index_write.reset();
    s->has_index_file = w->written;
}

// Blocks until every index write handed over is done, and settles them (a clean stop, and the
// log's end: nothing of theirs may happen after it).
void MessageLog::wait_for_index_writes() {
    while (!index_writes_.empty()) {
        std::shared_ptr<IndexWrite> w = index_writes_.front();
        w->wait();
        index_written(w);
    }
}

// A clean stop: the head takes no more appends and gets its index, as a segment sealed by a
// roll does. The checkpoint spares the next start reading it, but is deleted once read: without
// this, the first start after a crash that follows (or a start whose checkpoint is refused)
// would read the head record by record, up to segment_size. The index never goes stale: every
// recovered segment is sealed, so appends after the restart go to a new segment, and a crash
// between the cut of the zeros and the index write leaves either no index or one whose segment
// size no longer matches (refused). A head with nothing live needs none: recovery deletes it.
// The caller waits for the write (write_checkpoint).
void MessageLog::seal_head() {
    Segment* s = head_;
    if (!s) return;
    head_ = nullptr;
    s->sealed = true;
    if (!s->doomed && s->live != 0 && s->indexable && s->file && s->index_records != 0) write_index(*s);
    s->index = Buffer();
}

void MessageLog::delete_doomed() {
    for (Segment* s : doomed_) {
        // An index write still out: the extender skips it, or unlinks what it wrote, unless it
        // was done before this cancel (its completion not processed yet): then it is ours.
        bool has_index = s->has_index_file;
        bool extender_done = true;
        if (s->index_write) {
            extender_done = s->index_write->cancel();
            has_index = extender_done && s->index_write->written;
        }
        s->index_write.reset();
        // The segment first: a crash between the two leaves an orphan sidecar, which recovery
        // deletes, never a segment without the acks that settled it. A segment file kept for
        // reuse is renamed instead (the same to recovery: a *.spare is deleted at the next start).
        const bool kept = keep_for_reuse(*s, extender_done);
        for (auto [file, ext] : {std::pair{s->file.get(), "seg"}, std::pair{s->sidecar.get(), "evt"}}) {
            if (!file || (kept && file == s->file.get())) continue;
            if (Status st = fs_.unlink(path_of(s->number, ext)); !st) warn("store: " + st.error().message);
        }
        if (has_index)
            if (Status st = fs_.unlink(path_of(s->number, "idx")); !st) warn("store: " + st.error().message);
        if (s->file || s->sidecar) dirty_.push_back({dir_handle_, SyncClass::Directory});
        if (read_segment_ == s->number) read_buffer_.clear();
        sync_.retire(std::move(s->file));
        sync_.retire(std::move(s->sidecar));
        std::uint32_t number = s->number;
        segments_[number - first_number_].reset();
        ++stats_.segments_deleted;
    }
    doomed_.clear();
    while (!segments_.empty() && !segments_.front()) {
        segments_.pop_front();
        ++first_number_;
    }
}

// Renames a settled segment's file to *.spare for a later segment to write into, when fewer than
// reuse_segments are kept and nothing else may still touch the file: its records must name it
// (made by this process), and the extender must be done with it (an index write cuts the file, a
// zero-fill appends to it). A small file is not worth keeping.
bool MessageLog::keep_for_reuse(Segment& s, bool extender_done) {
    if (spares_.size() >= options_.reuse_segments || !s.file || !s.reusable || !s.sealed || !extender_done) return false;
    if (s.written < options_.segment_size / 2) return false;
    if (s.zeros && s.zeros->busy.load(std::memory_order_acquire)) return false;
    std::string spare = path_of(s.number, "spare");
    if (Status st = fs_.rename(path_of(s.number, "seg"), spare); !st) {
        warn("store: " + st.error().message + " (the segment is deleted instead)");
        return false;
    }
    spares_.push_back(std::move(spare));
    return true;
}

// Asks the extender for more zeros once fewer than half a step are left ahead of the head's
// writes, up to the segment size (a segment rolls before its records pass it, so a sealed one
// keeps less than a record of zeros). Costs two atomic loads per flush otherwise.
void MessageLog::preallocate_head() {
    Segment* s = head_;
    if (options_.preallocate == 0 || !s || s->sealed || !s->file || s->no_preallocation) return;
    if (!s->zeros) s->zeros = std::make_shared<Preallocation>();
    Preallocation& z = *s->zeros;
    if (z.busy.load(std::memory_order_acquire)) return;
    if (z.failed.load(std::memory_order_relaxed)) {
        // This segment is written by appending from now on, as without preallocation. Said
        // once until a zero-fill works again (a disk near full refuses each segment's).
        if (!preallocation_warned_)
            warn(fmt::format("store: cannot zero-fill {} ahead of its writes ({}); appending instead", s->file->path(),
                             sync_.preallocation_error()));
        preallocation_warned_ = true;
        s->no_preallocation = true;
        return;
    }
    const std::uint64_t end = z.end.load(std::memory_order_relaxed);
    if (end > 0) preallocation_warned_ = false;
    if (end >= options_.segment_size || s->written + options_.preallocate / 2 < end) return;
    const std::uint64_t to = std::min(options_.segment_size, std::max(end, s->written) + options_.preallocate);
    if (to <= s->written) return;  // a record larger than the segment size
    z.busy.store(true, std::memory_order_relaxed);
    sync_.preallocate(s->file, to, options_.preallocate_keep_free, s->zeros);
}

// Cuts every segment back to its logical size (the zeros after its last record), for the
// checkpoint, which describes files by their sizes.
Status MessageLog::trim_preallocation() {
    sync_.wait_for_extender();
    for (const auto& s : segments_) {
        if (!s || s->doomed || !s->file) continue;
        auto size = s->file->size();
        if (!size) return size.error();
        if (*size == s->written) continue;
        // Not synced here: the checkpoint's own syncs commit the journal, and if a power cut
        // loses the cut anyway, the size no longer matches and the next start reads the segments.
        if (std::error_code e = s->file->truncate(s->written))
            return make_error(e, fmt::format("truncate {}: {}", s->file->path(), e.message()));
        if (s->zeros) s->zeros->end.store(s->written, std::memory_order_relaxed);
    }
    return {};
}

LogStats MessageLog::stats() const {
    LogStats out = stats_;
    out.index_writes_pending = index_writes_.size();
    for (const auto& s : segments_) {
        if (!s) continue;
        ++out.segments;
        out.bytes_on_disk += s->written + s->sidecar_written;
        if (s->zeros && !s->sealed) {
            const std::uint64_t end = s->zeros->end.load(std::memory_order_relaxed);
            if (end > s->written) out.preallocated_bytes += end - s->written;
        }
        out.unflushed_bytes += s->pending.size() + s->events.size();
        out.live_pairs += s->live;
    }
    return out;
}

}  // namespace warren::store
