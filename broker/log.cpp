// The log sink (stderr, one line per call, cut to max_line_bytes), the escaping of wire text,
// and the per-host rate limit.
#include "broker/log.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace warren::log {

namespace {
Level current = Level::Info;
std::function<void(Level, std::string_view)> sink;
// Lines per key (a client host): a burst of 20, then one a second.
RateLimiter limiter(20, 1);
}  // namespace

Level level() { return current; }
void set_level(Level l) { current = l; }
void set_sink(std::function<void(Level, std::string_view)> s) {
    sink = std::move(s);
}

bool parse_level(std::string_view name, Level& out) {
    if (name == "debug") out = Level::Debug;
    else if (name == "info") out = Level::Info;
    else if (name == "warning" || name == "warn") out = Level::Warning;
    else if (name == "error") out = Level::Error;
    else if (name == "none") out = Level::None;
    else return false;
    return true;
}

void write(Level l, std::string_view line) {
    std::string cut;
    if (line.size() > max_line_bytes) {
        // Every line should quote the wire through escaped(); this is the backstop.
        cut = fmt::format("{} ... ({} bytes cut)", line.substr(0, max_line_bytes - 40), line.size());
        line = cut;
    }
    if (sink) {
        sink(l, line);
        return;
    }
    static constexpr const char* names[] = {"debug", "info", "warning", "error", "none"};
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    std::string out = fmt::format("{}.{:03d} [{}] {}\n", stamp, ms, names[static_cast<int>(l)], line);
    std::fwrite(out.data(), 1, out.size(), stderr);
}

std::string escaped(std::string_view text, std::size_t max) {
    const std::string_view shown = text.substr(0, std::min(text.size(), max));
    std::string out;
    out.reserve(shown.size() + 32);
    for (char ch : shown) {
        auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += ch;
        } else if (c == '\\') {
            out += "\\\\";
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    if (shown.size() < text.size()) out += fmt::format("...({} bytes)", text.size());
    return out;
}

std::string_view peer_host(std::string_view address) {
    if (address.starts_with('[')) {
        auto end = address.find(']');
        return end == std::string_view::npos ? address : address.substr(0, end + 1);
    }
    auto colon = address.rfind(':');
    return colon == std::string_view::npos ? address : address.substr(0, colon);
}

void RateLimiter::refill(Bucket& b, TimePoint now) const {
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    if (elapsed > 0) b.tokens = std::min(burst_, b.tokens + elapsed * per_second_);
    b.last = now;
}

bool RateLimiter::allow(std::string_view key, TimePoint now, std::uint64_t& suppressed) {
    auto it = buckets_.find(std::string(key));
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_keys_) {
            // Forget the hosts that are quiet (full buckets); if all are busy, start afresh.
            for (auto b = buckets_.begin(); b != buckets_.end();) {
                refill(b->second, now);
                if (b->second.tokens >= burst_ && b->second.suppressed == 0)
                    b = buckets_.erase(b);
                else
                    ++b;
            }
            if (buckets_.size() >= max_keys_) buckets_.clear();
        }
        it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
    }
    Bucket& b = it->second;
    refill(b, now);
    if (b.tokens < 1) {
        ++b.suppressed;
        return false;
    }
    b.tokens -= 1;
    suppressed = b.suppressed;
    b.suppressed = 0;
    return true;
}

void reset_rate_limits() {
    limiter = RateLimiter(20, 1);
}

bool allow_limited_line(std::string_view key, std::uint64_t& suppressed) {
    return limiter.allow(key, std::chrono::steady_clock::now(), suppressed);
}

void write_limited_line(Level l, std::string line, std::string_view key, std::uint64_t suppressed) {
    if (suppressed) line += fmt::format(" ({} earlier lines about {} left out: rate limit)", suppressed, key);
    write(l, line);
}

}  // namespace warren::log
