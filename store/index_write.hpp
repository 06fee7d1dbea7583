// A sealed segment's index write, handed by the loop (MessageLog) to the sync service's extender
// thread, so that the loop never waits for it: the zeros (or a reused file's earlier content) cut off the segment, the .idx written
// (not synced) and, if that failed, unlinked. The loop learns the outcome from a posted completion.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "store/buffer.hpp"
#include "store/file_system.hpp"
#include "store/sync_service.hpp"

namespace warren::store {

struct IndexWrite {
    // Set by the loop before the hand-over and only read after it.
    FileSystem* fs = nullptr;
    std::shared_ptr<File> segment;         // its zeros are cut first; released once done
    std::shared_ptr<Preallocation> zeros;  // null: never zero-filled, nothing to cut
    bool reused = false;                   // written into a reused file: its earlier content is cut too
    std::string path;                      // of the .idx
    std::uint32_t number = 0;
    std::uint32_t epoch = 0;
    std::uint64_t segment_size = 0;  // its written bytes: what the index describes
    std::uint64_t last_seq = 0;
    std::uint32_t last_crc = 0;
    std::uint32_t record_count = 0;
    Buffer payload;  // begun by begin_index(); freed once written

    // Set by run() before it marks the write done; read by the loop only after it saw that.
    bool written = false;
    std::string error;  // one line for the log when the cut or the write failed

    // Extender thread: does it all, unless cancelled first; a write cancelled while it ran is
    // unlinked here.
    void run();
    // Loop thread: the segment is being deleted. True when the write was done before this call
    // (then the caller unlinks the .idx if `written`); false when run() has not finished yet and
    // so sees the cancel: it skips the write or unlinks what it wrote.
    bool cancel();
    // Blocks until run() is done (a clean stop, or the log's end: a close, a vhost deleted).
    void wait();

private:
    // Whichever of run()'s end and cancel() comes second sees the other's flag, so exactly one
    // side deals with the file; run() unlinks before it says done, so that nothing it does
    // follows a wait() (after which the log and its file system may go).
    std::mutex mutex_;
    std::condition_variable done_cv_;
    bool done_ = false;
    bool cancelled_ = false;
};

}  // namespace warren::store
