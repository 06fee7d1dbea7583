// Logging with fmt: one line per event on stderr, with a timestamp and level. A line is
// formatted only when its level is on. Bad clients must not be able to fill the disk: a line
// never exceeds max_line_bytes, text from the wire is quoted through escaped(), and lines about
// one peer go through a per-host rate limit (peer(), limited()).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace warren::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3, None = 4 };

Level level();
void set_level(Level level);
bool parse_level(std::string_view name, Level& out);  // "debug", "info", "warning", "error", "none"
// Writes one line, cut to max_line_bytes.
void write(Level level, std::string_view line);
constexpr std::size_t max_line_bytes = 2048;
// Where lines go: stderr unless a sink is set (tests capture lines this way).
void set_sink(std::function<void(Level, std::string_view)> sink);

// Text from the wire or from a client (reply texts, names, frame bytes) as a log line may quote
// it: printable ASCII as it is, anything else as \xNN, at most `max` bytes of it, with the full
// size noted when cut.
std::string escaped(std::string_view text, std::size_t max = 256);

// "10.0.0.5" from "10.0.0.5:53422", "[::1]" from "[::1]:53422": one client host.
std::string_view peer_host(std::string_view address);

// A token bucket per key (a client host): a burst of `burst` lines, then `per_second`. Counts
// what it holds back, so the next line let through can say how many were left out. Keeps at
// most max_keys keys (full buckets are forgotten first).
class RateLimiter {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    RateLimiter(double burst, double per_second, std::size_t max_keys = 4096)
        : burst_(burst), per_second_(per_second), max_keys_(max_keys) {}
    // Whether a line for `key` may go out at `now`; if so, `suppressed` is how many lines for
    // it were held back since the last one that went out.
    bool allow(std::string_view key, TimePoint now, std::uint64_t& suppressed);
    std::size_t keys() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens;
        TimePoint last;
        std::uint64_t suppressed = 0;
    };
    void refill(Bucket& b, TimePoint now) const;
    double burst_, per_second_;
    std::size_t max_keys_;
    std::unordered_map<std::string, Bucket> buckets_;
};

// The limit on lines per key (a client host): 20 at once, then one a second.
// reset_rate_limits() forgets every key (tests start from a clean slate).
void reset_rate_limits();
bool allow_limited_line(std::string_view key, std::uint64_t& suppressed);
void write_limited_line(Level level, std::string line, std::string_view key, std::uint64_t suppressed);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Warning) write(Level::Warning, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Error) write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}
// A line that a client can cause at will, rate-limited per `key`: 20 at once, then one a second.
template <class... Args>
void limited(Level l, std::string_view key, fmt::format_string<Args...> f, Args&&... args) {
    if (level() > l) return;
    std::uint64_t suppressed = 0;
    if (!allow_limited_line(key, suppressed)) return;
    write_limited_line(l, fmt::format(f, std::forward<Args>(args)...), key, suppressed);
}
// A line about the client at `address` (its connection opening, closing, failing), limited per
// client host: 2,000 bad connections from one host write a few dozen lines, not 2,000.
template <class... Args>
void peer(Level l, std::string_view address, fmt::format_string<Args...> f, Args&&... args) {
    limited(l, peer_host(address), f, std::forward<Args>(args)...);
}

}  // namespace warren::log
