// The sync thread: waits for a request, takes the dirty set, syncs it in order, posts the result.
// The extender thread: zero-fills files ahead of their writers and runs the logs' other work
// (index writes), one request at a time, in order.
#include "store/sync_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <iterator>

namespace warren::store {

SyncService::SyncService(Post post, Completion on_synced, std::chrono::microseconds max_delay)
    : post_(std::move(post)),
      on_synced_(std::move(on_synced)),
      delay_(max_delay),
      thread_([this] { run(); }),
      extender_([this] { run_extender(); }) {}

SyncService::~SyncService() { stop(); }

void SyncService::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    extend_wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (extender_.joinable()) extender_.join();
}

std::uint64_t SyncService::request_sync(bool events) {
    std::uint64_t ticket;
    {
        std::lock_guard lock(mutex_);
        ticket = ++requested_;
        if (events) requested_events_ = ticket;
        ++stats_.requests;
        if (in_round_) delay_.request_during_round(CommitDelay::Clock::now());
    }
    wake_.notify_one();
    return ticket;
}

void SyncService::mark_dirty(std::span<const DirtyFile> files) {
    if (files.empty()) return;
    std::lock_guard lock(mutex_);
    dirty_.insert(dirty_.end(), files.begin(), files.end());
}

void SyncService::mark_dirty(std::shared_ptr<File> file, SyncClass order) {
    std::lock_guard lock(mutex_);
    dirty_.push_back({std::move(file), order});
}

void SyncService::preallocate(std::shared_ptr<File> file, std::uint64_t size, std::uint64_t keep_free,
                              std::shared_ptr<Preallocation> state) {
    {
        std::lock_guard lock(mutex_);
        if (stop_) {  // never served now
            state->busy.store(false, std::memory_order_release);
            return;
        }
        extensions_.push_back({std::move(file), size, keep_free, std::move(state), {}, {}});
    }
    extend_wake_.notify_one();
}

void SyncService::run_on_extender(std::function<void()> work, std::function<void()> then) {
    {
        std::lock_guard lock(mutex_);
        if (!stop_) {
            extensions_.push_back({nullptr, 0, 0, nullptr, std::move(work), std::move(then)});
            work = nullptr;
        }
    }
    if (work)
        work();  // stopping: the extender may have ended already
    else
        extend_wake_.notify_one();
}

void SyncService::wait_for_extender() {
    std::unique_lock lock(mutex_);
    // A stop drops the queued zero-fills and runs the rest: the queue empties either way.
    extend_idle_.wait(lock, [&] { return !extending_ && extensions_.empty(); });
}

std::string SyncService::preallocation_error() const {
    std::lock_guard lock(mutex_);
    return preallocation_error_;
}

void SyncService::latch_failure(std::error_code error, const std::string& message) {
    failure_ = error;
    failure_message_ = message;
    good_through_ = completed_;
}

std::error_code SyncService::wait(std::uint64_t ticket) {
    std::unique_lock lock(mutex_);
    settled_.wait(lock, [&] { return completed_ >= ticket; });
    return ticket <= good_through_ ? std::error_code{} : failure_;
}

std::error_code SyncService::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

SyncStats SyncService::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void SyncService::retire(std::shared_ptr<File> file) {
    if (!file) return;
    {
        std::lock_guard lock(mutex_);
        retired_.push_back(std::move(file));
    }
    wake_.notify_one();
}

void SyncService::run() {
    std::vector<DirtyFile> batch;
    std::vector<std::shared_ptr<File>> closing;
    // Drops the retired files' references here, outside the lock: the last one closes the file.
    auto close_retired = [&] {
        {
            std::lock_guard lock(mutex_);
            closing.swap(retired_);
        }
        closing.clear();
    };
    for (;;) {
        std::uint64_t target;
        std::error_code error;
        std::string message;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || requested_ > completed_ || !retired_.empty(); });
            if (requested_ == completed_) {
                if (retired_.empty()) return;  // stopping, nothing left to do
                lock.unlock();
                close_retired();
                continue;
            }
            if (auto wait = delay_.next(); wait.count() > 0 && !stop_) {
                const std::uint64_t before = requested_;
                wake_.wait_for(lock, wait, [&] { return stop_; });
                delay_.waited(requested_ > before);
                ++stats_.delayed_rounds;
                stats_.gathered_requests += requested_ - before;
            }
            // Everything written before this point is in `dirty_` (the logs mark files after
            // writing and before requesting), so this round settles every ticket up to `target`.
            target = requested_;
            batch.swap(dirty_);
            if (requested_events_ <= completed_) {
                // No ticket in this round needs the sidecars: they wait for a round that does
                // (the periodic one at the latest), so this round is one fdatasync per segment.
                auto sidecar = [](const DirtyFile& d) { return d.order == SyncClass::Sidecar; };
                std::copy_if(batch.begin(), batch.end(), std::back_inserter(dirty_), sidecar);
                const auto before = batch.size();
                batch.erase(std::remove_if(batch.begin(), batch.end(), sidecar), batch.end());
                if (batch.size() != before) ++stats_.partial_rounds;
            }
            in_round_ = true;
            delay_.round_started(CommitDelay::Clock::now());
            error = failure_;
            message = failure_message_;
        }
        // Order by class, then drop repeats (a file is marked once per flush that wrote it).
        std::sort(batch.begin(), batch.end(), [](const DirtyFile& a, const DirtyFile& b) {
            return a.order != b.order ? a.order < b.order : std::less<File*>()(a.file.get(), b.file.get());
        });
        batch.erase(std::unique(batch.begin(), batch.end(),
                                [](const DirtyFile& a, const DirtyFile& b) { return a.file == b.file; }),
                    batch.end());
        std::size_t synced = 0;
        SyncLatency took;
        for (const DirtyFile& d : batch) {
            if (error) break;
            const auto started = std::chrono::steady_clock::now();
            std::error_code e = d.file->sync();
            took.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            if (e) {
                error = e;
                message = fmt::format("fdatasync {}: {}", d.file->path(), e.message());
            }
            ++synced;
        }
        batch.clear();  // drops our references: a deleted segment's file closes here
        {
            std::lock_guard lock(mutex_);
            if (error && !failure_) {
                latch_failure(error, message);
            } else if (!error && failure_) {
                // The extender's sync failed during this round: its tickets fail too.
                error = failure_;
                message = failure_message_;
            }
            completed_ = target;
            in_round_ = false;
            delay_.round_finished(CommitDelay::Clock::now());
            ++stats_.rounds;
            stats_.files_synced += synced;
            stats_.fdatasync.add(took);
        }
        settled_.notify_all();
        SyncResult result{target, error, message};
        if (post_) {
            post_([cb = on_synced_, result] {
                if (cb) cb(result);
            });
        } else if (on_synced_) {
            on_synced_(result);
        }
        close_retired();  // after the round's result: a close never delays a confirm
    }
}

void SyncService::run_extender() {
    for (;;) {
        Extension x;
        {
            std::unique_lock lock(mutex_);
            extend_wake_.wait(lock, [&] { return stop_ || !extensions_.empty(); });
            if (stop_ || failure_) {
                // Stopping, or nothing is stored any more: zeros ahead are of no use. The other
                // work stays: an index is what spares the next start reading its segment.
                auto zero_fill = [](const Extension& e) { return !e.work; };
                for (Extension& e : extensions_)
                    if (zero_fill(e)) e.state->busy.store(false, std::memory_order_release);
                std::erase_if(extensions_, zero_fill);
            }
            if (extensions_.empty()) {
                extend_idle_.notify_all();
                if (stop_) return;
                continue;
            }
            x = std::move(extensions_.front());
            extensions_.pop_front();
            extending_ = true;
        }
        if (x.work) {
            x.work();
            x.work = nullptr;  // drops what it held (a segment's file, its index buffer) here
            bool stopping;
            {
                std::lock_guard lock(mutex_);
                extending_ = false;
                stopping = stop_;
            }
            extend_idle_.notify_all();
            // stop() joins this thread before it returns, so a post made here precedes it.
            if (!stopping && post_ && x.then) post_(std::move(x.then));
            continue;
        }
        const std::uint64_t before = x.state->end.load(std::memory_order_relaxed);
        auto end = x.file->append_zeros(x.size, x.keep_free);
        std::error_code sync_error = end ? x.file->sync_zeros() : std::error_code{};
        {
            std::lock_guard lock(mutex_);
            if (!end || sync_error) {
                ++stats_.preallocation_failures;
                preallocation_error_ =
                    !end ? end.error().message
                         : fmt::format("fdatasync (zeros) {}: {}", x.file->path(), sync_error.message());
                // A failed fdatasync may have dropped dirty pages of this file, the writer's too.
                if (sync_error && !failure_) latch_failure(sync_error, preallocation_error_);
                x.state->failed.store(true, std::memory_order_relaxed);
            } else {
                ++stats_.preallocations;
                if (*end > before) stats_.preallocated_bytes += *end - before;
                x.state->end.store(*end, std::memory_order_relaxed);
                x.state->failed.store(false, std::memory_order_relaxed);
            }
            x.state->busy.store(false, std::memory_order_release);
            extending_ = false;
        }
        extend_idle_.notify_all();
    }
}

}  // namespace warren::store
