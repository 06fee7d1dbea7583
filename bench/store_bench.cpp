// warren-store-bench: timing loops over the store/ module on the real disk (PosixFileSystem):
// appends with a flush per simulated loop turn (16 B and 1 KiB bodies), the flush alone,
// sequential reads, recovery of a million records, fdatasync latency (append and overwrite), and
// group commit (plain appends and a segment zero-filled ahead), and the loop's time in the flushes
// that seal a segment (its index written, its zeros cut) against the other flushes.
// Usage: warren-store-bench [dir (default $TMPDIR/warren-store-bench-PID)] [records (1000000)] [rolls]
// ("rolls": that case alone).
#include <fcntl.h>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "store/message_log.hpp"
#include "store/posix_file_system.hpp"
#include "store/sync_service.hpp"

// Counts heap allocations, to check that steady-state appends make none.
static std::size_t allocations = 0;
void* operator new(std::size_t n) {
    ++allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using namespace warren::store;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The loop as far as the store sees it: completions posted by the sync thread.
class Loop {
public:
    SyncService::Post post() {
        return [this](std::function<void()> f) {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(f));
            cv_.notify_all();
        };
    }
    void run_pending(bool wait) {
        std::unique_lock lock(mutex_);
        if (wait) cv_.wait(lock, [&] { return !queue_.empty(); });
        auto batch = std::move(queue_);
        queue_.clear();
        lock.unlock();
        for (auto& f : batch) f();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
};

std::unique_ptr<MessageLog> open_log(PosixFileSystem& fs, const std::string& dir, SyncService& sync,
                                     RecoveryStats* stats = nullptr, std::uint64_t* visited = nullptr,
                                     LogOptions options = {}) {
    auto log = MessageLog::open(fs, dir, std::move(options), sync);
    if (!log) {
        fmt::print(stderr, "{}\n", log.error().message);
        std::exit(1);
    }
    auto r = (*log)->recover([&](const RecoveredEntry&) {
        if (visited) ++*visited;
        return true;
    });
    if (!r) std::exit(1);
    if (stats) *stats = *r;
    return std::move(*log);
}

void check(const Status& s) {
    if (!s) {
        fmt::print(stderr, "{}\n", s.error().message);
        std::exit(1);
    }
}

struct AppendResult {
    std::vector<Location> locations;
    double append_seconds = 0;
    double flush_seconds = 0;
};

// Appends `count` messages of `body` bytes to one queue, flushing every `turn` appends as the
// broker does at the end of a loop turn.
AppendResult append_messages(MessageLog& log, std::size_t count, std::size_t body_size, std::size_t turn) {
    std::string body(body_size, 'x');
    AppendResult r;
    r.locations.reserve(count);
    QueueEntryRef queue{1, 0};
    MessageRecord m;
    m.publish_ms = 1700000000000;
    m.exchange = "";
    m.routing_key = "bench-queue";
    m.body = {reinterpret_cast<const std::byte*>(body.data()), body.size()};
    m.queues = {&queue, 1};
    for (std::size_t i = 0; i < count; i += turn) {
        auto start = Clock::now();
        std::size_t n = std::min(turn, count - i);
        for (std::size_t k = 0; k < n; ++k) {
            queue.queue_seq = i + k;
            r.locations.push_back(log.append(m));
        }
        auto mid = Clock::now();
        check(log.flush());
        r.append_seconds += std::chrono::duration<double>(mid - start).count();
        r.flush_seconds += seconds_since(mid);
    }
    return r;
}

void print_appends(const char* name, std::size_t count, std::size_t turn, const AppendResult& r, double bytes) {
    double total = r.append_seconds + r.flush_seconds;
    fmt::print("{:<40} {:>7.2f} M msg/s  append {:>5.0f} ns  flush {:>6.1f} us/turn of {} ({:.0f} MB/s)\n", name,
               count / total / 1e6, r.append_seconds * 1e9 / count, r.flush_seconds * 1e6 / (count / turn), turn,
               bytes / r.flush_seconds / 1e6);
}

// Drops a directory's files from the page cache (after writing them back), so that the next
// recovery reads from the disk. Touches only these files.
void evict(const std::string& dir) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        int fd = ::open(entry.path().c_str(), O_RDONLY);
        if (fd < 0) continue;
        ::fdatasync(fd);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

// The loop's time in flush() at a segment roll (the flush after the append that sealed the
// segment: its last records, and whatever sealing costs the loop) against the other flushes:
// `rolls` segments of 1 KiB messages at the default segment size, in turns of 256 with the
// loop's posted work run after each, as the broker's loop would. CPU time of the calling thread
// as well as wall time: the machine's noise (page cache write-back stalls) is mostly in the latter.
// "Over 500 us": other flushes that cost that much CPU (a sealed segment's work deferred to a
// later flush shows there).
void measure_rolls(PosixFileSystem& fs, const std::string& dir, SyncService& sync, Loop& loop, bool preallocate,
                   int rolls) {
    LogOptions options;
    options.preallocate = preallocate ? std::uint64_t{4} << 20 : 0;
    auto log = open_log(fs, dir, sync, nullptr, nullptr, options);
    std::string body(1024, 'r');
    QueueEntryRef queue{1, 0};
    MessageRecord m;
    m.routing_key = "bench-queue";
    m.body = {reinterpret_cast<const std::byte*>(body.data()), body.size()};
    m.queues = {&queue, 1};
    auto cpu_now = [] {
        timespec t{};
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return double(t.tv_sec) * 1e6 + double(t.tv_nsec) / 1e3;  // us
    };
    std::vector<double> roll_wall, roll_cpu, other_wall, other_cpu;
    std::uint32_t segment = 0;
    while (roll_wall.size() < static_cast<std::size_t>(rolls)) {
        bool rolled = false;
        for (int k = 0; k < 256; ++k, ++queue.queue_seq) {
            const std::uint32_t s = location_segment(log->append(m));
            rolled = rolled || (segment != 0 && s != segment);
            segment = s;
        }
        auto start = Clock::now();
        const double cpu = cpu_now();
        check(log->flush());
        (rolled ? roll_cpu : other_cpu).push_back(cpu_now() - cpu);
        (rolled ? roll_wall : other_wall).push_back(seconds_since(start) * 1e6);
        loop.run_pending(false);
    }
    const auto over = std::count_if(other_cpu.begin(), other_cpu.end(), [](double us) { return us > 500; });
    fmt::print("{:<40} {} rolls: cpu p50 {:.0f} us max {:.0f} us, wall p50 {:.0f} us max {:.0f} us\n",
               preallocate ? "flush at a roll, 1 KiB, zeroed" : "flush at a roll, 1 KiB", roll_wall.size(),
               percentile(roll_cpu, 0.5), percentile(roll_cpu, 1.0), percentile(roll_wall, 0.5),
               percentile(roll_wall, 1.0));
    fmt::print("{:<40} {} flushes: cpu p50 {:.0f} us max {:.0f} us, {} over 500 us; wall p50 {:.0f} us p99 {:.0f} us\n",
               "  the other flushes", other_cpu.size(), percentile(other_cpu, 0.5), percentile(other_cpu, 1.0), over,
               percentile(other_wall, 0.5), percentile(other_wall, 0.99));
}

}  // namespace

int main(int argc, char** argv) {
    const char* tmp = std::getenv("TMPDIR");
    std::string base =
        argc > 1 ? argv[1] : fmt::format("{}/warren-store-bench-{}", tmp && *tmp ? tmp : "/tmp", ::getpid());
    std::size_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
    constexpr std::size_t turn = 256;
    PosixFileSystem fs;
    Loop loop;
    std::uint64_t synced_ticket = 0;
    SyncService sync(loop.post(), [&](const SyncResult& r) { synced_ticket = r.ticket; });
    fmt::print("store bench in {} ({} records per case, flush every {} appends)\n", base, count, turn);
    auto measure_all_rolls = [&] {
        for (bool preallocate : {false, true})
            measure_rolls(fs, fmt::format("{}/rolls-{}", base, preallocate ? "zeroed" : "plain"), sync, loop,
                          preallocate, 6);
    };
    if (argc > 3 && std::string(argv[3]) == "rolls") {
        measure_all_rolls();
        return 0;
    }

    // Appends, and recovery of what they wrote.
    for (std::size_t body : {std::size_t{16}, std::size_t{1024}}) {
        std::string dir = fmt::format("{}/append-{}", base, body);
        std::size_t n = body == 16 ? count : count / 4;
        double bytes;
        {
            auto log = open_log(fs, dir, sync);
            auto r = append_messages(*log, n, body, turn);
            bytes = static_cast<double>(log->stats().bytes_on_disk);
            print_appends(fmt::format("append+flush {} B bodies", body).c_str(), n, turn, r, bytes);
            // Steady state: the same again, counting allocations (segment rolls allocate a little).
            std::size_t before = allocations;
            auto again = append_messages(*log, n, body, turn);
            fmt::print("{:<40} {} allocations in {} appends ({} segment rolls)\n", "  allocations",
                       allocations - before - 1 /* the locations vector */, n,
                       location_segment(again.locations.back()) - location_segment(again.locations.front()));

            auto start = Clock::now();
            std::uint64_t sum = 0;
            for (Location l : r.locations) sum += log->read(l)->body.size();
            double t = seconds_since(start);
            fmt::print("{:<40} {:>7.2f} M msg/s  ({:.0f} MB/s)\n", fmt::format("sequential read {} B", body),
                       n / t / 1e6, static_cast<double>(sum + n * 60) / t / 1e6);

            start = Clock::now();
            std::size_t settled = 0;
            for (const auto* batch : {&r.locations, &again.locations}) {
                for (std::size_t i = 0; i < batch->size(); i += turn) {
                    std::size_t end = std::min(batch->size(), i + turn);
                    for (std::size_t k = i; k < end; ++k) {
                        log->deliver((*batch)[k], 1);
                        log->ack((*batch)[k], 1);
                    }
                    check(log->flush());
                    settled += end - i;
                }
            }
            t = seconds_since(start);
            fmt::print("{:<40} {:>7.2f} M msg/s  (segments left: {})\n", "deliver+ack events with flushes",
                       settled / t / 1e6, log->stats().segments);
        }
        {
            auto log = open_log(fs, dir, sync);  // everything acked: nothing to recover
            append_messages(*log, n, body, turn);
            bytes = static_cast<double>(log->stats().bytes_on_disk);
        }
        for (bool cold : {false, true}) {
            if (cold) evict(dir);
            auto start = Clock::now();
            RecoveryStats stats;
            std::uint64_t visited = 0;
            auto log = open_log(fs, dir, sync, &stats, &visited);
            double t = seconds_since(start);
            fmt::print("{:<40} {:>7.2f} M msg/s  ({} records, {:.0f} MB in {:.2f} s, page cache {})\n",
                       fmt::format("recovery {} B", body), visited / t / 1e6, stats.records, bytes / 1e6, t,
                       cold ? "cold" : "warm");
        }
    }

    // fdatasync latency of this disk: 4 KiB appended, then synced; and 4 KiB written over zeros
    // that were written and synced before (what a preallocated segment's writes cost).
    for (bool overwrite : {false, true}) {
        auto file = *fs.open(base + "/fsync-probe", OpenMode::CreateTruncate);
        if (overwrite) {
            if (!file->append_zeros(200 * 4096, 0) || file->sync_zeros()) std::exit(1);
        }
        std::string page(4096, 'p');
        std::vector<double> us;
        for (int i = 0; i < 200; ++i) {
            iovec part{page.data(), page.size()};
            check(write_fully(*file, {&part, 1}, std::uint64_t(i) * page.size()));
            auto start = Clock::now();
            if (file->sync()) std::exit(1);
            us.push_back(seconds_since(start) * 1e6);
        }
        fmt::print("{:<40} p50 {:.0f} us  p99 {:.0f} us  max {:.0f} us\n",
                   overwrite ? "fdatasync after a 4 KiB overwrite" : "fdatasync after a 4 KiB append",
                   percentile(us, 0.5), percentile(us, 0.99), percentile(us, 1.0));
    }

    // Group commit: a loop publishing 1 KiB persistent messages in turns of 64, each turn
    // flushed and a sync requested; a message counts once a ticket covering it is synced. With
    // plain appends and with the segment zero-filled 4 MiB ahead, twice each, in alternation.
    for (int run = 0; run < 4; ++run) {
        const bool preallocate = run % 2 == 1;
        LogOptions options;
        options.preallocate = preallocate ? std::uint64_t{4} << 20 : 0;
        auto log = open_log(fs, fmt::format("{}/group-commit-{}", base, run), sync, nullptr, nullptr, options);
        std::string body(1024, 'g');
        QueueEntryRef queue{1, 0};
        MessageRecord m;
        m.routing_key = "bench-queue";
        m.body = {reinterpret_cast<const std::byte*>(body.data()), body.size()};
        m.queues = {&queue, 1};
        std::deque<std::pair<std::uint64_t, std::size_t>> waiting;  // ticket, messages
        std::size_t confirmed = 0;
        auto start = Clock::now();
        auto rounds_before = sync.stats().rounds;
        while (seconds_since(start) < 2.0) {
            for (int k = 0; k < 64; ++k, ++queue.queue_seq) log->append(m);
            check(log->flush());
            waiting.emplace_back(sync.request_sync(), 64);
            loop.run_pending(waiting.size() > 64);  // at most 64 turns in flight, as a confirm window would
            while (!waiting.empty() && waiting.front().first <= synced_ticket) {
                confirmed += waiting.front().second;
                waiting.pop_front();
            }
        }
        double t = seconds_since(start);
        auto rounds = sync.stats().rounds - rounds_before;
        fmt::print("{:<40} {:>7.3f} M msg/s confirmed  ({} sync rounds, {:.0f} messages per round)\n",
                   preallocate ? "group commit, 1 KiB, turns of 64, zeroed" : "group commit, 1 KiB, turns of 64",
                   confirmed / t / 1e6, rounds, rounds ? double(confirmed) / double(rounds) : 0.0);
        for (auto& w : waiting) sync.wait(w.first);
    }

    measure_all_rolls();

    std::error_code ignored;
    if (argc <= 1) std::filesystem::remove_all(base, ignored);
    return 0;
}
