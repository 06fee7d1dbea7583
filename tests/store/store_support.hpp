// Helpers for the store's tests: a stand-in for the event loop (what the sync thread posts runs
// when the test says), a SyncService wired to it, messages and recovery in one call.
#pragma once

#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/fault_file_system.hpp"
#include "store/message_log.hpp"
#include "store/sync_service.hpp"
#include "text.hpp"

namespace warren::store::test {

// A FileSystem that passes every call to another: a test overrides only the calls it watches.
class ForwardingFileSystem : public FileSystem {
public:
    explicit ForwardingFileSystem(FileSystem& fs) : fs_(fs) {}
    Result<std::shared_ptr<File>> open(const std::string& path, OpenMode mode) override { return fs_.open(path, mode); }
    Result<std::shared_ptr<File>> open_directory(const std::string& path) override { return fs_.open_directory(path); }
    Status rename(const std::string& from, const std::string& to) override { return fs_.rename(from, to); }
    Status unlink(const std::string& path) override { return fs_.unlink(path); }
    Result<std::vector<std::string>> list(const std::string& dir) override { return fs_.list(dir); }
    Status make_directories(const std::string& path) override { return fs_.make_directories(path); }
    Result<std::unique_ptr<FileLock>> lock(const std::string& path) override { return fs_.lock(path); }

protected:
    FileSystem& fs_;
};

class Loop {
public:
    SyncService::Post post() {
        return [this](std::function<void()> f) {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(f));
            cv_.notify_all();
        };
    }
    // Runs posted functions (waiting for them) until `done` holds.
    void run_until(const std::function<bool()>& done) {
        while (!done()) {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return !queue_.empty(); });
            auto f = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            f();
        }
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
};

struct Syncer {
    Loop loop;
    std::vector<SyncResult> results;
    SyncService service{loop.post(), [this](const SyncResult& r) { results.push_back(r); }};

    // Requests a sync and runs the loop until its ticket is settled.
    SyncResult sync() {
        std::uint64_t ticket = service.request_sync();
        loop.run_until([&] { return !results.empty() && results.back().ticket >= ticket; });
        return results.back();
    }
    // Waits for the extender (zero-fills, index writes) and runs the loop until `log` has
    // processed every index write's completion.
    void settle_indexes(MessageLog& log) {
        service.wait_for_extender();
        loop.run_until([&] { return log.stats().index_writes_pending == 0; });
    }
};

struct TestMessage {
    std::string body;
    std::vector<QueueEntryRef> queues;
    std::string exchange = "amq.direct";
    std::string routing_key = "key";
    std::string properties = std::string("\x80\x00\x02", 3);
    std::uint64_t publish_ms = 1700000000123;
    std::uint32_t ttl_ms = no_ttl;
    std::uint8_t priority = 0;
    std::uint8_t flags = message_flags::persistent;

    MessageRecord record() const {
        MessageRecord m;
        m.publish_ms = publish_ms;
        m.ttl_ms = ttl_ms;
        m.priority = priority;
        m.flags = flags;
        m.exchange = exchange;
        m.routing_key = routing_key;
        m.properties = as_bytes(properties);
        m.body = as_bytes(body);
        m.queues = queues;
        return m;
    }
};

inline TestMessage message(std::string body, std::vector<QueueEntryRef> queues) {
    TestMessage m;
    m.body = std::move(body);
    m.queues = std::move(queues);
    return m;
}

inline std::unique_ptr<MessageLog> open_log(FileSystem& fs, SyncService& sync, LogOptions options = {},
                                            const std::string& dir = "/data/vhost") {
    auto log = MessageLog::open(fs, dir, std::move(options), sync);
    if (!log) FAIL(log.error().message);
    return std::move(*log);
}

struct Recovered {
    std::vector<RecoveredEntry> entries;
    RecoveryStats stats;
};

inline Recovered recover(MessageLog& log, const std::function<bool(const RecoveredEntry&)>& keep = {}) {
    Recovered out;
    auto stats = log.recover([&](const RecoveredEntry& e) {
        out.entries.push_back(e);
        return keep ? keep(e) : true;
    });
    if (!stats) FAIL(stats.error().message);
    out.stats = std::move(*stats);
    return out;
}

// Opens a log that starts empty (recovered from nothing).
inline std::unique_ptr<MessageLog> fresh_log(FileSystem& fs, SyncService& sync, LogOptions options = {},
                                             const std::string& dir = "/data/vhost") {
    auto log = open_log(fs, sync, std::move(options), dir);
    recover(*log);
    return log;
}

// What a kill -9 leaves of `fs`: every write, synced or not, is in the page cache.
inline std::unique_ptr<FaultFileSystem> killed(const FaultFileSystem& fs, const std::string& dir = "/data/vhost") {
    auto image = std::make_unique<FaultFileSystem>();
    REQUIRE(image->make_directories(dir));
    for (const auto& path : fs.paths()) image->set_contents(path, fs.contents(path));
    return image;
}

inline std::string body_at(MessageLog& log, Location location) {
    auto view = log.read(location);
    if (!view) return "<" + view.error().message + ">";
    return as_string(view->body);
}

}  // namespace warren::store::test
