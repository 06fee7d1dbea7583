// DelayedMessages on a fake clock, with a pager that keeps "disk" in a map: release in deadline
// order whatever the mix of delays (equal deadlines in seq order), one timer at the earliest
// deadline, paging out once written (but not what is due within a second), read back on release,
// TTL deadlines kept, and draining without reading back.
#include "broker/delayed_messages.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>

using namespace warren::broker;
using namespace std::chrono_literals;

namespace {

MessageRef make(const std::string& body, std::uint64_t location = 0) {
    static const std::byte no_properties[2] = {};  // property flags, none set
    MessageRef m = Message::create("x", "k", no_properties, body.size());
    std::copy(body.begin(), body.end(), reinterpret_cast<char*>(m->body_data()));
    m->set_store_location(location);
    return m;
}

std::string body_of(const QueuedMessage& q) {
    auto b = q.message->body();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// "Disk": a message is written once its location is in `written`; load() serves it from there.
struct FakePager final : Pager {
    std::map<std::uint64_t, std::string> written;
    std::uint64_t loads = 0;
    std::uint64_t next_transient = 1ull << 40;
    MessageRef load(std::uint64_t location, bool) override {
        ++loads;
        auto it = written.find(location);
        return it == written.end() ? MessageRef() : make(it->second, location);
    }
    bool can_page_out(const Message& m) const override { return written.contains(m.store_location()); }
    void write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations) override {
        for (std::size_t i = 0; i < messages.size(); ++i) {
            auto b = messages[i]->body();
            locations[i] = next_transient++;
            written[locations[i]] = std::string(reinterpret_cast<const char*>(b.data()), b.size());
        }
    }
};

struct Fixture {
    TimePoint now{std::chrono::hours(1)};
    TimerQueue timers;
    FakePager pager;
    std::vector<std::string> released;
    std::vector<TimePoint> released_at;
    std::size_t budget = 1000000;
    DelayedMessages held{timers, &pager, [this] { on_due(); }};

    void on_due() {
        for (std::size_t n = 0; n < budget; ++n) {
            auto m = held.pop_due(now);
            if (!m) break;
            released.push_back(body_of(*m));
            released_at.push_back(now);
        }
        held.rearm();
    }
    void advance(Duration d) {
        now += d;
        while (timers.fire_due(now)) {
        }
    }
};

}  // namespace

TEST_CASE("held messages are released at their deadlines, in deadline order, whatever the mix of delays", "[delayed]") {
    Fixture f;
    std::mt19937 rng(7);
    std::vector<std::pair<int, std::string>> expected;
    for (int i = 0; i < 2000; ++i) {
        int delay = static_cast<int>(rng() % 60000);
        std::string body = std::to_string(i);
        f.held.hold(QueuedMessage(make(body), static_cast<std::uint64_t>(i + 1)),
                    f.now + std::chrono::milliseconds(delay), false);
        expected.emplace_back(delay, body);
    }
    std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    CHECK(f.held.size() == 2000);
    // The timer follows the earliest deadline; nothing comes out before its time.
    std::size_t due = 0;
    for (int ms = 1; ms <= 60000 && f.released.size() < expected.size(); ++ms) {
        f.advance(1ms);
        while (due < expected.size() && expected[due].first <= ms) ++due;
        REQUIRE(f.released.size() == due);
    }
    REQUIRE(f.released.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(f.released[i] == expected[i].second);
    CHECK(f.held.empty());
    CHECK(f.timers.size() == 0);
}

TEST_CASE("equal deadlines come out in seq order, and a later hold with an earlier deadline re-arms the timer",
          "[delayed]") {
    Fixture f;
    const TimePoint at = f.now + 500ms;
    for (std::uint64_t seq : {5, 3, 9, 1}) f.held.hold(QueuedMessage(make(std::to_string(seq)), seq), at, false);
    f.held.hold(QueuedMessage(make("early"), 20), f.now + 100ms, false);
    f.advance(99ms);
    CHECK(f.released.empty());
    f.advance(1ms);
    CHECK(f.released == std::vector<std::string>{"early"});
    f.advance(400ms);
    CHECK(f.released == std::vector<std::string>{"early", "1", "3", "5", "9"});
}

TEST_CASE("a bounded batch per timer: the rest of what is due goes out at the next turn", "[delayed]") {
    Fixture f;
    f.budget = 100;
    for (std::uint64_t i = 1; i <= 1000; ++i) f.held.hold(QueuedMessage(make("m"), i), f.now + 10ms, false);
    f.now += 10ms;
    // Each turn fires the timers due once: one batch each.
    f.timers.fire_due(f.now);
    CHECK(f.released.size() == 100);
    f.timers.fire_due(f.now);
    CHECK(f.released.size() == 200);
    f.advance(0ms);
    CHECK(f.released.size() == 1000);
}

TEST_CASE("held entries leave memory once written, except those due within a second; they are read back when due",
          "[delayed]") {
    Fixture f;
    f.held.hold(QueuedMessage(make("soon", 64), 1), f.now + 500ms, true);
    f.held.hold(QueuedMessage(make("later", 128), 2), f.now + 5s, true);
    f.held.hold(QueuedMessage(make("unwritten", 192), 3), f.now + 5s, true);
    f.held.hold(QueuedMessage(make("transient"), 4), f.now + 6s, true);
    CHECK(f.held.has_pending_page_out());
    f.pager.written[64] = "soon";
    f.pager.written[128] = "later";
    f.held.page_out(f.now, false, false);
    CHECK_FALSE(f.held.has_pending_page_out());
    CHECK(f.held.in_memory() == 3);      // "soon" is due within a second; 192 is not written; 4 is transient
    f.held.page_out(f.now, true, true);  // memory pressure: the transient one gets a record of its own
    CHECK(f.held.in_memory() == 2);
    CHECK(f.pager.loads == 0);
    f.advance(6s);
    CHECK(f.released == std::vector<std::string>{"soon", "later", "unwritten", "transient"});
    CHECK(f.pager.loads == 2);
    CHECK(f.held.in_memory() == 0);
}

TEST_CASE("the heap grows geometrically when a turn's entries join it, not by the turn's count", "[delayed]") {
    // One message held per turn, as a steady publisher does: the heap must not be reallocated
    // (and copied whole) at every turn.
    Fixture f;
    std::size_t reallocations = 0;
    std::size_t capacity = f.held.heap_capacity();
    for (std::uint64_t seq = 1; seq <= 10000; ++seq) {
        f.held.hold(QueuedMessage(make("m", seq * 64), seq), f.now + 60s, true);
        f.pager.written[seq * 64] = "m";
        f.held.page_out(f.now, false, false);
        if (f.held.heap_capacity() != capacity) ++reallocations;
        capacity = f.held.heap_capacity();
    }
    CHECK(f.held.size() == 10000);
    CHECK(f.held.in_memory() == 0);
    CHECK(reallocations <= 15);  // 1, 2, 4, ... 16384
}

TEST_CASE("a deferred entry that is due before the turn's end joins the heap in memory", "[delayed]") {
    Fixture f;
    f.held.hold(QueuedMessage(make("now"), 1), f.now + 1ms, true);
    f.advance(1ms);
    CHECK(f.released == std::vector<std::string>{"now"});
}

TEST_CASE("a message that cannot be read back is skipped and the next one released", "[delayed]") {
    Fixture f;
    f.held.restore(1000, 1, 0, f.now + 1s, TimePoint{});  // not on "disk"
    f.pager.written[2000] = "readable";
    f.held.restore(2000, 2, 3, f.now + 2s, TimePoint{});
    f.advance(2s);
    CHECK(f.released == std::vector<std::string>{"readable"});
    CHECK(f.held.empty());
}

TEST_CASE("a held message keeps its delivery count and TTL deadline; draining reads nothing back", "[delayed]") {
    Fixture f;
    const TimePoint ttl = f.now + 10s;
    f.held.hold(QueuedMessage(make("a"), 7, ttl, 4), f.now + 1s, false);
    f.held.restore(3000, 8, 2, f.now + 1s, TimePoint{});
    f.pager.written[3000] = "b";
    std::vector<DelayedMessages::View> seen;
    f.held.for_each([&](const DelayedMessages::View& v) { seen.push_back(v); });
    REQUIRE(seen.size() == 2);
    f.now += 1s;
    auto a = f.held.pop_due(f.now);
    REQUIRE(a);
    CHECK(a->seq() == 7);
    CHECK(a->delivery_count() == 4);
    CHECK(a->expires_at == ttl);
    std::vector<std::uint64_t> drained;
    f.held.drain([&](const DelayedMessages::View& v) { drained.push_back(v.location); });
    CHECK(drained == std::vector<std::uint64_t>{3000});
    CHECK(f.pager.loads == 0);
    CHECK(f.held.empty());
    CHECK(f.timers.next_deadline() == std::nullopt);
}
