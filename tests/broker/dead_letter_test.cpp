// Dead-lettering through the protocol: each reason, the x-death layout RabbitMQ writes (field
// names, types and order; counts; x-first-death-* and, as DECISIONS.md says, x-last-death-*),
// dead-letter routing keys, missing DLX, the cycle rule, and expiration handling.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> keys_of(const FieldTable& t) {
    std::vector<std::string> out;
    for (auto& e : t.entries) out.push_back(e.key);
    return out;
}

const FieldArray& x_death(const FieldTable& headers) {
    const FieldValue* v = headers.find("x-death");
    REQUIRE(v);
    REQUIRE(v->get_if<FieldArray>());
    return *v->get_if<FieldArray>();
}

const FieldTable& death(const FieldTable& headers, std::size_t i) {
    const FieldArray& deaths = x_death(headers);
    REQUIRE(deaths.items.size() > i);
    REQUIRE(deaths.items[i].get_if<FieldTable>());
    return *deaths.items[i].get_if<FieldTable>();
}

FieldValue str(const char* s) { return FieldValue(std::string(s)); }

FieldValue strings(std::initializer_list<const char*> items) {
    FieldArray a;
    for (auto s : items) a.items.emplace_back(std::string(s));
    return a;
}

// The one message in `queue`, taken with basic.get (no-ack).
Delivery get_one(TestClient& c, std::string_view queue) {
    c.get(1, queue, true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    return got[0];
}

// Rejects (without requeue) the next message of `queue`.
void reject_next(TestClient& c, std::string_view queue) {
    c.get(1, queue);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.reject(1, got[0].delivery_tag(), false);
}

// "src" dead-letters to the fanout "dlx", which feeds "dlq".
void dlx_setup(TestClient& c, FieldTable src_args = {}) {
    c.open_channel(1);
    ExchangeDeclare x;
    x.exchange = "dlx";
    x.type = "fanout";
    c.send(1, x);
    c.declare_queue(1, "dlq");
    c.bind_queue(1, "dlq", "dlx", "");
    src_args.set("x-dead-letter-exchange", std::string("dlx"));
    c.declare_queue(1, "src", src_args);
    c.frames();
}

BasicProperties with_expiration(const char* ms) {
    BasicProperties p;
    p.expiration = ms;
    p.set_flag(property_flag::expiration);
    return p;
}

}  // namespace

// ---- reasons and the first x-death ----------------------------------------------------------

TEST_CASE("a rejected message is dead-lettered with RabbitMQ's first x-death entry", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c);
    c.publish(1, "", "src", "payload");
    reject_next(c, "src");
    REQUIRE(b.queue("dlq")->message_count() == 1);
    Delivery d = get_one(c, "dlq");
    CHECK(d.body == "payload");
    CHECK(d.exchange() == "dlx");
    CHECK(d.routing_key() == "src");

    FieldTable h = d.headers();
    CHECK(keys_of(h) == std::vector<std::string>{"x-death", "x-first-death-exchange", "x-first-death-queue",
                                                 "x-first-death-reason", "x-last-death-exchange",
                                                 "x-last-death-queue", "x-last-death-reason"});
    CHECK(x_death(h).items.size() == 1);
    const FieldTable& e = death(h, 0);
    CHECK(keys_of(e) == std::vector<std::string>{"count", "reason", "queue", "time", "exchange", "routing-keys"});
    CHECK(*e.find("count") == FieldValue(std::int64_t{1}));
    CHECK(*e.find("reason") == str("rejected"));
    CHECK(*e.find("queue") == str("src"));
    CHECK(*e.find("time") == FieldValue(Timestamp{static_cast<std::uint64_t>(b.clock.unix_seconds())}));
    CHECK(*e.find("exchange") == str(""));
    CHECK(*e.find("routing-keys") == strings({"src"}));
    CHECK(e.find("count")->type() == 'l');
    CHECK(e.find("time")->type() == 'T');

    CHECK(*h.find("x-first-death-reason") == str("rejected"));
    CHECK(*h.find("x-first-death-queue") == str("src"));
    CHECK(*h.find("x-first-death-exchange") == str(""));
    CHECK(*h.find("x-last-death-reason") == str("rejected"));
    CHECK(*h.find("x-last-death-queue") == str("src"));
    CHECK(*h.find("x-last-death-exchange") == str(""));
}

TEST_CASE("nack without requeue dead-letters as rejected", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c);
    c.publish_n(1, "", "src", 2);
    c.consume(1, "src", "t");
    c.deliveries();
    c.nack(1, 2, true, false);
    CHECK(b.queue("dlq")->message_count() == 2);
    CHECK(*death(get_one(c, "dlq").headers(), 0).find("reason") == str("rejected"));
}

TEST_CASE("an expired message is dead-lettered with reason expired", "[dlx][ttl]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c, table({{"x-message-ttl", std::int32_t{1000}}}));
    c.publish(1, "", "src", "x");
    b.advance(1000ms);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    FieldTable h = get_one(c, "dlq").headers();
    const FieldTable& e = death(h, 0);
    CHECK(*e.find("reason") == str("expired"));
    // A queue TTL is not an expiration property: no original-expiration.
    CHECK_FALSE(e.find("original-expiration"));
    CHECK(*h.find("x-first-death-reason") == str("expired"));
}

TEST_CASE("a message dropped by x-max-length is dead-lettered with reason maxlen", "[dlx][maxlen]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c, table({{"x-max-length", std::int32_t{1}}}));
    c.publish_n(1, "", "src", 2);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    Delivery d = get_one(c, "dlq");
    CHECK(d.body == "m1");
    CHECK(*death(d.headers(), 0).find("reason") == str("maxlen"));
}

TEST_CASE("a message past x-delivery-limit is dead-lettered with reason delivery_limit", "[dlx][delivery_limit]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c, table({{"x-delivery-limit", std::int32_t{1}}}));
    c.publish(1, "", "src", "x");
    for (int i = 0; i < 2; ++i) {
        c.get(1, "src");
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        c.nack(1, got[0].delivery_tag(), false, true);
    }
    CHECK(b.queue("src")->message_count() == 0);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    FieldTable h = get_one(c, "dlq").headers();
    CHECK(*death(h, 0).find("reason") == str("delivery_limit"));
    CHECK_FALSE(h.find("x-delivery-count"));
}

TEST_CASE("x-overflow reject-publish-dlx dead-letters the refused message", "[dlx][maxlen]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c, table({{"x-max-length", std::int32_t{1}}, {"x-overflow", "reject-publish-dlx"}}));
    c.publish_n(1, "", "src", 2);
    CHECK(b.queue("src")->message_count() == 1);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    Delivery d = get_one(c, "dlq");
    CHECK(d.body == "m2");
    CHECK(*death(d.headers(), 0).find("reason") == str("maxlen"));
}

// ---- properties -----------------------------------------------------------------------------

TEST_CASE("dead-lettering removes the expiration and records original-expiration, for every reason", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c);
    BasicProperties props = with_expiration("60000");
    props.content_type = "text/plain";
    props.set_flag(property_flag::content_type);
    c.publish(1, "", "src", "x", props);
    reject_next(c, "src");
    Delivery d = get_one(c, "dlq");
    BasicProperties got = d.properties();
    CHECK_FALSE(got.has(property_flag::expiration));
    CHECK(got.content_type == "text/plain");
    FieldTable h = d.headers();
    const FieldTable& e = death(h, 0);
    CHECK(keys_of(e) == std::vector<std::string>{"count", "reason", "queue", "time", "exchange", "routing-keys",
                                                 "original-expiration"});
    CHECK(*e.find("original-expiration") == str("60000"));
}

TEST_CASE("an expired per-message TTL is recorded as original-expiration", "[dlx][ttl]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c);
    c.publish(1, "", "src", "x", with_expiration("500"));
    b.advance(500ms);
    Delivery d = get_one(c, "dlq");
    CHECK_FALSE(d.properties().has(property_flag::expiration));
    CHECK(*death(d.headers(), 0).find("original-expiration") == str("500"));
}

TEST_CASE("existing headers are kept and the table is sorted by key", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c);
    ByteBuffer storage = encode_table_body(table({{"zz", std::int32_t{1}}, {"aa", "first"}}));
    BasicProperties props;
    props.headers = TableView::trusted(storage.span());
    props.set_flag(property_flag::headers);
    c.publish(1, "", "src", "x", props);
    reject_next(c, "src");
    FieldTable h = get_one(c, "dlq").headers();
    CHECK(keys_of(h) == std::vector<std::string>{"aa", "x-death", "x-first-death-exchange", "x-first-death-queue",
                                                 "x-first-death-reason", "x-last-death-exchange",
                                                 "x-last-death-queue", "x-last-death-reason", "zz"});
    CHECK(*h.find("aa") == str("first"));
    CHECK(*h.find("zz") == FieldValue(std::int32_t{1}));
}

// ---- routing --------------------------------------------------------------------------------

TEST_CASE("x-dead-letter-routing-key reroutes, x-death keeps the original keys and CC is dropped", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "dlq");
    c.declare_queue(1, "cc-target");
    c.bind_queue(1, "dlq", "amq.direct", "newkey");
    c.bind_queue(1, "cc-target", "amq.direct", "cc1");
    c.declare_queue(1, "src",
                    table({{"x-dead-letter-exchange", "amq.direct"}, {"x-dead-letter-routing-key", "newkey"}}));
    c.bind_queue(1, "src", "amq.direct", "orig");
    c.bind_queue(1, "src", "amq.direct", "cc1");
    c.purge_queue(1, "cc-target");
    FieldArray cc;
    cc.items.emplace_back(std::string("cc1"));
    ByteBuffer storage = encode_table_body(table({{"CC", cc}}));
    BasicProperties props;
    props.headers = TableView::trusted(storage.span());
    props.set_flag(property_flag::headers);
    c.publish(1, "amq.direct", "orig", "x", props);
    c.purge_queue(1, "cc-target");
    reject_next(c, "src");
    CHECK(b.queue("cc-target")->message_count() == 0);
    REQUIRE(b.queue("dlq")->message_count() == 1);
    Delivery d = get_one(c, "dlq");
    CHECK(d.routing_key() == "newkey");
    CHECK(d.exchange() == "amq.direct");
    FieldTable h = d.headers();
    CHECK_FALSE(h.find("CC"));
    CHECK(*death(h, 0).find("routing-keys") == strings({"orig", "cc1"}));
}

TEST_CASE("without a dead-letter routing key the message keeps its routing keys, CC included", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "dlq-orig");
    c.declare_queue(1, "dlq-cc");
    c.bind_queue(1, "dlq-orig", "amq.topic", "orig");
    c.bind_queue(1, "dlq-cc", "amq.topic", "cc1");
    c.declare_queue(1, "src", table({{"x-dead-letter-exchange", "amq.topic"}}));
    FieldArray cc;
    cc.items.emplace_back(std::string("cc1"));
    ByteBuffer storage = encode_table_body(table({{"CC", cc}}));
    BasicProperties props;
    props.headers = TableView::trusted(storage.span());
    props.set_flag(property_flag::headers);
    c.publish(1, "", "src", "x", props);
    reject_next(c, "src");
    // The message was published to "" with key "src" and CC cc1: it dead-letters with both keys.
    CHECK(b.queue("dlq-cc")->message_count() == 1);
    Delivery d = get_one(c, "dlq-cc");
    CHECK(*death(d.headers(), 0).find("routing-keys") == strings({"src", "cc1"}));
    CHECK(d.headers().find("CC"));
}

TEST_CASE("a dead-letter exchange that does not exist drops the message", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "src", table({{"x-dead-letter-exchange", "nowhere"}}));
    c.publish(1, "", "src", "x");
    reject_next(c, "src");
    CHECK(b.queue("src")->message_count() == 0);
    CHECK_FALSE(c.channel_close(1));
    CHECK(b.broker->default_vhost().dead_letters_dropped_no_exchange == 1);
}

TEST_CASE("a dead-letter exchange that routes nowhere drops the message", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "src", table({{"x-dead-letter-exchange", "amq.direct"}}));
    c.publish(1, "", "src", "x");
    reject_next(c, "src");
    CHECK(b.queue("src")->message_count() == 0);
    CHECK_FALSE(c.channel_close(1));
}

// ---- repeated deaths ------------------------------------------------------------------------

TEST_CASE("dead-lettering again through the same queue counts up and re-sorts the entry", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    // src -> dlq -> src, each by rejection, through the default exchange.
    c.declare_queue(1, "src", table({{"x-dead-letter-exchange", ""}, {"x-dead-letter-routing-key", "dlq"}}));
    c.declare_queue(1, "dlq", table({{"x-dead-letter-exchange", ""}, {"x-dead-letter-routing-key", "src"}}));
    c.publish(1, "", "src", "x");
    const auto first_time = static_cast<std::uint64_t>(b.clock.unix_seconds());
    reject_next(c, "src");
    b.advance(5000ms);
    reject_next(c, "dlq");
    b.advance(5000ms);
    reject_next(c, "src");
    REQUIRE(b.queue("dlq")->message_count() == 1);
    FieldTable h = get_one(c, "dlq").headers();
    REQUIRE(x_death(h).items.size() == 2);

    const FieldTable& latest = death(h, 0);
    CHECK(keys_of(latest) == std::vector<std::string>{"count", "exchange", "queue", "reason", "routing-keys", "time"});
    CHECK(*latest.find("queue") == str("src"));
    CHECK(*latest.find("count") == FieldValue(std::int64_t{2}));
    CHECK(*latest.find("time") == FieldValue(Timestamp{first_time}));  // left unchanged
    CHECK(*latest.find("exchange") == str(""));

    const FieldTable& older = death(h, 1);
    CHECK(keys_of(older) == std::vector<std::string>{"count", "exchange", "queue", "reason", "routing-keys", "time"});
    CHECK(*older.find("queue") == str("dlq"));
    CHECK(*older.find("count") == FieldValue(std::int64_t{1}));
    CHECK(*older.find("routing-keys") == strings({"dlq"}));

    CHECK(*h.find("x-first-death-queue") == str("src"));
    CHECK(*h.find("x-last-death-queue") == str("src"));
}

TEST_CASE("x-first-death-* stay while x-last-death-* follow the latest death", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "a", table({{"x-dead-letter-exchange", ""}, {"x-dead-letter-routing-key", "b"}}));
    c.declare_queue(1, "b", table({{"x-dead-letter-exchange", ""}, {"x-dead-letter-routing-key", "c"},
                                   {"x-message-ttl", std::int32_t{100}}}));
    c.declare_queue(1, "c");
    c.publish(1, "", "a", "x");
    reject_next(c, "a");
    b.advance(100ms);
    FieldTable h = get_one(c, "c").headers();
    CHECK(*h.find("x-first-death-queue") == str("a"));
    CHECK(*h.find("x-first-death-reason") == str("rejected"));
    CHECK(*h.find("x-last-death-queue") == str("b"));
    CHECK(*h.find("x-last-death-reason") == str("expired"));
    CHECK(*death(h, 0).find("queue") == str("b"));
    CHECK(*death(h, 1).find("queue") == str("a"));
}

// ---- cycles ---------------------------------------------------------------------------------

TEST_CASE("a message that expires back into its own queue is dropped", "[dlx][cycle]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-message-ttl", std::int32_t{100}}, {"x-dead-letter-exchange", ""},
                                   {"x-dead-letter-routing-key", "q"}}));
    c.publish(1, "", "q", "x");
    b.advance(100ms);
    CHECK(b.queue("q")->message_count() == 0);
    b.advance(1000ms);
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(b.broker->default_vhost().dead_letters_dropped_cycle == 1);
}

TEST_CASE("a fully automatic cycle through two queues is dropped when it comes round", "[dlx][cycle]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "a", table({{"x-message-ttl", std::int32_t{100}}, {"x-dead-letter-exchange", ""},
                                   {"x-dead-letter-routing-key", "b"}}));
    c.declare_queue(1, "b", table({{"x-message-ttl", std::int32_t{100}}, {"x-dead-letter-exchange", ""},
                                   {"x-dead-letter-routing-key", "a"}}));
    c.publish(1, "", "a", "x");
    b.advance(100ms);
    CHECK(b.queue("b")->message_count() == 1);
    b.advance(100ms);
    CHECK(b.queue("a")->message_count() == 0);
    CHECK(b.queue("b")->message_count() == 0);
}

TEST_CASE("a cycle with a rejection in it is not dropped", "[dlx][cycle]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "a", table({{"x-dead-letter-exchange", ""}, {"x-dead-letter-routing-key", "b"}}));
    c.declare_queue(1, "b", table({{"x-message-ttl", std::int32_t{100}}, {"x-dead-letter-exchange", ""},
                                   {"x-dead-letter-routing-key", "a"}}));
    c.publish(1, "", "a", "x");
    reject_next(c, "a");  // a -> b by rejection
    b.advance(100ms);     // b -> a by expiry: the cycle contains a rejection
    REQUIRE(b.queue("a")->message_count() == 1);
    FieldTable h = get_one(c, "a").headers();
    CHECK(*death(h, 0).find("reason") == str("expired"));
    CHECK(*death(h, 1).find("reason") == str("rejected"));
}

TEST_CASE("a rejected message may go back to its own queue, again and again", "[dlx][cycle]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", table({{"x-dead-letter-exchange", ""}, {"x-dead-letter-routing-key", "q"}}));
    c.publish(1, "", "q", "x");
    for (int i = 0; i < 3; ++i) reject_next(c, "q");
    REQUIRE(b.queue("q")->message_count() == 1);
    FieldTable h = get_one(c, "q").headers();
    REQUIRE(x_death(h).items.size() == 1);
    CHECK(*death(h, 0).find("count") == FieldValue(std::int64_t{3}));
}

TEST_CASE("a client-supplied x-death is interpreted and counted on", "[dlx]") {
    TestBroker b;
    TestClient c(b);
    dlx_setup(c);
    FieldTable previous;
    previous.set("count", std::int64_t{4});
    previous.set("exchange", std::string(""));
    previous.set("queue", std::string("src"));
    previous.set("reason", std::string("rejected"));
    previous.set("routing-keys", strings({"src"}));
    previous.set("time", Timestamp{1000});
    FieldArray deaths;
    deaths.items.emplace_back(previous);
    ByteBuffer storage = encode_table_body(table({{"x-death", deaths}}));
    BasicProperties props;
    props.headers = TableView::trusted(storage.span());
    props.set_flag(property_flag::headers);
    c.publish(1, "", "src", "x", props);
    reject_next(c, "src");
    FieldTable h = get_one(c, "dlq").headers();
    CHECK(*death(h, 0).find("count") == FieldValue(std::int64_t{5}));
    CHECK_FALSE(h.find("x-first-death-queue"));  // only written with the first x-death
}
