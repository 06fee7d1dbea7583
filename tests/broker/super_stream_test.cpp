// Super streams: put_super_stream declares the exchange, partitions and bindings in RabbitMQ's
// shape, routes each key to one partition by hash, grows by adding partitions at the end
// (moving only the keys they take), refuses bad counts and shrinking, and survives a restart.
#include "broker/super_stream.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "broker/exchange_entry.hpp"
#include "broker/vhost.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;

namespace {

VHost& default_vhost(TestBroker& b) {
    return *b.broker->find_vhost("/");
}

SuperStreamSpec spec(std::int64_t partitions) {
    SuperStreamSpec s;
    s.name = "clicks";
    s.partitions = partitions;
    return s;
}

// Publishes key-0 … key-(n-1) through the exchange; each key's partition, by reading each one.
// Bodies are "<prefix>key-<i>"; the map is by key.
std::map<std::string, int> partition_of_keys(TestBroker& b, TestClient& c, int partitions, int n,
                                             const std::string& prefix = "") {
    for (int i = 0; i < n; ++i) c.publish(1, "clicks", "key-" + std::to_string(i), prefix + "key-" + std::to_string(i));
    b.settle();
    std::map<std::string, int> where;
    c.qos(1, 1000);
    for (int p = 0; p < partitions; ++p) {
        c.consume(1, "clicks-" + std::to_string(p), "p" + std::to_string(p), false,
                  table({{"x-stream-offset", std::string("first")}}));
        c.take<BasicConsumeOk>();
        for (const Delivery& d : c.deliveries()) {
            if (!d.body.starts_with(prefix + "key-")) continue;
            const std::string key = d.body.substr(prefix.size());
            CHECK_FALSE(where.contains(key));  // one partition per message
            where[key] = p;
        }
        c.cancel(1, "p" + std::to_string(p));
        c.take<BasicCancelOk>();
    }
    return where;
}

}  // namespace

TEST_CASE("a super stream is an x-consistent-hash exchange over stream partitions <name>-<i>",
          "[streams][superstreams]") {
    TestBroker b;
    SuperStreamResult r = put_super_stream(default_vhost(b), spec(3));
    REQUIRE_FALSE(r.error);
    CHECK(r.created);
    CHECK(r.added == 3);
    ExchangeEntry* x = default_vhost(b).find_exchange("clicks");
    REQUIRE(x);
    CHECK(x->type == warren::exchanges::ExchangeType::ConsistentHash);
    CHECK(x->durable);
    CHECK(x->arguments.find("x-super-stream")->is<bool>());
    std::vector<std::pair<std::string, std::int64_t>> bindings;
    x->router->for_each_binding([&](const warren::exchanges::Binding& bd) {
        bindings.emplace_back(bd.routing_key, *bd.arguments.find("x-stream-partition-order")->as_integer());
    });
    CHECK(bindings == std::vector<std::pair<std::string, std::int64_t>>{{"1", 0}, {"1", 1}, {"1", 2}});
    for (int i = 0; i < 3; ++i) {
        Queue* q = b.queue("clicks-" + std::to_string(i));
        REQUIRE(q);
        CHECK(q->stream());
        CHECK(q->flags().durable);
    }
    CHECK(super_stream_partitions(default_vhost(b), "clicks") ==
          std::vector<std::string>{"clicks-0", "clicks-1", "clicks-2"});
    CHECK_FALSE(super_stream_partitions(default_vhost(b), "amq.direct"));
}

TEST_CASE("each key goes to one partition; growing moves only the keys the new partition takes",
          "[streams][superstreams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    REQUIRE_FALSE(put_super_stream(default_vhost(b), spec(3)).error);
    auto before = partition_of_keys(b, c, 3, 300);
    REQUIRE(before.size() == 300);
    std::map<int, int> spread;
    for (const auto& [k, p] : before) ++spread[p];
    for (int p = 0; p < 3; ++p) CHECK(spread[p] > 50);
    SuperStreamResult grown = put_super_stream(default_vhost(b), spec(4));
    REQUIRE_FALSE(grown.error);
    CHECK_FALSE(grown.created);
    CHECK(grown.added == 1);
    // The same keys again: each stays where it was or goes to the new partition 3.
    TestClient d(b);
    d.open_channel(1);
    for (int i = 0; i < 300; ++i) d.publish(1, "clicks", "key-" + std::to_string(i), "again-" + std::to_string(i));
    b.settle();
    d.qos(1, 1000);
    int moved = 0;
    for (int p = 0; p < 4; ++p) {
        d.consume(1, "clicks-" + std::to_string(p), "p", false, table({{"x-stream-offset", std::string("first")}}));
        d.take<BasicConsumeOk>();
        for (const Delivery& m : d.deliveries()) {
            if (!m.body.starts_with("again-")) continue;
            const std::string key = "key-" + m.body.substr(6);
            if (p == 3)
                ++moved;
            else
                CHECK(before[key] == p);
        }
        d.cancel(1, "p");
        d.take<BasicCancelOk>();
    }
    CHECK(moved > 30);  // about a quarter
    CHECK(moved < 120);
    // Running it again with the same count changes nothing.
    SuperStreamResult same = put_super_stream(default_vhost(b), spec(4));
    CHECK_FALSE(same.error);
    CHECK(same.added == 0);
}

TEST_CASE("super streams: bad partition counts, shrinking, a name taken by another exchange",
          "[streams][superstreams]") {
    TestBroker b;
    for (std::int64_t bad : {0, -1, 1001}) {
        SuperStreamResult r = put_super_stream(default_vhost(b), spec(bad));
        REQUIRE(r.error);
        CHECK(*r.error == "partitions must be an integer from 1 to 1000, got " + std::to_string(bad));
    }
    CHECK_FALSE(default_vhost(b).find_exchange("clicks"));
    REQUIRE_FALSE(put_super_stream(default_vhost(b), spec(3)).error);
    SuperStreamResult shrink = put_super_stream(default_vhost(b), spec(2));
    REQUIRE(shrink.error);
    CHECK(*shrink.error == "super stream 'clicks' has 3 partitions: partitions cannot be removed");
    SuperStreamSpec other = spec(2);
    other.name = "amq.direct";
    CHECK(put_super_stream(default_vhost(b), other).error);
    other.name = "plain";
    default_vhost(b).add_exchange("plain", warren::exchanges::ExchangeType::Direct, true, false, false, {});
    SuperStreamResult taken = put_super_stream(default_vhost(b), other);
    REQUIRE(taken.error);
    CHECK(*taken.error == "exchange 'plain' in vhost '/' exists and is not a super stream");
    // A partition queue that exists already: refused before anything is declared.
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "busy-1", {}, true);
    c.take<QueueDeclareOk>();
    other.name = "busy";
    SuperStreamResult clash = put_super_stream(default_vhost(b), other);
    REQUIRE(clash.error);
    CHECK(*clash.error == "queue 'busy-1' in vhost '/' exists already");
    CHECK_FALSE(default_vhost(b).find_exchange("busy"));
    CHECK_FALSE(b.queue("busy-0"));
    // Bad stream arguments for the partitions: refused whole.
    SuperStreamSpec aged = spec(2);
    aged.name = "aged";
    aged.queue_arguments.set("x-max-age", std::string("7X"));
    CHECK(put_super_stream(default_vhost(b), aged).error);
    CHECK_FALSE(default_vhost(b).find_exchange("aged"));
}

TEST_CASE("a super stream survives a restart with its partitions in order", "[streams][superstreams][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    std::map<std::string, int> before;
    {
        TestBroker b(storage_config(), fs);
        REQUIRE_FALSE(put_super_stream(default_vhost(b), spec(4)).error);
        b.settle();
        TestClient c(b);
        c.open_channel(1);
        before = partition_of_keys(b, c, 4, 100);
    }
    TestBroker b(storage_config(), fs);
    CHECK(super_stream_partitions(default_vhost(b), "clicks")->size() == 4);
    TestClient c(b);
    c.open_channel(1);
    // Every key still reaches the partition it reached before.
    auto after = partition_of_keys(b, c, 4, 100, "after-");
    CHECK(after == before);
    CHECK(delete_super_stream(default_vhost(b), "clicks"));
    CHECK_FALSE(b.queue("clicks-0"));
    CHECK_FALSE(default_vhost(b).find_exchange("clicks"));
}

TEST_CASE("a super stream with hash-header routes by that header", "[streams][superstreams]") {
    TestBroker b;
    SuperStreamSpec s = spec(3);
    s.hash_header = "ad";
    REQUIRE_FALSE(put_super_stream(default_vhost(b), s).error);
    TestClient c(b);
    c.open_channel(1);
    // One header value, many routing keys: one partition.
    const ByteBuffer headers = encode_table_body(table({{"ad", std::string("ad-7")}}));
    BasicProperties props;
    props.headers = TableView::trusted(headers.span());
    props.set_flag(property_flag::headers);
    for (int i = 0; i < 20; ++i) c.publish(1, "clicks", "key-" + std::to_string(i), "m", props);
    b.settle();
    int holding = 0;
    for (int p = 0; p < 3; ++p) {
        const std::size_t n = b.queue("clicks-" + std::to_string(p))->message_count();
        CHECK((n == 0 || n == 20));
        holding += n == 20;
    }
    CHECK(holding == 1);
}
