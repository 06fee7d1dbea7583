// Persistent messages across a restart (the same file system: as after kill -9, when what was
// written survives) and across a power cut (a crash image keeping only what was synced): what
// comes back, in which order, with which flags, counts and deadlines.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "broker/durability.hpp"
#include "broker/vhost_storage.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;
using warren::store::FaultFileSystem;

namespace {

void declare_durable(TestClient& c, std::string_view name, const FieldTable& args = {}) {
    c.declare_queue(1, name, args, true);
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
}

std::int64_t count_header(const Delivery& d) {
    FieldTable headers = d.headers();
    const FieldValue* v = headers.find("x-delivery-count");
    return v && v->as_integer() ? *v->as_integer() : -1;
}

}  // namespace

TEST_CASE("persistent messages in a durable queue survive a restart in order with their properties; transient "
          "ones and those of transient queues do not",
          "[storage][persistence]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "jobs");
        c.declare_queue(1, "light", {}, false);
        c.take<QueueDeclareOk>();
        BasicProperties p = persistent();
        p.content_type = "application/pdf";
        p.set_flag(property_flag::content_type);
        FieldTable h = table({{"tenant", std::string("billing")}});
        ByteBuffer hb = encode_table_body(h);
        p.headers = TableView::trusted(hb.span());
        p.set_flag(property_flag::headers);
        for (int i = 0; i < 5; ++i) c.publish(1, "", "jobs", "job-" + std::to_string(i), p);
        c.publish(1, "", "jobs", "transient");
        c.publish(1, "", "light", "persistent-in-transient-queue", persistent());
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    REQUIRE(b.queue("jobs"));
    CHECK_FALSE(b.queue("light"));
    c.get(1, "jobs", true);
    auto first = c.deliveries();
    REQUIRE(first.size() == 1);
    CHECK(first[0].body == "job-0");
    CHECK_FALSE(first[0].redelivered());
    CHECK(first[0].properties().content_type == "application/pdf");
    CHECK(first[0].properties().delivery_mode == 2);
    FieldTable headers = first[0].headers();
    REQUIRE(headers.find("tenant"));
    CHECK(*headers.find("tenant")->as_string() == "billing");
    CHECK(drain_bodies(c, 1, "jobs") == std::vector<std::string>{"job-1", "job-2", "job-3", "job-4"});
}

TEST_CASE("a delivery not acknowledged when the broker stopped comes back redelivered with x-delivery-count",
          "[storage][persistence]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "jobs");
        for (int i = 0; i < 4; ++i) c.publish(1, "", "jobs", "job-" + std::to_string(i), persistent());
        c.consume(1, "jobs", "worker");
        auto d = c.deliveries();
        REQUIRE(d.size() == 4);
        c.ack(1, d[0].delivery_tag());             // job-0 done
        c.reject(1, d[1].delivery_tag(), true);    // job-1 back in the queue once...
        auto again = c.deliveries();
        REQUIRE(again.size() == 1);
        CHECK(again[0].body == "job-1");           // ...and out again, unacknowledged
        // job-2 and job-3 (and job-1's second delivery) are with the consumer when the broker dies.
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    c.consume(1, "jobs", "worker", true);
    auto d = c.deliveries();
    REQUIRE(d.size() == 3);
    CHECK(d[0].body == "job-1");
    CHECK(d[0].redelivered());
    CHECK(count_header(d[0]) == 2);  // returned once before, and once more by the stop
    CHECK(d[1].body == "job-2");
    CHECK(d[1].redelivered());
    CHECK(count_header(d[1]) == 1);
    CHECK(d[2].body == "job-3");
}

TEST_CASE("the delivery count goes on growing when the broker is killed again with the message delivered",
          "[storage][persistence][crash]") {
    // kill -9 with the delivery still with its consumer: a crash image taken while the client is
    // connected, after a confirmed publish and a full sync (deliveries and acks are synced within
    // sync_interval_ms, not with each confirm) have stored everything written before it, the
    // Deliver event too. The count a recovery adds for the delivery in flight must be stored as
    // well, or the next recovery starts again from the count of the last requeue.
    auto kill_with_delivery_out = [](TestBroker& b, TestClient& c, std::shared_ptr<FaultFileSystem>& fs) {
        c.open_channel(2);
        c.confirm_select(2);
        c.take<ConfirmSelectOk>();
        c.publish(2, "", "other", "sync", persistent());
        REQUIRE(c.take<BasicAck>().size() == 1);
        b.broker->durability()->finish_writes();
        fs = crashed(*fs);
    };
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "jobs");
        declare_durable(c, "other");
        c.publish(1, "", "jobs", "job", persistent());
        c.consume(1, "jobs", "worker");
        REQUIRE(c.deliveries().size() == 1);
        kill_with_delivery_out(b, c, fs);
    }
    for (std::int64_t expected = 1; expected <= 3; ++expected) {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        c.consume(1, "jobs", "worker");
        auto d = c.deliveries();
        REQUIRE(d.size() == 1);
        CHECK(d[0].redelivered());
        CHECK(count_header(d[0]) == expected);
        kill_with_delivery_out(b, c, fs);
    }
}

TEST_CASE("a message fanned out to several durable queues is stored once and settled per queue",
          "[storage][persistence]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        c.declare_exchange(1, "clicks", "fanout");
        ExchangeDeclare xd;
        declare_durable(c, "settlement");
        declare_durable(c, "analytics");
        c.bind_queue(1, "settlement", "clicks", "");
        c.bind_queue(1, "analytics", "clicks", "");
        c.publish(1, "clicks", "", "click-1", persistent());
        CHECK(b.broker->default_vhost().storage()->log().stats().appends == 1);
        CHECK(drain_bodies(c, 1, "settlement") == std::vector<std::string>{"click-1"});
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "settlement").empty());
    CHECK(drain_bodies(c, 1, "analytics") == std::vector<std::string>{"click-1"});
}

TEST_CASE("priorities are kept across a restart", "[storage][persistence]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "urgent", table({{"x-max-priority", std::int32_t{9}}}));
        c.publish(1, "", "urgent", "low-1", persistent(1));
        c.publish(1, "", "urgent", "high", persistent(8));
        c.publish(1, "", "urgent", "low-2", persistent(1));
        c.publish(1, "", "urgent", "none", persistent());
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "urgent") == std::vector<std::string>{"high", "low-1", "low-2", "none"});
}

TEST_CASE("a TTL counts across a restart: what expired while the broker was down is dead-lettered at once",
          "[storage][persistence][ttl]") {
    auto fs = std::make_shared<FaultFileSystem>();
    const std::int64_t start = 1'700'000'000;
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "parked");
        declare_durable(c, "retry", table({{"x-message-ttl", std::int32_t{60'000}},
                                           {"x-dead-letter-exchange", std::string("")},
                                           {"x-dead-letter-routing-key", std::string("parked")}}));
        c.publish(1, "", "retry", "soon", persistent());  // queue TTL: 60 s
        BasicProperties later = persistent();
        later.expiration = "3600000";
        later.set_flag(property_flag::expiration);
        c.publish(1, "", "retry", "later", later);        // its own TTL would be an hour, the queue's wins
        BasicProperties sooner = persistent();
        sooner.expiration = "10000";
        sooner.set_flag(property_flag::expiration);
        c.publish(1, "", "retry", "sooner", sooner);      // 10 s
    }
    SECTION("back 30 s later: only the 10 s message expired, and it is dead-lettered at once") {
        TestBroker b(storage_config(), fs, start + 30);
        TestClient c(b);
        c.open_channel(1);
        b.advance(std::chrono::milliseconds(0));
        CHECK(drain_bodies(c, 1, "parked") == std::vector<std::string>{"sooner"});
        CHECK(b.queue("retry")->message_count() == 2);
        b.advance(std::chrono::seconds(29));
        CHECK(b.queue("retry")->message_count() == 2);  // no fresh 60 s after the restart
        b.advance(std::chrono::seconds(2));
        CHECK(drain_bodies(c, 1, "parked") == std::vector<std::string>{"soon", "later"});
    }
    SECTION("back 2 minutes later: all of them expired, dead-lettered at once") {
        TestBroker b(storage_config(), fs, start + 120);
        TestClient c(b);
        c.open_channel(1);
        b.advance(std::chrono::milliseconds(0));
        CHECK(b.queue("retry")->message_count() == 0);
        CHECK(drain_bodies(c, 1, "parked").size() == 3);
    }
}

TEST_CASE("a dead-lettered persistent message is stored in its durable dead-letter queue with x-death",
          "[storage][persistence][dlx]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "dead");
        declare_durable(c, "work", table({{"x-dead-letter-exchange", std::string("")},
                                          {"x-dead-letter-routing-key", std::string("dead")}}));
        c.publish(1, "", "work", "hopeless", persistent());
        c.get(1, "work");
        auto d = c.deliveries();
        REQUIRE(d.size() == 1);
        c.reject(1, d[0].delivery_tag(), false);
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK(b.queue("work")->message_count() == 0);
    c.get(1, "dead", true);
    auto d = c.deliveries();
    REQUIRE(d.size() == 1);
    CHECK(d[0].body == "hopeless");
    FieldTable headers = d[0].headers();
    REQUIRE(headers.find("x-first-death-reason"));
    CHECK(*headers.find("x-first-death-reason")->as_string() == "rejected");
}

TEST_CASE("a quorum queue stores every message, persistent or not", "[storage][persistence]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "q", table({{"x-queue-type", std::string("quorum")}}));
        c.publish(1, "", "q", "transient");
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{"transient"});
}

TEST_CASE("deleting or purging a durable queue lets its messages go: they do not come back and their segment is "
          "deleted",
          "[storage][persistence]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "gone");
        declare_durable(c, "emptied");
        for (int i = 0; i < 10; ++i) {
            c.publish(1, "", "gone", "g", persistent());
            c.publish(1, "", "emptied", "e", persistent());
        }
        c.consume(1, "gone", "holder");  // two of its messages are unacknowledged when it goes
        c.deliveries();
        c.delete_queue(1, "gone");
        c.take<QueueDeleteOk>();
        c.purge_queue(1, "emptied");
        c.take<QueuePurgeOk>();
        declare_durable(c, "next");
        c.publish(1, "", "next", "n", persistent());  // a flush after the settles
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    CHECK_FALSE(b.queue("gone"));
    CHECK(drain_bodies(c, 1, "emptied").empty());
    // Only the last message's segment is left.
    CHECK(b.broker->default_vhost().storage()->log().stats().live_pairs == 1);
}

TEST_CASE("a long durable queue keeps only a window of bodies in memory and delivers all of it in order",
          "[storage][persistence][paging]") {
    auto fs = std::make_shared<FaultFileSystem>();
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    declare_durable(c, "long");
    const int n = 10'000;
    std::vector<std::byte> batch;
    for (int i = 0; i < n; ++i) {
        auto one = c.encode_publish(1, "", "long", "m" + std::to_string(i), persistent());
        batch.insert(batch.end(), one.begin(), one.end());
        if (i % 500 == 499) {
            c.send_raw(batch);
            batch.clear();
        }
    }
    Queue* q = b.queue("long");
    CHECK(q->message_count() == n);
    CHECK(q->messages_in_memory() <= 2048);
    c.qos(1, 100);
    c.consume(1, "long", "reader", true);
    int next = 0;
    bool in_order = true;
    while (next < n) {
        auto d = c.deliveries();
        if (d.empty()) break;
        for (auto& m : d) in_order = in_order && m.body == "m" + std::to_string(next++);
    }
    CHECK(next == n);
    CHECK(in_order);
}

TEST_CASE("a message that cannot be read back is dropped and logged; the others are delivered",
          "[storage][persistence][paging]") {
    auto fs = std::make_shared<FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "q");
        for (int i = 0; i < 3; ++i) c.publish(1, "", "q", std::string(100, static_cast<char>('a' + i)), persistent());
    }
    // Flip a byte in the second message's body on disk (after recovery read it once).
    TestBroker b(storage_config(), fs);
    std::string seg_path;
    for (const auto& p : fs->paths())
        if (p.ends_with(".seg")) seg_path = p;
    REQUIRE(!seg_path.empty());
    std::string bytes = fs->contents(seg_path);
    auto at = bytes.find(std::string(100, 'b'));
    REQUIRE(at != std::string::npos);
    bytes[at + 50] = 'X';
    fs->set_contents(seg_path, bytes);
    TestClient c(b);
    c.open_channel(1);
    CHECK(drain_bodies(c, 1, "q") == std::vector<std::string>{std::string(100, 'a'), std::string(100, 'c')});
    CHECK(b.broker->default_vhost().storage()->unreadable() == 1);
}

TEST_CASE("a power cut keeps every confirmed message and brings back no acknowledged one",
          "[storage][persistence][crash]") {
    // Rounds of publishes with confirms, and gets acknowledged in transactions (commit-ok: the
    // acks are stored); then, with syncs stalled, more publishes and acks that are written but not
    // synced, and a crash image that keeps only what was synced (or a prefix of the rest).
    for (std::uint64_t seed = 1; seed <= 16; ++seed) {
        auto fs = std::make_shared<FaultFileSystem>();
        std::set<std::string> confirmed, committed, unsure;
        std::shared_ptr<FaultFileSystem> image;
        {
            TestBroker b(storage_config(), fs);
            TestClient c(b);
            c.open_channel(1);
            c.open_channel(2);
            declare_durable(c, "q");
            c.confirm_select(1);
            c.take<ConfirmSelectOk>();
            c.tx_select(2);
            c.take<TxSelectOk>();
            std::map<std::uint64_t, std::string> by_seq;
            auto publish_round = [&](int round) {
                for (int i = 0; i < 5; ++i) {
                    std::string body = "m" + std::to_string(round) + "-" + std::to_string(i);
                    by_seq[by_seq.size() + 1] = body;
                    c.publish(1, "", "q", body, persistent());
                }
                for (auto& f : c.frames())
                    if (auto a = f.as<BasicAck>())
                        for (auto& [s, body] : by_seq)
                            if (s == a->delivery_tag || (a->multiple && s <= a->delivery_tag)) confirmed.insert(body);
            };
            auto ack_round = [&](std::set<std::string>& into) {
                for (int i = 0; i < 2; ++i) c.get(2, "q");
                auto got = c.deliveries();
                for (auto& d : got) c.ack(2, d.delivery_tag());
                c.tx_commit(2);
                bool ok = c.take<TxCommitOk>().size() == 1;
                for (auto& d : got) (ok ? into : unsure).insert(d.body);
            };
            const int rounds = static_cast<int>(3 + seed % 7);
            for (int round = 0; round < rounds; ++round) {
                publish_round(round);
                ack_round(committed);
            }
            // Stall the syncs: what follows is written but never confirmed.
            b.block_on_syncs = false;
            fs->hold_syncs(true);
            publish_round(rounds);
            std::set<std::string> late;
            ack_round(late);
            unsure.insert(late.begin(), late.end());
            image = crashed(*fs, seed % 2 ? FaultFileSystem::CrashMode::KeepPrefix
                                          : FaultFileSystem::CrashMode::LoseUnsynced,
                            seed);
            fs->hold_syncs(false);
        }
        TestBroker b(storage_config(), image);
        TestClient c(b);
        c.open_channel(1);
        auto left = drain_bodies(c, 1, "q");
        std::set<std::string> present(left.begin(), left.end());
        INFO("seed " << seed);
        CHECK(present.size() == left.size());  // nothing twice
        for (const auto& body : committed) CHECK(present.count(body) == 0);
        for (const auto& body : confirmed)
            if (!committed.count(body) && !unsure.count(body)) CHECK(present.count(body) == 1);
    }
}

TEST_CASE("under memory pressure transient messages page out too, come back in order, and leave nothing on disk",
          "[storage][paging][memory]") {
    auto fs = std::make_shared<FaultFileSystem>();
    Config config = storage_config();
    config.memory_high_watermark_bytes = 1'000'000;
    TestBroker b(config, fs);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "plain", {}, false);  // a transient queue, transient messages
    c.take<QueueDeclareOk>();
    const int n = 6'000;
    std::vector<std::byte> batch;
    for (int i = 0; i < n; ++i) {
        auto one = c.encode_publish(1, "", "plain", "t" + std::to_string(i));
        batch.insert(batch.end(), one.begin(), one.end());
    }
    c.send_raw(batch);
    Queue* q = b.queue("plain");
    CHECK(q->messages_in_memory() == n);  // no pressure: all in memory
    b.memory_used = 600'000;             // past half the watermark, below it
    b.broker->check_memory();
    b.settle();
    CHECK_FALSE(b.broker->memory_alarm());
    CHECK(q->messages_in_memory() <= 2048);
    CHECK(q->message_count() == n);
    CHECK(c.take<ConnectionBlocked>().empty());
    c.consume(1, "plain", "reader", true);
    int next = 0;
    bool in_order = true;
    while (next < n) {
        auto d = c.deliveries();
        if (d.empty()) break;
        for (auto& m : d) in_order = in_order && m.body == "t" + std::to_string(next++);
    }
    CHECK(next == n);
    CHECK(in_order);
    b.settle();
    CHECK(b.broker->default_vhost().storage()->log().stats().live_pairs == 0);
}

TEST_CASE("a clean shutdown writes a checkpoint that the next start reads instead of the segments",
          "[storage][persistence][checkpoint]") {
    auto fs = std::make_shared<FaultFileSystem>();
    const std::int64_t start = 1'700'000'000;
    {
        TestBroker b(storage_config(), fs, start);
        TestClient c(b);
        c.open_channel(1);
        declare_durable(c, "jobs", table({{"x-max-priority", std::int32_t{5}}}));
        declare_durable(c, "parked");
        declare_durable(c, "timed", table({{"x-message-ttl", std::int32_t{60'000}},
                                           {"x-dead-letter-exchange", std::string("")},
                                           {"x-dead-letter-routing-key", std::string("parked")}}));
        for (int i = 0; i < 5; ++i) c.publish(1, "", "jobs", "job-" + std::to_string(i), persistent(i == 3 ? 4 : 0));
        c.publish(1, "", "timed", "t", persistent());
        c.get(1, "jobs");
        auto d = c.deliveries();
        REQUIRE(d.size() == 1);
        CHECK(d[0].body == "job-3");
        c.reject(1, d[0].delivery_tag(), true);  // back with delivery count 1
        c.get(1, "jobs");                         // held by the client at shutdown: requeued with count 2
        c.deliveries();
        c.lose_transport();
        b.broker->shut_down_storage();
    }
    TestBroker b(storage_config(), fs, start + 30);
    TestClient c(b);
    c.open_channel(1);
    REQUIRE(b.broker->default_vhost().storage());
    CHECK(b.broker->default_vhost().storage()->recovery().checkpoint);
    c.get(1, "jobs", true);
    auto first = c.deliveries();
    REQUIRE(first.size() == 1);
    CHECK(first[0].body == "job-3");
    CHECK(count_header(first[0]) == 2);
    CHECK(drain_bodies(c, 1, "jobs") == std::vector<std::string>{"job-0", "job-1", "job-2", "job-4"});
    // The deadline kept its absolute time: 30 s of the 60 were spent down.
    b.advance(std::chrono::seconds(29));
    CHECK(b.queue("timed")->message_count() == 1);
    b.advance(std::chrono::seconds(2));
    CHECK(drain_bodies(c, 1, "parked") == std::vector<std::string>{"t"});
}
