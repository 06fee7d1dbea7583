// Captures the broker's log lines for a test (at the given level, rate limits reset), and puts
// the log back as it was afterwards.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "broker/log.hpp"

namespace warren::testing {

class LogCapture {
public:
    explicit LogCapture(warren::log::Level level = warren::log::Level::Info) : saved_(warren::log::level()) {
        warren::log::reset_rate_limits();
        warren::log::set_level(level);
        warren::log::set_sink([this](warren::log::Level, std::string_view line) { lines.emplace_back(line); });
    }
    ~LogCapture() {
        warren::log::set_sink({});
        warren::log::set_level(saved_);
        warren::log::reset_rate_limits();
    }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    std::size_t bytes() const {
        std::size_t n = 0;
        for (auto& l : lines) n += l.size() + 1;
        return n;
    }
    std::size_t longest() const {
        std::size_t n = 0;
        for (auto& l : lines) n = std::max(n, l.size());
        return n;
    }
    bool contains(std::string_view text) const {
        for (auto& l : lines)
            if (l.find(text) != std::string::npos) return true;
        return false;
    }

    std::vector<std::string> lines;

private:
    warren::log::Level saved_;
};

}  // namespace warren::testing
