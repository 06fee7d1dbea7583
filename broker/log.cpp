// The log sink: stderr, one line per call.
#include "broker/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace warren::log {

namespace {
Level current = Level::Info;
}

Level level() { return current; }
void set_level(Level l) { current = l; }

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

}  // namespace warren::log
