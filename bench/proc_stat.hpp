// What the bench reads about the broker process from /proc: its resident memory and the CPU time
// of all its threads (user + system), so that both brokers are charged the same way.
#pragma once

#include <optional>

namespace warren::bench {

// VmRSS of a process in KiB, from /proc/<pid>/status.
std::optional<long> read_rss_kib(int pid);

// utime + stime of a process (every thread, dead or alive), in seconds, from /proc/<pid>/stat.
// Its resolution is a clock tick (10 ms on Linux x86).
std::optional<double> read_cpu_seconds(int pid);

}  // namespace warren::bench
