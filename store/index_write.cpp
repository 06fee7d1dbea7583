// See index_write.hpp. Runs on the extender thread: touches only the files and the fields of
// its IndexWrite (and the segment's Preallocation, whose members are atomics).
#include "store/index_write.hpp"

#include <fmt/format.h>

#include "store/segment_index.hpp"

namespace warren::store {

namespace {

// A segment that was zero-filled ahead ends in zeros after its last record (one written into a
// reused file, in that file's earlier content); its index describes it as ending at that record,
// and recovery trusts an index only for a segment of exactly the size it describes, so the rest
// goes first. Not synced: if a crash loses the cut but keeps the
// index, the sizes differ, the index is refused and the segment read whole (zeros are unused
// space to recovery). False (no index then) when the cut fails. The extender runs this after
// every zero-fill asked for the segment before it was sealed, so none lands after the cut.
bool cut_zeros(IndexWrite& w) {
    if (!w.zeros && !w.reused) return true;  // never zero-filled: it ends at its last record
    auto size = w.segment->size();
    if (size && *size == w.segment_size) return true;
    std::error_code e = size ? w.segment->truncate(w.segment_size) : std::error_code{};
    if (size && !e) {
        if (w.zeros) w.zeros->end.store(w.segment_size, std::memory_order_relaxed);
        return true;
    }
    w.error = fmt::format("store: cannot cut {} to its last record ({} bytes): {} (it gets no index)",
                          w.segment->path(), w.segment_size, size ? e.message() : size.error().message);
    return false;
}

}  // namespace

void IndexWrite::run() {
    bool skip;
    {
        std::lock_guard lock(mutex_);
        skip = cancelled_;
    }
    if (!skip && cut_zeros(*this)) {
        std::shared_ptr<File> file;
        if (Status st = write_index_file(*fs, path, file, number, epoch, segment_size, last_seq, last_crc, record_count,
                                         payload);
            st) {
            written = true;
        } else {
            error = fmt::format("store: cannot write {}: {} (after a crash its segment is read whole)", path,
                                st.error().message);
            if (file) (void)fs->unlink(path);  // a torn index only costs a refusal, but why keep it
        }
    }
    payload = Buffer();  // megabytes: freed here, not when the loop gets round to it
    segment.reset();     // a deleted segment's last reference may be this one: closed here too
    {
        std::lock_guard lock(mutex_);
        // Deleted while this ran: the loop left the file to us.
        if (cancelled_ && written) (void)fs->unlink(path);
        done_ = true;
    }
    done_cv_.notify_all();
}

bool IndexWrite::cancel() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    return done_;
}

void IndexWrite::wait() {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] { return done_; });
}

}  // namespace warren::store
