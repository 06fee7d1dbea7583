// Group commit: one thread per broker fdatasyncs what the logs wrote, off the event loop, and
// posts the highest ticket each round settled back to the loop. A round covers every file written
// before it began; requests made during a round join the next one; the thread also closes the
// files the logs delete. A second thread, the extender, zero-fills files ahead of their writer (the
// message logs' head segments, when segment_preallocate is on), so that a round's fdatasync flushes
// data only, and writes the indexes of sealed segments. Neither touches broker state, only File
// handles and buffers handed over by the logs.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "store/commit_delay.hpp"
#include "store/file_system.hpp"

namespace warren::store {

// The order in which a round syncs files: definitions before the messages that depend on them,
// messages before the events about them, directories (new and deleted files) last.
enum class SyncClass : std::uint8_t { Meta = 0, Segment = 1, Sidecar = 2, Directory = 3 };

struct DirtyFile {
    std::shared_ptr<File> file;
    SyncClass order;
};

// A file the extender keeps zero-filled ahead of its writer. The writer sets `busy` and asks
// (preallocate); the extender appends the zeros, syncs them, then publishes `end` and clears `busy`.
// `end` only steers when the writer asks again: a write never depends on it for durability, as
// a round's fdatasync syncs whatever a write past the zeros changed (size, blocks) as well.
struct Preallocation {
    std::atomic<std::uint64_t> end{0};  // the file is allocated and durable up to here
    std::atomic<bool> busy{false};      // asked for and not done yet
    std::atomic<bool> failed{false};    // the last try failed (see SyncService::preallocation_error)
};

struct SyncResult {
    std::uint64_t ticket = 0;  // every ticket up to this one is settled by this result
    std::error_code error;     // non-zero: what these tickets cover is not known to be durable
    std::string message;       // names the file whose sync failed
};

// How long fdatasync calls took, in Prometheus-style buckets (seconds, upper bounds; counts per
// bucket, not cumulative). Filled on the sync thread, off the event loop.
struct SyncLatency {
    static constexpr std::array<double, 12> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
    std::array<std::uint64_t, bounds.size() + 1> counts{};
    double sum = 0;  // seconds
    void observe(double seconds) {
        std::size_t i = 0;
        while (i < bounds.size() && seconds > bounds[i]) ++i;
        ++counts[i];
        sum += seconds;
    }
    void add(const SyncLatency& o) {
        for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
        sum += o.sum;
    }
};

struct SyncStats {
    std::uint64_t rounds = 0;
    std::uint64_t files_synced = 0;
    std::uint64_t requests = 0;
    std::uint64_t delayed_rounds = 0;      // rounds that waited to gather a burst
    std::uint64_t gathered_requests = 0;   // requests that arrived during those waits
    std::uint64_t partial_rounds = 0;      // rounds that left the sidecars for later
    std::uint64_t preallocations = 0;      // zero-fills done and synced
    std::uint64_t preallocated_bytes = 0;  // zeros they appended
    std::uint64_t preallocation_failures = 0;
    SyncLatency fdatasync;  // each file's fdatasync (or fsync) call
};

class SyncService {
public:
    using Post = std::function<void(std::function<void()>)>;
    using Completion = std::function<void(const SyncResult&)>;

    // `post` runs a function on the loop thread (asio::post); `on_synced` is what it runs.
    // Without `post`, on_synced runs on the sync thread.
    // `max_delay` caps the wait before a round that gathers a burst (CommitDelay); zero turns it off.
    SyncService(Post post, Completion on_synced, std::chrono::microseconds max_delay = std::chrono::microseconds{2000});
    // Finishes the rounds already requested, then stops the thread.
    ~SyncService();
    // The same, now: after it, nothing is posted any more (the loop the post function reaches
    // may be about to go) and requests are not served.
    void stop();
    SyncService(const SyncService&) = delete;
    SyncService& operator=(const SyncService&) = delete;

    // Loop thread. Cheap: a lock and a wake-up; a round with nothing dirty costs no I/O.
    // `events` false: the ticket needs the definitions, segments and directories only, and a
    // round serving only such tickets leaves the sidecars (deliveries, acks) to a later round:
    // a publisher's confirm then waits for one fdatasync, not one per file the acks touched.
    std::uint64_t request_sync(bool events = true);
    // Called by the logs after they write: these files need a sync before the next ticket.
    void mark_dirty(std::span<const DirtyFile> files);
    void mark_dirty(std::shared_ptr<File> file, SyncClass order);
    // Loop thread: a deleted file's last reference. Closing an unlinked file frees its blocks,
    // which waits for the file system's journal (15-45 ms for a 64 MiB segment while this
    // thread's fdatasyncs commit it), so this thread closes it, after its current round.
    void retire(std::shared_ptr<File> file);

    // Loop thread: the extender appends zeros to `file` until it holds `size` bytes (leaving
    // `keep_free` bytes free on its file system, or none at all) and syncs them
    // (File::append_zeros, sync_zeros), then updates `state` (the caller set state->busy). A
    // failed append only leaves the file as it is (its writer goes on appending); a failed sync
    // fails the storage as a round's would: this and every later ticket fail.
    void preallocate(std::shared_ptr<File> file, std::uint64_t size, std::uint64_t keep_free,
                     std::shared_ptr<Preallocation> state);
    // Loop thread: the extender runs `work` after what was asked of it before (a sealed segment's
    // index, written once the segment's last zero-fill is done, so that its zeros can be cut),
    // then posts `then` to the loop. `work` touches no broker state and must not throw. Not on
    // the sync thread: megabytes written there would hold up a round and its confirms. A stop
    // drops the zero-fills but not these: the extender runs every one queued before it ends
    // (without posting `then` any more), and one asked for after that runs here, at once.
    // Without `post`, `then` never runs (it is loop work); the owner waits for `work` instead.
    void run_on_extender(std::function<void()> work, std::function<void()> then);
    // Blocks until the extender has nothing queued or running (shutdown and tests; never the loop).
    void wait_for_extender();
    // The last preallocation failure, one line naming the file.
    std::string preallocation_error() const;

    // Blocks until `ticket` is settled and returns its error (shutdown and tests; never the loop).
    std::error_code wait(std::uint64_t ticket);
    // Once a sync has failed, every later ticket fails too: after a failed fdatasync the
    // kernel may have dropped the dirty pages, so nothing written since the last good round
    // can be called durable again without a restart (and recovery).
    std::error_code failure() const;
    SyncStats stats() const;

private:
    void run();
    void run_extender();
    void latch_failure(std::error_code error, const std::string& message);  // mutex_ held

    Post post_;
    Completion on_synced_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable settled_;
    std::vector<DirtyFile> dirty_;
    std::vector<std::shared_ptr<File>> retired_;  // closed by the sync thread
    std::uint64_t requested_ = 0;
    std::uint64_t requested_events_ = 0;  // the last ticket that needs the sidecars synced
    std::uint64_t completed_ = 0;
    std::uint64_t good_through_ = UINT64_MAX;  // after a failure: the last ticket that succeeded
    std::error_code failure_;
    std::string failure_message_;
    bool stop_ = false;
    bool in_round_ = false;  // between taking the dirty set and settling it
    CommitDelay delay_;
    SyncStats stats_;
    struct Extension {
        std::shared_ptr<File> file;
        std::uint64_t size = 0;
        std::uint64_t keep_free = 0;
        std::shared_ptr<Preallocation> state;
        std::function<void()> work;  // set: not a zero-fill but run_on_extender()'s
        std::function<void()> then;
    };
    std::deque<Extension> extensions_;
    bool extending_ = false;
    std::condition_variable extend_wake_;
    std::condition_variable extend_idle_;
    std::string preallocation_error_;
    std::thread thread_;  // last: start after everything above is ready
    std::thread extender_;
};

}  // namespace warren::store
