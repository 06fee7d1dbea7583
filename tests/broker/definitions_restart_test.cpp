// Durable definitions across a restart of a broker on the same data directory: what RabbitMQ
// keeps is kept (durable exchanges, durable non-exclusive queues with their arguments, bindings
// between kept things), the rest is gone; replies to durable changes wait until stored.
#include <catch2/catch.hpp>

#include "broker/durability.hpp"
#include "support/temp_dir.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;

namespace {
Config stored(const TempDir& dir) {
    Config c;
    c.data_dir = dir.path();
    return c;
}

void declare(TestClient& c, std::string_view name, bool durable, bool exclusive = false, bool auto_delete = false,
             const FieldTable& args = {}) {
    c.declare_queue(1, name, args, durable, exclusive, auto_delete);
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
}

void declare_exchange(TestClient& c, std::string_view name, std::string_view type, bool durable) {
    ExchangeDeclare m;
    m.exchange = name;
    m.type = type;
    m.durable = durable;
    c.send(1, m);
    REQUIRE(c.take<ExchangeDeclareOk>().size() == 1);
}

// The routing keys that reach `queue` from `exchange`, by publishing and getting.
bool routes(TestClient& c, std::string_view exchange, std::string_view key, std::string_view queue) {
    c.publish(1, exchange, key, "probe");
    c.get(1, queue, true);
    auto d = c.deliveries();
    c.take<BasicGetEmpty>();
    return d.size() == 1;
}
}  // namespace

TEST_CASE("durable exchanges, queues and bindings survive a restart; transient and exclusive ones do not",
          "[storage][definitions]") {
    TempDir dir;
    {
        TestBroker b(stored(dir));
        TestClient c(b);
        c.open_channel(1);
        declare_exchange(c, "dx", "topic", true);
        declare_exchange(c, "tx", "fanout", false);
        declare(c, "dq", true, false, false, table({{"x-max-length", std::int32_t{5}}}));
        declare(c, "tq", false);
        declare(c, "eq", true, true);
        declare(c, "adq", true, false, true);
        c.bind_queue(1, "dq", "dx", "a.#");
        c.bind_queue(1, "dq", "amq.direct", "k");
        c.bind_queue(1, "tq", "dx", "t");
        c.bind_queue(1, "dq", "tx", "");
        CHECK(c.take<QueueBindOk>().size() == 4);
    }
    TestBroker b(stored(dir));
    TestClient c(b);
    c.open_channel(1);
    Queue* dq = b.queue("dq");
    REQUIRE(dq);
    CHECK(dq->flags().durable);
    REQUIRE(dq->args().max_length);
    CHECK(*dq->args().max_length == 5);
    CHECK(b.queue("adq"));
    CHECK(b.queue("adq")->flags().auto_delete);
    CHECK_FALSE(b.queue("tq"));
    CHECK_FALSE(b.queue("eq"));
    CHECK(b.broker->default_vhost().find_exchange("dx"));
    CHECK_FALSE(b.broker->default_vhost().find_exchange("tx"));
    CHECK(routes(c, "dx", "a.b", "dq"));
    CHECK(routes(c, "amq.direct", "k", "dq"));
    // The same declaration again is equivalent (arguments kept their types).
    declare(c, "dq", true, false, false, table({{"x-max-length", std::int32_t{5}}}));
}

TEST_CASE("deletes and unbinds are stored too, and a re-declared queue is a new queue", "[storage][definitions]") {
    TempDir dir;
    std::uint32_t first_id = 0;
    {
        TestBroker b(stored(dir));
        TestClient c(b);
        c.open_channel(1);
        declare_exchange(c, "x1", "direct", true);
        declare_exchange(c, "x2", "direct", true);
        declare(c, "q1", true);
        declare(c, "q2", true);
        c.bind_queue(1, "q1", "x1", "k");
        c.bind_queue(1, "q2", "x1", "k");
        c.take<QueueBindOk>();
        QueueUnbind u;
        u.queue = "q2";
        u.exchange = "x1";
        u.routing_key = "k";
        c.send(1, u);
        REQUIRE(c.take<QueueUnbindOk>().size() == 1);
        ExchangeDelete xd;
        xd.exchange = "x2";
        c.send(1, xd);
        REQUIRE(c.take<ExchangeDeleteOk>().size() == 1);
        first_id = b.queue("q1")->stored_id();
        c.delete_queue(1, "q1");
        REQUIRE(c.take<QueueDeleteOk>().size() == 1);
        declare(c, "q1", true);
        CHECK(b.queue("q1")->stored_id() != first_id);
    }
    TestBroker b(stored(dir));
    TestClient c(b);
    c.open_channel(1);
    CHECK_FALSE(b.broker->default_vhost().find_exchange("x2"));
    REQUIRE(b.queue("q1"));
    CHECK(b.queue("q1")->stored_id() != first_id);
    CHECK_FALSE(routes(c, "x1", "k", "q1"));  // the binding went with the old q1
    CHECK_FALSE(routes(c, "x1", "k", "q2"));  // unbound
}

TEST_CASE("a durable declare-ok is held until the definitions log is synced", "[storage][definitions]") {
    TempDir dir;
    TestBroker b(stored(dir));
    TestClient c(b);
    c.open_channel(1);
    Durability& d = *b.broker->durability();
    std::uint64_t appends = d.definition_appends();
    c.declare_queue(1, "held", {}, true);
    CHECK(d.definition_appends() == appends + 1);
    // settle() ran the sync and released the hold: the reply came after the record was stored.
    CHECK(c.take<QueueDeclareOk>().size() == 1);
    CHECK_FALSE(c.connection().output_held());
    // A transient declare stores nothing.
    c.declare_queue(1, "light", {}, false);
    CHECK(d.definition_appends() == appends + 1);
    CHECK(c.take<QueueDeclareOk>().size() == 1);
}

TEST_CASE("a second broker on the same data directory is refused", "[storage]") {
    TempDir dir;
    TestBroker b(stored(dir));
    CHECK_THROWS_WITH(TestBroker(stored(dir)), Catch::Contains("is in use by another Warren"));
}

TEST_CASE("the definitions log does not grow across restarts", "[storage][definitions]") {
    TempDir dir;
    {
        TestBroker b(stored(dir));
        TestClient c(b);
        c.open_channel(1);
        for (int i = 0; i < 50; ++i) {
            declare(c, "q" + std::to_string(i), true);
            c.delete_queue(1, "q" + std::to_string(i));
            c.take<QueueDeleteOk>();
        }
        declare(c, "kept", true);
    }
    for (int round = 0; round < 3; ++round) {
        TestBroker b(stored(dir));
        CHECK(b.queue("kept"));
        // A new generation holds just the snapshot.
        CHECK(b.broker->durability()->meta().log_bytes() <= 64);
    }
}

TEST_CASE("the definitions log is compacted while the broker runs: durable queues declared and deleted "
          "without end do not grow it for ever",
          "[storage][definitions]") {
    TempDir dir;
    std::uint32_t generation = 0;
    {
        TestBroker b(stored(dir));
        Durability& d = *b.broker->durability();
        d.set_definitions_compaction_min(16 * 1024);
        generation = d.meta().generation();
        TestClient c(b);
        c.open_channel(1);
        declare(c, "kept", true);
        c.bind_queue(1, "kept", "amq.direct", "k");
        REQUIRE(c.take<QueueBindOk>().size() == 1);
        for (int i = 0; i < 400; ++i) {
            const std::string name = "churn." + std::to_string(i);
            declare(c, name, true);
            c.bind_queue(1, name, "amq.direct", name);
            REQUIRE(c.take<QueueBindOk>().size() == 1);
            if (i >= 2) {
                c.delete_queue(1, "churn." + std::to_string(i - 2));
                REQUIRE(c.take<QueueDeleteOk>().size() == 1);
            }
            CHECK(d.meta().log_bytes() < 32 * 1024);  // bounded by twice the threshold
        }
        CHECK(d.meta().generation() > generation + 2);
        generation = d.meta().generation();
    }
    // Killed or stopped, the next start reads the last snapshot and the records after it.
    TestBroker b(stored(dir));
    CHECK(b.broker->durability()->meta().generation() > generation);
    CHECK(b.queue("kept"));
    CHECK(b.queue("churn.398"));
    CHECK(b.queue("churn.399"));
    CHECK_FALSE(b.queue("churn.397"));
    CHECK_FALSE(b.queue("churn.0"));
    TestClient c(b);
    c.open_channel(1);
    CHECK(routes(c, "amq.direct", "k", "kept"));
    CHECK(routes(c, "amq.direct", "churn.399", "churn.399"));
}
