// What a log's recovery found: counts, and the first problems with the file and offset of
// each (every problem is also written to the log's warning sink as one line).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace warren::store {

struct Problem {
    std::string file;
    std::uint64_t offset = 0;
    std::string what;
};

struct RecoveryStats {
    std::uint64_t files = 0;             // data files read (segments and sidecars, or meta files)
    std::uint64_t records = 0;           // good records
    std::uint64_t events = 0;            // events applied (message log)
    std::uint64_t live = 0;              // entries handed to the visitor and kept
    std::uint64_t dropped = 0;           // entries the visitor declined (message log)
    std::uint64_t bad_records = 0;       // records or regions that failed their checks, skipped
    std::uint64_t bad_headers = 0;       // file headers that failed their checks
    std::uint64_t torn_tails = 0;        // files whose incomplete last record was cut off
    std::uint64_t truncated_bytes = 0;   // bytes cut off file ends (torn tails and trailing garbage)
    std::uint64_t unused_bytes = 0;      // zeros cut off segment ends: preallocated, never written (no problem)
    std::uint64_t unreadable_files = 0;  // files that could not be opened or read: left as they are
    std::uint64_t deleted_files = 0;     // settled segments, orphan sidecars, stale meta files
    std::uint64_t stale_events = 0;      // events about records that are not there (ignored)
    bool checkpoint = false;             // read from a clean shutdown's checkpoint, not the segments
    std::uint64_t segments = 0;          // segments with records (message log)
    std::uint64_t indexed_segments = 0;  // of those, read from their index instead of their records
    std::uint64_t bad_indexes = 0;       // indexes that failed their checks (the segment was read)
    std::uint64_t indexes_written = 0;   // indexes written for segments read whole
    std::vector<Problem> problems;       // the first max_problems

    static constexpr std::size_t max_problems = 100;
};

// Where a log writes its one-line reports (the broker passes its logger's warning).
using WarnSink = std::function<void(std::string_view)>;

// Counts a problem in `stats`, keeps its details and writes the line.
void report_problem(RecoveryStats& stats, const WarnSink& warn, const std::string& file, std::uint64_t offset,
                    std::string what);

}  // namespace warren::store
