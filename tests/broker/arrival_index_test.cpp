// ArrivalIndex: bounded samples and a bounded resolution however many messages arrive or are
// restored (a restart with many records thinned it until the resolution overflowed).
#include "broker/arrival_index.hpp"

#include <catch2/catch.hpp>

using namespace warren::broker;

TEST_CASE("restoring many records keeps the arrival index bounded and its resolution finite", "[workbench]") {
    ArrivalIndex index;
    const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);
    for (std::uint64_t seq = 1; seq <= 200'000; ++seq) index.restore(seq, t0 + std::chrono::milliseconds(seq));
    CHECK(index.resolution() <= ArrivalIndex::max_resolution);
    REQUIRE(index.arrived_by(200'000).has_value());
    CHECK(*index.arrived_by(200'000) <= t0 + std::chrono::milliseconds(200'000));
    CHECK(*index.arrived_by(1) == t0 + std::chrono::milliseconds(1));
}

TEST_CASE("arrivals spread over decades never push the resolution past its bound", "[workbench]") {
    ArrivalIndex index;
    const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);
    for (std::uint64_t seq = 1; seq <= 2'000; ++seq) index.note(seq, t0 + std::chrono::hours(24 * 10) * seq);
    CHECK(index.resolution() <= ArrivalIndex::max_resolution);
    CHECK(index.arrivals() == 2'000);
}
