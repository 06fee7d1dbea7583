// Stream queues over AMQP 0-9-1: RabbitMQ's declare and consume rules and texts (recorded from
// 3.10 by tools/conformance/probe.py, area streams), offsets of every kind, x-stream-offset on
// each delivery, prefetch credit from acks that delete nothing, filtering, retention by whole
// segments, restart, and offsets tracked by the broker for a named consumer.
#include "broker/stream.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "broker/stream_args.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;

namespace {

FieldTable stream_args_with(std::initializer_list<std::pair<std::string, FieldValue>> extra = {}) {
    FieldTable t = table({{"x-queue-type", std::string("stream")}});
    for (const auto& [k, v] : extra) t.set(k, v);
    return t;
}

void declare_stream(TestClient& c, std::string_view name,
                    std::initializer_list<std::pair<std::string, FieldValue>> extra = {}) {
    c.declare_queue(1, name, stream_args_with(extra), true);
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
}

std::int64_t offset_of(const Delivery& d) {
    FieldTable h = d.headers();
    const FieldValue* v = h.find("x-stream-offset");
    REQUIRE(v);
    REQUIRE(v->type() == field_type::int64);
    return *v->as_integer();
}

std::vector<std::int64_t> offsets(const std::vector<Delivery>& ds) {
    std::vector<std::int64_t> out;
    for (const auto& d : ds) out.push_back(offset_of(d));
    return out;
}

// Publishes n messages "m0".. as separate reads (each its own chunk).
void publish_each(TestBroker& b, TestClient& c, std::string_view q, int n, int from = 0) {
    for (int i = from; i < from + n; ++i) {
        c.publish(1, "", q, "m" + std::to_string(i));
        b.advance(std::chrono::milliseconds(1));
    }
}

std::string channel_close_text(TestClient& c, std::uint16_t ch = 1) {
    auto close = c.channel_close(ch);
    return close ? std::to_string(close->reply_code) + " " + text_of(*close) : "";
}

std::string connection_close_text(TestClient& c) {
    auto close = c.connection_close();
    return close ? std::to_string(close->reply_code) + " " + text_of(*close) : "";
}

}  // namespace

TEST_CASE("x-max-age takes RabbitMQ's <number><unit> forms", "[streams]") {
    CHECK(parse_max_age_ms("7D") == 7ull * 24 * 3600 * 1000);
    CHECK(parse_max_age_ms("12h") == 12ull * 3600 * 1000);
    CHECK(parse_max_age_ms("1Y") == 365ull * 24 * 3600 * 1000);
    CHECK(parse_max_age_ms("2M") == 60ull * 24 * 3600 * 1000);
    CHECK(parse_max_age_ms("30m") == 30ull * 60 * 1000);
    CHECK(parse_max_age_ms("5s") == 5000);
    for (std::string_view bad : {"0s", "7X", "D", "", "7", "7d", "-1h", "1h ", "99999999999999h"})
        CHECK_FALSE(parse_max_age_ms(bad));
}

TEST_CASE("a stream is declared durable, not exclusive, not auto-delete, and named, with RabbitMQ's texts",
          "[streams]") {
    TestBroker b;
    TestClient c(b);
    struct Row {
        bool durable, exclusive, auto_delete;
        std::string name, text;
    };
    const Row rows[] = {
        {false, false, false, "s",
         "406 PRECONDITION_FAILED - invalid property 'non-durable' for queue 's' in vhost '/'"},
        {true, true, false, "s",
         "406 PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue 's' in vhost '/'"},
        {true, false, true, "s", "406 PRECONDITION_FAILED - invalid property 'auto-delete' for queue 's' in vhost '/'"},
        {true, false, false, "",
         "406 PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_stream_queue"},
    };
    for (const Row& row : rows) {
        c.open_channel(1);
        c.declare_queue(1, row.name, stream_args_with(), row.durable, row.exclusive, row.auto_delete);
        CHECK(channel_close_text(c) == row.text);
        c.close_ok(1);
    }
    c.open_channel(1);
    declare_stream(c, "s");
    declare_stream(c, "s");  // equivalent
    CHECK(b.queue("s")->stream());
}

TEST_CASE("stream arguments are checked as RabbitMQ checks them", "[streams]") {
    TestBroker b;
    TestClient c(b);
    struct Row {
        std::string key;
        FieldValue value;
        std::string text;  // empty: accepted
    };
    const std::string q = "for queue 's' in vhost '/'";
    const Row rows[] = {
        {"x-max-age", std::string("7D"), ""},
        {"x-max-age", std::string("7X"), "invalid arg 'x-max-age' " + q + ": invalid_max_age"},
        {"x-max-age", std::string("0s"), "invalid arg 'x-max-age' " + q + ": invalid_max_age"},
        {"x-max-age", std::int32_t{100}, "invalid arg 'x-max-age' " + q + ": {unacceptable_type,signedint}"},
        {"x-max-length-bytes", std::int32_t{1000000}, ""},
        {"x-max-length-bytes", std::string("1000"),
         "invalid arg 'x-max-length-bytes' " + q + ": \"expected integer, got longstr\""},
        {"x-max-length-bytes", std::int32_t{-1}, "invalid arg 'x-max-length-bytes' " + q + ": {value_negative,-1}"},
        {"x-stream-max-segment-size-bytes", std::int32_t{500000}, ""},
        {"x-stream-max-segment-size-bytes", std::string("abc"),
         "invalid arg 'x-stream-max-segment-size-bytes' " + q + ": \"expected integer, got longstr\""},
        {"x-max-length", std::int32_t{10}, "invalid arg 'x-max-length' " + q + " of queue type rabbit_stream_queue"},
        {"x-message-ttl", std::int32_t{1000},
         "invalid arg 'x-message-ttl' " + q + " of queue type rabbit_stream_queue"},
        {"x-expires", std::int32_t{1000}, "invalid arg 'x-expires' " + q + " of queue type rabbit_stream_queue"},
        {"x-dead-letter-exchange", std::string("amq.direct"),
         "invalid arg 'x-dead-letter-exchange' " + q + " of queue type rabbit_stream_queue"},
        {"x-max-priority", std::int32_t{5}, "invalid arg 'x-max-priority' " + q + " of queue type rabbit_stream_queue"},
        {"x-overflow", std::string("reject-publish"),
         "invalid arg 'x-overflow' " + q + " of queue type rabbit_stream_queue"},
        {"x-single-active-consumer", true,
         "invalid arg 'x-single-active-consumer' " + q + " of queue type rabbit_stream_queue"},
        {"x-delivery-limit", std::int32_t{3},
         "invalid arg 'x-delivery-limit' " + q + " of queue type rabbit_stream_queue"},
        {"x-queue-leader-locator", std::string("balanced"), ""},
        {"x-initial-cluster-size", std::int32_t{1}, ""},
    };
    for (const Row& row : rows) {
        INFO(row.key);
        c.open_channel(1);
        c.declare_queue(1, "s", stream_args_with({{row.key, row.value}}), true);
        if (row.text.empty()) {
            CHECK(c.take<QueueDeclareOk>().size() == 1);
            c.delete_queue(1, "s");
            c.take<QueueDeleteOk>();
            c.close_channel(1);
        } else {
            CHECK(channel_close_text(c) == "406 PRECONDITION_FAILED - " + row.text);
            c.close_ok(1);
        }
    }
    c.open_channel(1);
    declare_stream(c, "s", {{"x-max-age", std::string("7D")}});
    c.declare_queue(1, "s", stream_args_with({{"x-max-age", std::string("1D")}}), true);
    CHECK(channel_close_text(c) ==
          "406 PRECONDITION_FAILED - inequivalent arg 'x-max-age' for queue 's' in vhost '/': received '1D' but "
          "current is '7D'");
}

TEST_CASE("operations a stream refuses: basic.get, queue.purge, no-ack, no prefetch, global qos, x-priority, nack",
          "[streams]") {
    TestBroker b;
    SECTION("basic.get closes the connection with 540") {
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        c.get(1, "s");
        CHECK(connection_close_text(c) ==
              "540 NOT_IMPLEMENTED - basic.get not supported by stream queues queue 's' in vhost '/'");
    }
    SECTION("queue.purge closes the connection with 540") {
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        c.purge_queue(1, "s");
        CHECK(connection_close_text(c) ==
              "540 NOT_IMPLEMENTED - queue.purge not supported by stream queues queue 's' in vhost '/'");
    }
    SECTION("a consumer without basic.qos gets 406; with global qos only, too") {
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        c.consume(1, "s", "t");
        CHECK(channel_close_text(c) ==
              "406 PRECONDITION_FAILED - consumer prefetch count is not set for 'queue 's' in vhost '/''");
        c.close_ok(1);
        c.open_channel(1);
        c.qos(1, 10, true);
        c.consume(1, "s", "t");
        CHECK(channel_close_text(c) ==
              "406 PRECONDITION_FAILED - consumer prefetch count is not set for 'queue 's' in vhost '/''");
    }
    SECTION("a no-ack consumer closes the connection with 540") {
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        c.qos(1, 10);
        c.consume(1, "s", "t", true);
        CHECK(connection_close_text(c) ==
              "540 NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues queue 's' in vhost '/'");
    }
    SECTION("x-priority is refused with 406") {
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        c.qos(1, 10);
        c.consume(1, "s", "t", false, table({{"x-priority", std::int32_t{5}}}));
        CHECK(channel_close_text(c) ==
              "406 PRECONDITION_FAILED - invalid arg 'x-priority' for queue 's' in vhost '/' of queue type "
              "rabbit_stream_queue");
    }
    SECTION("basic.nack and basic.reject close the connection with 540") {
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        publish_each(b, c, "s", 1);
        c.qos(1, 10);
        c.consume(1, "s", "t", false, table({{"x-stream-offset", std::string("first")}}));
        REQUIRE(c.deliveries().size() == 1);
        c.nack(1, 1);
        CHECK(
            connection_close_text(c) ==
            "540 NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues queue 's' in vhost '/'");
    }
}

TEST_CASE("x-stream-offset: first, last, next, numbers, timestamps and intervals", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    publish_each(b, c, "s", 3);
    b.advance(std::chrono::minutes(90));
    // Two more in one read: one chunk, which "last" starts at.
    std::vector<std::byte> batch = c.encode_publish(1, "", "s", "m3");
    std::vector<std::byte> second = c.encode_publish(1, "", "s", "m4");
    batch.insert(batch.end(), second.begin(), second.end());
    c.send_raw(batch);
    b.settle();
    c.qos(1, 100);
    struct Row {
        FieldValue offset;
        std::vector<std::int64_t> expected;
    };
    const std::int64_t start = b.clock.unix_ms() / 1000 - 60;  // 1 minute ago, in seconds
    const Row rows[] = {
        {std::string("first"), {0, 1, 2, 3, 4}},
        {std::string("last"), {3, 4}},
        {std::string("next"), {}},
        {std::int32_t{1}, {1, 2, 3, 4}},
        {std::int32_t{-1}, {0, 1, 2, 3, 4}},
        {std::int32_t{100}, {}},
        {Timestamp{0}, {0, 1, 2, 3, 4}},
        {Timestamp{static_cast<std::uint64_t>(start)}, {3, 4}},
        {Timestamp{4102444800}, {}},
        {std::string("1h"), {3, 4}},
        {std::string("2h"), {0, 1, 2, 3, 4}},
    };
    int n = 0;
    for (const Row& row : rows) {
        std::string tag = "c" + std::to_string(n++);
        c.consume(1, "s", tag, false, table({{"x-stream-offset", row.offset}}));
        c.take<BasicConsumeOk>();
        CHECK(offsets(c.deliveries()) == row.expected);
    }
    // A consumer without x-stream-offset starts at next: it sees only what comes after it.
    c.consume(1, "s", "plain", false);
    c.take<BasicConsumeOk>();
    c.ack(1, 0, true);
    c.publish(1, "", "s", "m5");
    b.settle();
    // Every consumer gets m5 at offset 5, the plain one included.
    auto live = c.deliveries();
    CHECK(live.size() == std::size(rows) + 1);
    for (const auto& d : live) CHECK(offset_of(d) == 5);
}

TEST_CASE("x-stream-offset is added to a delivery's own headers, or replaces a published one", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    BasicProperties with_headers;
    FieldTable published = table({{"ad", std::string("ad-42")}, {"n", std::int32_t{7}}});
    ByteBuffer published_bytes = encode_table_body(published);
    with_headers.headers = TableView::trusted(published_bytes.span());
    with_headers.set_flag(property_flag::headers);
    with_headers.message_id = "m-1";
    with_headers.set_flag(property_flag::message_id);
    c.publish(1, "", "s", "a", with_headers);
    FieldTable forged = table({{"x-stream-offset", std::string("forged")}});
    ByteBuffer forged_bytes = encode_table_body(forged);
    BasicProperties with_offset;
    with_offset.headers = TableView::trusted(forged_bytes.span());
    with_offset.set_flag(property_flag::headers);
    c.publish(1, "", "s", "b", with_offset);
    c.publish(1, "", "s", "c");
    b.settle();
    c.qos(1, 10);
    c.consume(1, "s", "r", false, table({{"x-stream-offset", std::string("first")}}));
    auto got = c.deliveries();
    REQUIRE(got.size() == 3);
    CHECK(offsets(got) == std::vector<std::int64_t>{0, 1, 2});
    FieldTable h = got[0].headers();
    CHECK(h.size() == 3);
    REQUIRE(h.find("ad"));
    REQUIRE(h.find("ad")->as_string());
    CHECK(*h.find("ad")->as_string() == "ad-42");
    REQUIRE(h.find("n"));
    CHECK(h.find("n")->as_integer() == std::optional<std::int64_t>(7));
    CHECK(got[0].properties().message_id == "m-1");
    CHECK(got[1].headers().size() == 1);  // the published x-stream-offset is replaced, not repeated
    CHECK(got[2].headers().size() == 1);
}

TEST_CASE("a bad x-stream-offset gets 406 with the value as RabbitMQ prints it", "[streams]") {
    TestBroker b;
    TestClient c(b);
    struct Row {
        FieldValue offset;
        std::string term;
    };
    const Row rows[] = {
        {std::string("1x"), "{longstr,<<\"1x\">>}"},
        {std::string("foo"), "{longstr,<<\"foo\">>}"},  // RabbitMQ 3.10 crashes (541)
        {true, "{bool,true}"},                          // likewise
    };
    for (const Row& row : rows) {
        c.open_channel(1);
        declare_stream(c, "s");
        c.qos(1, 10);
        c.consume(1, "s", "t", false, table({{"x-stream-offset", row.offset}}));
        CHECK(channel_close_text(c) ==
              "406 PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue 's' in vhost '/': "
              "{invalid_stream_offset_arg," +
                  row.term + "}");
        c.close_ok(1);
    }
}

TEST_CASE("prefetch bounds a stream consumer; acks give credit and delete nothing", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    publish_each(b, c, "s", 5);
    c.qos(1, 2);
    c.consume(1, "s", "a", false, table({{"x-stream-offset", std::string("first")}}));
    auto first = c.deliveries();
    REQUIRE(offsets(first) == std::vector<std::int64_t>{0, 1});
    CHECK(first[0].delivery_tag() == 1);
    CHECK_FALSE(first[0].redelivered());
    CHECK(first[0].body == "m0");
    c.ack(1, 1);
    CHECK(offsets(c.deliveries()) == std::vector<std::int64_t>{2});
    c.ack(1, 3, true);
    CHECK(offsets(c.deliveries()) == std::vector<std::int64_t>{3, 4});
    // Nothing was deleted: the queue still holds five, and a second consumer reads them all.
    CHECK(b.queue("s")->message_count() == 5);
    // declare-ok counts the messages and, as RabbitMQ's stat/1 for streams, no consumers.
    QueueDeclare passive;
    passive.queue = "s";
    passive.passive = true;
    c.send(1, passive);
    auto ok = c.take<QueueDeclareOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].message_count == 5);
    CHECK(ok[0].consumer_count == 0);
    c.qos(1, 10);
    c.consume(1, "s", "b", false, table({{"x-stream-offset", std::string("first")}}));
    CHECK(offsets(c.deliveries()) == std::vector<std::int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("a closed channel's unacked stream deliveries are not redelivered to anyone", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    publish_each(b, c, "s", 2);
    c.qos(1, 10);
    c.consume(1, "s", "a", false, table({{"x-stream-offset", std::string("first")}}));
    REQUIRE(c.deliveries().size() == 2);
    c.open_channel(2);
    c.qos(2, 10);
    c.consume(2, "s", "b", false);  // at next: nothing yet
    c.take<BasicConsumeOk>();
    c.close_channel(1);
    CHECK(c.deliveries().empty());
    CHECK(b.queue("s")->message_count() == 2);
}

TEST_CASE("message bodies are shared by every stream consumer, not copied", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    c.qos(1, 10);
    for (int i = 0; i < 3; ++i) {
        c.consume(1, "s", "c" + std::to_string(i), false);
        c.take<BasicConsumeOk>();
    }
    const std::size_t before = warren::broker::live_message_count();
    c.publish(1, "", "s", std::string(10000, 'x'));
    b.settle();
    CHECK(c.deliveries().size() == 3);
    CHECK(warren::broker::live_message_count() == before + 1);
}

TEST_CASE("filtering: x-stream-filter-value on publish, x-stream-filter and x-stream-match-unfiltered on consume",
          "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    auto with_filter = [](std::string_view value) {
        BasicProperties p;
        static std::vector<ByteBuffer> keep;
        keep.push_back(encode_table_body(table({{"x-stream-filter-value", std::string(value)}})));
        p.headers = TableView::trusted(keep.back().span());
        p.set_flag(property_flag::headers);
        return p;
    };
    c.publish(1, "", "s", "red-1", with_filter("red"));
    c.publish(1, "", "s", "blue-1", with_filter("blue"));
    c.publish(1, "", "s", "plain");
    c.publish(1, "", "s", "green-1", with_filter("green"));
    c.publish(1, "", "s", "red-2", with_filter("red"));
    b.settle();
    c.qos(1, 100);
    auto bodies = [&](std::string_view tag, const FieldTable& args) {
        FieldTable a = args;
        a.set("x-stream-offset", std::string("first"));
        c.consume(1, "s", tag, false, a);
        c.take<BasicConsumeOk>();
        std::vector<std::string> out;
        for (const auto& d : c.deliveries()) out.push_back(d.body);
        return out;
    };
    CHECK(bodies("red", table({{"x-stream-filter", std::string("red")}})) ==
          std::vector<std::string>{"red-1", "red-2"});
    FieldArray two;
    two.items.push_back(std::string("blue"));
    two.items.push_back(std::string("green"));
    CHECK(bodies("bg", table({{"x-stream-filter", two}})) == std::vector<std::string>{"blue-1", "green-1"});
    CHECK(bodies("red+plain", table({{"x-stream-filter", std::string("red")}, {"x-stream-match-unfiltered", true}})) ==
          std::vector<std::string>{"red-1", "plain", "red-2"});
    CHECK(bodies("all", {}).size() == 5);
    // x-stream-match-unfiltered without a filter filters nothing (RabbitMQ's filter_spec/1).
    CHECK(bodies("mu", table({{"x-stream-match-unfiltered", true}})).size() == 5);
}

TEST_CASE("retention by x-max-length-bytes drops whole segments from the head", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    // Segments of 300 bytes hold three 100-byte messages; keep at most 500 bytes.
    declare_stream(c, "s",
                   {{"x-stream-max-segment-size-bytes", std::int32_t{300}}, {"x-max-length-bytes", std::int32_t{500}}});
    for (int i = 0; i < 10; ++i) c.publish(1, "", "s", std::string(100, static_cast<char>('a' + i)));
    b.settle();
    Stream& s = *b.queue("s")->stream();
    // Segments [0-2] [3-5] [6-8] [9]: at each roll the oldest whole segments go while over 500.
    CHECK(s.first_offset() == 6);
    CHECK(s.next_offset() == 10);
    CHECK(s.bytes() == 400);
    c.qos(1, 100);
    c.consume(1, "s", "a", false, table({{"x-stream-offset", std::int32_t{0}}}));
    CHECK(offsets(c.deliveries()) == std::vector<std::int64_t>{6, 7, 8, 9});
}

TEST_CASE("retention by x-max-age drops segments whose newest message is older, when a segment rolls", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s", {{"x-stream-max-segment-size-bytes", std::int32_t{200}}, {"x-max-age", std::string("1h")}});
    for (int i = 0; i < 4; ++i) c.publish(1, "", "s", std::string(100, 'o'));  // segments [0-1] [2-3]
    b.settle();
    b.advance(std::chrono::minutes(61));
    for (int i = 0; i < 3; ++i) c.publish(1, "", "s", std::string(100, 'n'));  // rolls twice
    b.settle();
    Stream& s = *b.queue("s")->stream();
    CHECK(s.first_offset() == 4);
    CHECK(s.size() == 3);
}

namespace {

// Bytes in every file of the data directory: the message log's segments and sidecars, the
// definitions log, everything.
std::uint64_t disk_use(const warren::store::FaultFileSystem& fs) {
    std::uint64_t total = 0;
    for (const std::string& path : fs.paths()) total += fs.contents(path).size();
    return total;
}

// Publishes `count` persistent 1 KiB messages to stream "s", settling every 100; returns the
// largest disk use seen after a settle.
std::uint64_t publish_kib(TestBroker& b, TestClient& c, const warren::store::FaultFileSystem& fs, int count) {
    std::uint64_t peak = 0;
    for (int i = 0; i < count; ++i) {
        c.publish(1, "", "s", std::string(1024, 'r'), persistent());
        if (i % 100 == 99) {
            b.settle();
            peak = std::max(peak, disk_use(fs));
        }
    }
    b.settle();
    return std::max(peak, disk_use(fs));
}

}  // namespace

// Retention deletes whole stream segments, and the message log then deletes its own segments
// once nothing in them is kept: the data directory stays within what is kept plus one stream
// segment, with the records' overhead (under 10 % for 1 KiB bodies), plus one log segment (the
// oldest, partly dropped, goes when the last of its records does) and the settled log segments
// kept for reuse (segment_reuse). Seen: with a 2,000,000-byte limit, 500,000-byte stream segments
// and 1 MiB log segments, 20 MiB published peaks at 3.64 MB (4.33 MB with one segment kept).
TEST_CASE("retention keeps the data directory bounded: x-max-length-bytes and x-max-age", "[streams][storage]") {
    constexpr std::uint64_t log_segment = 1 << 20;  // the smallest the configuration allows
    constexpr std::uint64_t stream_segment = 500'000;
    Config config = storage_config(false);
    config.segment_size = log_segment;
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    TestBroker b(config, fs);
    TestClient c(b);
    c.open_channel(1);
    const std::uint64_t base = disk_use(*fs);
    // A record is the 1 KiB body and its header, exchange, routing key and properties.
    auto bound = [&](std::uint64_t kept_bytes) {
        return base + (kept_bytes + stream_segment) * 11 / 10 + log_segment * (1 + config.segment_reuse);
    };

    SECTION("x-max-length-bytes") {
        constexpr std::uint64_t limit = 2'000'000;
        declare_stream(c, "s",
                       {{"x-stream-max-segment-size-bytes", std::int64_t{stream_segment}},
                        {"x-max-length-bytes", std::int64_t{limit}}});
        // 20 MiB published, ten times the limit.
        const std::uint64_t peak = publish_kib(b, c, *fs, 20'000);
        Stream& s = *b.queue("s")->stream();
        INFO("disk " << disk_use(*fs) << " peak " << peak << " stream " << s.bytes() << " bound " << bound(limit));
        CHECK(s.bytes() <= limit + stream_segment);
        CHECK(s.bytes() >= limit - stream_segment);  // whole segments go: no more than needed
        CHECK(peak <= bound(limit));
        CHECK(disk_use(*fs) <= bound(limit));
    }
    SECTION("x-max-age") {
        declare_stream(
            c, "s",
            {{"x-stream-max-segment-size-bytes", std::int64_t{stream_segment}}, {"x-max-age", std::string("10s")}});
        // 1,000 KiB a (fake) second for 20 seconds: about 10 s, 10 MB, are kept.
        std::uint64_t peak = 0;
        for (int second = 0; second < 20; ++second) {
            peak = std::max(peak, publish_kib(b, c, *fs, 1000));
            b.advance(std::chrono::seconds(1));
        }
        Stream& s = *b.queue("s")->stream();
        INFO("disk " << disk_use(*fs) << " peak " << peak << " stream " << s.bytes());
        CHECK(s.bytes() <= 11 * 1'024'000 + stream_segment);
        CHECK(peak <= bound(11 * 1'024'000));
    }
}

TEST_CASE("a named consumer resumes after its last acked offset, tracked by the broker", "[streams]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "s");
    publish_each(b, c, "s", 6);
    c.qos(1, 10);
    const FieldTable named =
        table({{"x-stream-consumer-name", std::string("billing")}, {"x-stream-offset", std::string("first")}});
    c.consume(1, "s", "a", false, named);
    REQUIRE(c.deliveries().size() == 6);
    // Acks out of order: 0 and 2 acked, 1 not: everything up to 0 is processed.
    c.ack(1, 1);
    c.ack(1, 3);
    b.settle();
    CHECK(b.queue("s")->stream()->tracked_offset("billing") == 0u);
    c.ack(1, 2);
    b.settle();
    CHECK(b.queue("s")->stream()->tracked_offset("billing") == 2u);
    c.cancel(1, "a");
    c.take<BasicCancelOk>();
    // The same name resumes at 3 although it asks for "first"; another name starts at first.
    c.consume(1, "s", "b", false, named);
    c.take<BasicConsumeOk>();
    CHECK(offsets(c.deliveries()) == std::vector<std::int64_t>{3, 4, 5});
    c.consume(1, "s", "c", false,
              table({{"x-stream-consumer-name", std::string("audit")}, {"x-stream-offset", std::string("first")}}));
    c.take<BasicConsumeOk>();
    CHECK(offsets(c.deliveries()).size() == 6);
}

TEST_CASE("a stream and its tracked offsets survive a restart", "[streams][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    const FieldTable named =
        table({{"x-stream-consumer-name", std::string("billing")}, {"x-stream-offset", std::string("first")}});
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        publish_each(b, c, "s", 5);
        c.qos(1, 10);
        c.consume(1, "s", "a", false, named);
        REQUIRE(c.deliveries().size() == 5);
        c.ack(1, 3, true);
        b.advance(std::chrono::seconds(1));  // the tracked offset's write
        b.settle();
    }
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    REQUIRE(b.queue("s"));
    REQUIRE(b.queue("s")->stream());
    CHECK(b.queue("s")->message_count() == 5);
    c.qos(1, 10);
    c.consume(1, "s", "a", false, named);
    c.take<BasicConsumeOk>();
    auto resumed = c.deliveries();
    REQUIRE(offsets(resumed) == std::vector<std::int64_t>{3, 4});
    CHECK(resumed[0].body == "m3");
    c.consume(1, "s", "all", false, table({{"x-stream-offset", std::string("first")}}));
    c.take<BasicConsumeOk>();
    auto all = c.deliveries();
    REQUIRE(all.size() == 5);
    CHECK(all[0].body == "m0");
    // New messages continue the offsets.
    c.publish(1, "", "s", "m5");
    b.settle();
    auto more = c.deliveries();
    REQUIRE(more.size() == 2);
    CHECK(offset_of(more[0]) == 5);
}

TEST_CASE("a stream keeps the newest 2,048 bodies or 256 KiB of them in memory; readers read the rest from disk",
          "[streams][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    declare_stream(c, "small");
    declare_stream(c, "large");
    const std::size_t count_before = warren::broker::live_message_count();
    for (int i = 0; i < 3000; ++i) c.publish(1, "", "small", "m" + std::to_string(i));
    b.settle();
    CHECK(warren::broker::live_message_count() - count_before == 2048);

    const std::size_t bytes_before = warren::broker::live_message_bytes();
    for (int i = 0; i < 1000; ++i) c.publish(1, "", "large", std::string(1000, static_cast<char>('a' + i % 26)));
    b.settle();
    // 256 KiB of 1,000-byte bodies: 262 of the 1,000, each with its header and properties.
    const std::size_t held = warren::broker::live_message_bytes() - bytes_before;
    INFO("bytes of bodies held: " << held);
    CHECK(held >= 262 * 1000);
    CHECK(held < 263 * 1100);

    c.qos(1, 1000);
    c.consume(1, "large", "r", false, table({{"x-stream-offset", std::string("first")}}));
    c.take<BasicConsumeOk>();
    b.settle();
    auto ds = c.deliveries();
    REQUIRE(ds.size() == 1000);
    for (std::size_t i = 0; i < ds.size(); ++i) {
        REQUIRE(offset_of(ds[i]) == static_cast<std::int64_t>(i));
        REQUIRE(ds[i].body == std::string(1000, static_cast<char>('a' + i % 26)));
    }
}

TEST_CASE("readers of a backlog on disk far apart share reads of the log: one pread serves many messages",
          "[streams][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    constexpr int messages = 3000;
    {
        TestBroker b(storage_config(), fs);
        TestClient c(b);
        c.open_channel(1);
        declare_stream(c, "s");
        for (int i = 0; i < messages; ++i) c.publish(1, "", "s", std::string(1000, 'x'));
        b.settle();
    }
    // After a restart every body is on disk only.
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    const std::uint64_t reads_before = fs->reads();
    // Three readers 1,000 messages apart on one channel: one ack gives them all credit at once,
    // so the broker takes turns between three places in the log, one message each.
    c.open_channel(1);
    c.qos(1, 50);
    std::map<std::string, std::int64_t> next;  // consumer tag -> the offset it expects next
    for (int r = 0; r < 3; ++r) {
        const std::string tag = "r" + std::to_string(r);
        next[tag] = r * 1000;
        c.consume(1, "s", tag, false, table({{"x-stream-offset", std::int64_t{next[tag]}}}));
        c.take<BasicConsumeOk>();
    }
    for (bool progress = true; progress;) {
        progress = false;
        std::uint64_t last_tag = 0;
        for (const Delivery& d : c.deliveries()) {
            REQUIRE(offset_of(d) == next[d.consumer_tag()]);
            REQUIRE(d.body == std::string(1000, 'x'));
            ++next[d.consumer_tag()];
            last_tag = d.delivery_tag();
            progress = true;
        }
        if (last_tag) c.ack(1, last_tag, true);
        b.settle();
    }
    for (const auto& [tag, offset] : next) CHECK(offset == messages);  // each read to the end
    // 3 MB of messages read once, in 256 KiB preads (the log's read-ahead): about 12. Loaded one
    // at a time, each reader's turn moved the read-ahead window: 2,853 preads, about one a delivery.
    INFO("preads: " << fs->reads() - reads_before);
    CHECK(fs->reads() - reads_before < 100);
}

TEST_CASE("after a power cut every confirmed stream message is back at its offset, and offsets go on from there",
          "[streams][storage][crash]") {
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
        auto fs = std::make_shared<warren::store::FaultFileSystem>();
        std::shared_ptr<warren::store::FaultFileSystem> image;
        std::uint64_t confirmed = 0;
        {
            TestBroker b(storage_config(), fs);
            TestClient c(b);
            c.open_channel(1);
            declare_stream(c, "s");
            c.confirm_select(1);
            c.take<ConfirmSelectOk>();
            auto count_acks = [&] {
                for (auto& f : c.frames())
                    if (auto a = f.as<BasicAck>()) confirmed = std::max<std::uint64_t>(confirmed, a->delivery_tag);
            };
            for (int i = 0; i < static_cast<int>(4 + seed); ++i) c.publish(1, "", "s", "m" + std::to_string(i));
            b.settle();
            count_acks();
            // Syncs stall: what follows is written, perhaps, but never confirmed.
            b.block_on_syncs = false;
            fs->hold_syncs(true);
            for (int i = 0; i < 3; ++i) c.publish(1, "", "s", "late" + std::to_string(i));
            b.settle();
            count_acks();
            image = crashed(*fs,
                            seed % 2 ? warren::store::FaultFileSystem::CrashMode::KeepPrefix
                                     : warren::store::FaultFileSystem::CrashMode::LoseUnsynced,
                            seed);
            fs->hold_syncs(false);
        }
        INFO("seed " << seed);
        REQUIRE(confirmed == 4 + seed);
        TestBroker b(storage_config(), image);
        TestClient c(b);
        c.open_channel(1);
        c.qos(1, 100);
        c.consume(1, "s", "a", false, table({{"x-stream-offset", std::string("first")}}));
        auto got = c.deliveries();
        REQUIRE(got.size() >= confirmed);
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(offset_of(got[i]) == static_cast<std::int64_t>(i));
        for (std::uint64_t i = 0; i < confirmed; ++i) CHECK(got[i].body == "m" + std::to_string(i));
        c.publish(1, "", "s", "after");
        b.settle();
        auto after = c.deliveries();
        REQUIRE(after.size() == 1);
        CHECK(offset_of(after[0]) == static_cast<std::int64_t>(got.size()));
    }
}
