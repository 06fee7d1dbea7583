// MessageLog in normal operation: append and read back (buffered, written, after a restart),
// fan-out stored once, events recovered, segments deleted when settled, errors for bad reads.
#include "store/message_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "store/bytes.hpp"
#include "store/fault_file_system.hpp"
#include "store/format.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using namespace test;

const RecoveredEntry* entry_for(const Recovered& r, std::uint32_t queue, std::uint64_t seq) {
    for (const auto& e : r.entries)
        if (e.queue_id == queue && e.queue_seq == seq) return &e;
    return nullptr;
}

TEST_CASE("appended messages read back buffered, written, and after a restart", "[store][log]") {
    FaultFileSystem fs;
    auto m1 = message("first body", {{1, 10}});
    auto m2 = message(std::string(5000, 'z'), {{2, 20}});
    m2.ttl_ms = 1234;
    m2.priority = 5;
    auto m3 = message("", {{1, 11}});
    Location l1, l2, l3;
    {
        Syncer s;
        auto log = fresh_log(fs, s.service);
        l1 = log->append(m1.record());
        l2 = log->append(m2.record());
        CHECK(log->has_unflushed());
        CHECK(body_at(*log, l1) == "first body");  // from the buffer
        REQUIRE(log->flush());
        CHECK_FALSE(log->has_unflushed());
        l3 = log->append(m3.record());
        REQUIRE(log->flush());
        auto v = log->read(l2);
        REQUIRE(v);
        CHECK(as_string(v->body) == m2.body);
        CHECK(v->ttl_ms == 1234);
        CHECK(v->priority == 5);
        CHECK(v->exchange == "amq.direct");
        CHECK(v->routing_key == "key");
        CHECK(as_string(v->properties) == m2.properties);
        REQUIRE(v->queues.size() == 1);
        CHECK(v->queues[0] == QueueEntryRef{2, 20});
        CHECK_FALSE(s.sync().error);
    }
    Syncer s;
    auto log = open_log(fs, s.service);
    auto r = recover(*log);
    REQUIRE(r.entries.size() == 3);
    CHECK(r.stats.records == 3);
    CHECK(r.stats.problems.empty());
    const RecoveredEntry* e2 = entry_for(r, 2, 20);
    REQUIRE(e2);
    CHECK(e2->location == l2);
    CHECK(e2->body_size == 5000);
    CHECK(e2->ttl_ms == 1234);
    CHECK(e2->priority == 5);
    CHECK(e2->flags == message_flags::persistent);
    CHECK(e2->publish_ms == m2.publish_ms);
    CHECK(e2->record_size == record_header_size + message_payload_size(m2.record()));
    CHECK_FALSE(e2->delivered);
    CHECK(body_at(*log, l1) == "first body");
    CHECK(body_at(*log, l2) == m2.body);
    CHECK(body_at(*log, l3) == "");
}

TEST_CASE("a message routed to several queues is stored once", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    auto m = message(std::string(1000, 'f'), {{1, 1}, {2, 7}, {3, 9}});
    Location l = log->append(m.record());
    REQUIRE(log->flush());
    CHECK(log->stats().appends == 1);
    CHECK(log->stats().live_pairs == 3);
    CHECK(fs.contents("/data/vhost/00000001.seg").size() ==
          file_header_size + record_header_size + message_payload_size(m.record()));
    log.reset();
    log = open_log(fs, s.service);
    auto r = recover(*log);
    REQUIRE(r.entries.size() == 3);
    for (const auto& e : r.entries) CHECK(e.location == l);
}

TEST_CASE("deliveries, returns and acks are what recovery reports", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    Location delivered = log->append(message("d", {{1, 1}}).record());
    Location returned = log->append(message("r", {{1, 2}}).record());
    Location acked = log->append(message("a", {{1, 3}}).record());
    Location fanned = log->append(message("f", {{1, 4}, {2, 4}}).record());
    Location redelivered = log->append(message("x", {{1, 5}}).record());
    log->deliver(delivered, 1);
    log->deliver(returned, 1);
    REQUIRE(log->flush());  // events in two records of the sidecar
    log->ret(returned, 1, 2);
    log->deliver(acked, 1);
    log->ack(acked, 1);
    log->ack(fanned, 1);
    log->ret(redelivered, 1, 1);
    log->deliver(redelivered, 1);
    REQUIRE(log->flush());
    log.reset();
    log = open_log(fs, s.service);
    auto r = recover(*log);
    CHECK(r.entries.size() == 4);
    CHECK(r.stats.events == 8);
    auto d = entry_for(r, 1, 1), ret = entry_for(r, 1, 2), f2 = entry_for(r, 2, 4), x = entry_for(r, 1, 5);
    REQUIRE(d);
    REQUIRE(ret);
    REQUIRE(f2);
    REQUIRE(x);
    CHECK(d->delivered);
    CHECK(d->delivery_count == 0);
    CHECK_FALSE(ret->delivered);
    CHECK(ret->delivery_count == 2);
    CHECK_FALSE(f2->delivered);
    CHECK(x->delivered);
    CHECK(x->delivery_count == 1);
    CHECK_FALSE(entry_for(r, 1, 3));
    CHECK_FALSE(entry_for(r, 1, 4));
    CHECK(d->location == delivered);
    CHECK(ret->location == returned);
    CHECK(x->location == redelivered);
    CHECK(f2->location == fanned);
}

TEST_CASE("a Hold event brings a pair back held until its deadline; a later event releases it",
          "[store][log][retry]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    Location held = log->append(message("held", {{1, 1}}).record());
    Location released = log->append(message("released", {{1, 2}}).record());
    Location settled = log->append(message("settled", {{1, 3}}).record());
    for (Location l : {held, released, settled}) log->deliver(l, 1);
    log->hold(held, 1, 3, 1'700'000'060'000);
    log->hold(released, 1, 1, 1'700'000'001'000);
    log->hold(settled, 1, 1, 1'700'000'001'000);
    REQUIRE(log->flush());
    log->deliver(released, 1);  // released when its deadline came, and delivered again
    log->ack(settled, 1);
    REQUIRE(log->flush());
    log.reset();
    log = open_log(fs, s.service);
    auto r = recover(*log);
    REQUIRE(r.entries.size() == 2);
    const RecoveredEntry* h = entry_for(r, 1, 1);
    const RecoveredEntry* d = entry_for(r, 1, 2);
    REQUIRE(h);
    REQUIRE(d);
    CHECK_FALSE(h->delivered);
    CHECK(h->delivery_count == 3);
    CHECK(h->hold_until_ms == 1'700'000'060'000);
    CHECK(d->delivered);
    CHECK(d->delivery_count == 1);
    CHECK(d->hold_until_ms == -1);
}

TEST_CASE("a small read-ahead reads one record at a time, whatever its size", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    std::vector<Location> at;
    for (int i = 0; i < 50; ++i) at.push_back(log->append(message(std::string(100 + i * 300, char('a' + i % 26)), {{1, std::uint64_t(i)}}).record()));
    REQUIRE(log->flush());
    // In a jumbled order, as deadlines release them.
    for (int k = 0; k < 50; ++k) {
        const int i = (k * 17) % 50;
        auto v = log->read(at[i], 4096);
        REQUIRE(v);
        CHECK(as_string(v->body) == std::string(100 + i * 300, char('a' + i % 26)));
    }
}

TEST_CASE("a settled segment is deleted with its sidecar but the head segment is kept", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    LogOptions options;
    options.segment_size = 4096;
    auto log = fresh_log(fs, s.service, options);
    std::vector<Location> locations;
    for (int i = 0; i < 30; ++i)
        locations.push_back(log->append(message(std::string(400, 'a'), {{1, std::uint64_t(i)}}).record()));
    REQUIRE(log->flush());
    std::uint32_t first = location_segment(locations.front()), last = location_segment(locations.back());
    REQUIRE(last >= first + 2);
    CHECK(log->stats().segments == last - first + 1);
    // Settle everything in the first segment but one pair: it stays.
    std::vector<Location> in_first;
    for (Location l : locations)
        if (location_segment(l) == first) in_first.push_back(l);
    for (std::size_t i = 0; i + 1 < in_first.size(); ++i) log->ack(in_first[i], 1);
    REQUIRE(log->flush());
    CHECK(fs.exists("/data/vhost/00000001.seg"));
    CHECK(fs.exists("/data/vhost/00000001.evt"));
    log->ack(in_first.back(), 1);
    REQUIRE(log->flush());
    CHECK_FALSE(fs.exists("/data/vhost/00000001.seg"));
    CHECK_FALSE(fs.exists("/data/vhost/00000001.evt"));
    CHECK(log->stats().segments_deleted == 1);
    CHECK_FALSE(log->contains(in_first.back()));
    CHECK_FALSE(log->read(in_first.back()));
    // Settle everything: every segment but the head goes.
    for (Location l : locations)
        if (location_segment(l) != first) log->ack(l, 1);
    REQUIRE(log->flush());
    CHECK(log->stats().segments == 1);
    CHECK(log->stats().live_pairs == 0);
    CHECK(fs.exists(fmt::format("/data/vhost/{:08x}.seg", last)));
    // A roll frees the old head when nothing in it is unsettled.
    Location next = log->append(message(std::string(4000, 'b'), {{1, 100}}).record());
    CHECK(location_segment(next) == last + 1);
    REQUIRE(log->flush());
    CHECK_FALSE(fs.exists(fmt::format("/data/vhost/{:08x}.seg", last)));
}

// Passes everything to a FaultFileSystem, and notes on which thread each file opened here is
// closed (its last reference dropped).
class CloseRecorder final : public ForwardingFileSystem {
public:
    explicit CloseRecorder(FileSystem& fs) : ForwardingFileSystem(fs) {}
    Result<std::shared_ptr<File>> open(const std::string& path, OpenMode mode) override {
        auto f = fs_.open(path, mode);
        if (!f) return f;
        std::shared_ptr<File> inner = std::move(*f);
        File* raw = inner.get();
        return std::shared_ptr<File>(raw, [this, path, inner](File*) mutable {
            inner.reset();
            std::lock_guard lock(mutex_);
            closed_on_[path] = std::this_thread::get_id();
        });
    }

    std::optional<std::thread::id> closed_on(const std::string& path) {
        std::lock_guard lock(mutex_);
        auto it = closed_on_.find(path);
        return it == closed_on_.end() ? std::nullopt : std::optional(it->second);
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::thread::id> closed_on_;
};

TEST_CASE("a deleted segment's files are closed by the sync thread, not by the flush that deletes them",
          "[store][log]") {
    // Closing an unlinked file frees its blocks, which can wait tens of milliseconds for the
    // journal: the loop that flushes must not be the one to do it.
    FaultFileSystem faults;
    CloseRecorder fs(faults);
    Syncer s;
    LogOptions options;
    options.segment_size = 4096;
    auto log = fresh_log(fs, s.service, options);
    Location a = log->append(message(std::string(3000, 'a'), {{1, 1}, {2, 1}}).record());
    Location b = log->append(message(std::string(3000, 'b'), {{1, 2}}).record());  // rolls: segment 2
    REQUIRE(location_segment(b) == location_segment(a) + 1);
    log->ack(a, 1);  // a sidecar for segment 1 too
    REQUIRE(log->flush());
    s.sync();  // the sync thread holds no reference to them any more
    log->ack(a, 2);
    REQUIRE(log->flush());
    REQUIRE_FALSE(faults.exists("/data/vhost/00000001.seg"));
    s.service.stop();  // closes what it was handed before its thread ends
    const auto seg = fs.closed_on("/data/vhost/00000001.seg");
    const auto evt = fs.closed_on("/data/vhost/00000001.evt");
    REQUIRE(seg);
    REQUIRE(evt);
    CHECK(*seg != std::this_thread::get_id());
    CHECK(*evt != std::this_thread::get_id());
}

TEST_CASE("forget settles without an event, and a pair recovery declines counts as settled", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    LogOptions options;
    options.segment_size = 4096;
    auto log = fresh_log(fs, s.service, options);
    Location a = log->append(message(std::string(3000, 'a'), {{1, 1}, {2, 1}}).record());
    Location b = log->append(message(std::string(3000, 'b'), {{1, 2}, {2, 2}}).record());  // segment 2
    REQUIRE(location_segment(b) == location_segment(a) + 1);
    log->forget(a);  // queue 2 deleted: no event written
    REQUIRE(log->flush());
    CHECK_FALSE(fs.exists("/data/vhost/00000001.evt"));
    log.reset();
    log = open_log(fs, s.service, options);
    auto r = recover(*log, [](const RecoveredEntry& e) { return e.queue_id != 2; });  // queue 2 is gone
    CHECK(r.entries.size() == 4);                                                     // visit sees every unsettled pair
    CHECK(r.stats.live == 2);
    CHECK(r.stats.dropped == 2);
    CHECK(log->stats().live_pairs == 2);
    log->ack(a, 1);
    REQUIRE(log->flush());
    CHECK_FALSE(fs.exists("/data/vhost/00000001.seg"));  // queue 2's pair was dropped at recovery
}

TEST_CASE("a segment whose pairs recovery drops entirely is deleted at recovery", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    log->append(message("a", {{7, 1}}).record());
    REQUIRE(log->flush());
    log.reset();
    log = open_log(fs, s.service);
    auto r = recover(*log, [](const RecoveredEntry&) { return false; });
    CHECK(r.stats.dropped == 1);
    CHECK(r.stats.deleted_files == 1);
    CHECK_FALSE(fs.exists("/data/vhost/00000001.seg"));
}

TEST_CASE("reads of gone segments and bad locations are errors, never undefined behaviour", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    Location l = log->append(message("body", {{1, 1}}).record());
    REQUIRE(log->flush());
    CHECK_FALSE(log->read(no_location));
    CHECK_FALSE(log->read(l + 1000000));
    CHECK_FALSE(log->read((Location{77} << 32) | 64));
    CHECK(log->read(l + 1).error().code == std::errc::illegal_byte_sequence);  // not a record start
    CHECK(log->read(l));
}

TEST_CASE("a record changed on disk fails its checksum on read and is reported", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    std::vector<std::string> lines;
    LogOptions options;
    options.warn = [&](std::string_view line) { lines.emplace_back(line); };
    auto log = fresh_log(fs, s.service, options);
    Location l = log->append(message("precious body", {{1, 1}}).record());
    REQUIRE(log->flush());
    std::string bytes = fs.contents("/data/vhost/00000001.seg");
    bytes[bytes.size() - 3] ^= 0x01;  // inside the body
    fs.set_contents("/data/vhost/00000001.seg", bytes);
    auto v = log->read(l);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == std::errc::illegal_byte_sequence);
    CHECK(log->stats().bad_records == 1);
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("/data/vhost/00000001.seg") && Catch::Contains("offset 32"));
}

TEST_CASE("reading a queue in order costs one pread per read-ahead window", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    LogOptions options;
    options.read_ahead = 64 * 1024;
    auto log = fresh_log(fs, s.service, options);
    std::vector<Location> locations;
    for (int i = 0; i < 2000; ++i)
        locations.push_back(log->append(message(std::to_string(i), {{1, std::uint64_t(i)}}).record()));
    REQUIRE(log->flush());
    std::uint64_t before = fs.reads();
    for (int i = 0; i < 2000; ++i) REQUIRE(body_at(*log, locations[i]) == std::to_string(i));
    std::uint64_t file_size = fs.contents("/data/vhost/00000001.seg").size();
    CHECK(fs.reads() - before <= file_size / options.read_ahead + 2);
}

TEST_CASE("a record larger than the segment size and the read-ahead gets a segment of its own", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    LogOptions options;
    options.segment_size = 4096;
    options.read_ahead = 4096;
    auto log = fresh_log(fs, s.service, options);
    Location small = log->append(message("small", {{1, 1}}).record());
    Location big = log->append(message(std::string(100000, 'B'), {{1, 2}}).record());
    Location after = log->append(message("after", {{1, 3}}).record());
    CHECK(location_segment(big) == location_segment(small) + 1);
    CHECK(location_segment(after) == location_segment(big) + 1);
    CHECK(body_at(*log, big) == std::string(100000, 'B'));  // buffered
    REQUIRE(log->flush());
    CHECK(body_at(*log, small) == "small");
    CHECK(body_at(*log, big) == std::string(100000, 'B'));
    CHECK(body_at(*log, after) == "after");
}

TEST_CASE("after recovery the sequence continues and appends go to a new segment", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = fresh_log(fs, s.service);
    log->append(message("a", {{1, 1}}).record());
    log->append(message("b", {{1, 2}}).record());
    REQUIRE(log->flush());
    log.reset();
    log = open_log(fs, s.service);
    recover(*log);
    Location c = log->append(message("c", {{1, 3}}).record());
    CHECK(location_segment(c) == 2);
    REQUIRE(log->flush());
    std::string seg2 = fs.contents("/data/vhost/00000002.seg");
    RecordHeader h = peek_record_header(reinterpret_cast<const std::byte*>(seg2.data()) + file_header_size);
    CHECK(h.seq == 3);
}

TEST_CASE("a log directory is locked against a second opener", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto first = open_log(fs, s.service);
    auto second = MessageLog::open(fs, "/data/vhost", {}, s.service);
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error().message, Catch::Contains("in use by pid"));
}

TEST_CASE("misuse is a caller bug: append before recover, events on unknown locations", "[store][log]") {
    FaultFileSystem fs;
    Syncer s;
    auto log = open_log(fs, s.service);
    CHECK_THROWS_AS(log->append(message("x", {{1, 1}}).record()), std::logic_error);
    recover(*log);
    log->ack((Location{5} << 32) | 64, 1);
    log->deliver(no_location, 1);
    CHECK(log->stats().stale_events == 2);
    CHECK_FALSE(log->has_unflushed());
}

}  // namespace
}  // namespace warren::store
