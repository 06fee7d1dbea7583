// Logging with fmt: one line per event on stderr, with a timestamp and level. A line is
// formatted only when its level is on.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace warren::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3, None = 4 };

Level level();
void set_level(Level level);
bool parse_level(std::string_view name, Level& out);  // "debug", "info", "warning", "error", "none"
void write(Level level, std::string_view line);

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

}  // namespace warren::log
