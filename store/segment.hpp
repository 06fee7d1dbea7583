// One segment of a MessageLog as the log tracks it: its two files, what is written and what
// is still buffered, how far it is zero-filled ahead, and how many (message, queue) pairs in it
// are unsettled. Internal to MessageLog.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/buffer.hpp"
#include "store/file_system.hpp"
#include "store/index_write.hpp"
#include "store/sync_service.hpp"

namespace warren::store {

struct Segment {
    std::uint32_t number = 0;
    std::shared_ptr<File> file;     // .seg; created by the first flush that writes it
    std::shared_ptr<File> sidecar;  // .evt; created by the first flush with events for it
    std::uint64_t written = 0;      // .seg bytes the file holds (good records only)
    std::uint64_t sidecar_written = 0;
    Buffer pending;                     // records (and, first, the file header) to write at `written`
    Buffer events;                      // events to write as one record at `sidecar_written`
    // The index entries of its records (segment_index.hpp), written as its .idx once it is
    // sealed and whole; `indexable` is false once that cannot describe it (a failed flush cut
    // records off, or the entries outgrew a record).
    Buffer index;
    std::uint32_t index_records = 0;
    std::uint64_t last_seq = 0;  // of its newest record
    std::uint32_t last_crc = 0;  // of its newest record
    bool indexable = true;
    bool has_index_file = false;        // a .idx exists (delete it with the segment)
    // Its index, handed to the extender and not reported done yet (index_write.hpp); the
    // segment's deletion cancels it.
    std::shared_ptr<IndexWrite> index_write;
    std::uint64_t live = 0;             // unsettled pairs, buffered ones included
    std::uint64_t pending_pairs = 0;    // pairs of the records in `pending`
    std::uint64_t pending_settled = 0;  // of those, settled already
    bool sealed = false;                // takes no more appends
    bool queued_write = false;          // in MessageLog::unflushed_segments_
    bool queued_events = false;         // in MessageLog::unflushed_sidecars_
    bool doomed = false;                // settled and not the head: deleted by the next flush
    // The zeros the extender keeps ahead of `written` in the head segment (LogOptions::preallocate);
    // null until its first flush. Beyond `written` the file holds zeros, which recovery knows.
    std::shared_ptr<Preallocation> zeros;
    bool no_preallocation = false;  // a zero-fill failed: appends only from then on
    // Created by this process: its records name it, so its file may be reused once it is settled.
    bool reusable = false;
    // Written into the file of a settled segment (LogOptions::reuse_segments): `reuse_file` names
    // that file until the first write renames it; beyond `written` the file holds its earlier
    // content, cut when the segment is sealed and indexed.
    bool reused = false;
    std::string reuse_file;

    std::uint64_t size() const { return written + pending.size(); }
};

}  // namespace warren::store
