// Recording recovery problems.
#include "store/recovery_stats.hpp"

#include <fmt/format.h>

namespace warren::store {

void report_problem(RecoveryStats& stats, const WarnSink& warn, const std::string& file, std::uint64_t offset,
                    std::string what) {
    if (warn) warn(fmt::format("store: {}: {} at offset {}", file, what, offset));
    if (stats.problems.size() < RecoveryStats::max_problems) stats.problems.push_back({file, offset, std::move(what)});
}

}  // namespace warren::store
