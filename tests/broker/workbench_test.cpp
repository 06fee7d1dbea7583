// The dead-letter workbench's browse, redrive and delete (broker/workbench_*.cpp), driven
// through the sans-IO broker: browsing takes nothing, a redrive moves a copy before the original
// goes, and a message that cannot go where it is sent stays.
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "broker/workbench_browse.hpp"
#include "broker/workbench_redrive.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;
namespace wb = warren::broker::workbench;

namespace {

BasicProperties with_headers(const FieldTable& h, ByteBuffer& keep, bool persistent_message = false) {
    BasicProperties p = persistent_message ? persistent() : BasicProperties{};
    keep = encode_table_body(h);
    p.headers = TableView::trusted(keep.span());
    p.set_flag(property_flag::headers);
    return p;
}

// "work" dead-letters to "dead" through the default exchange; each body is published to work
// with an error.cause header, fetched and rejected, so it lands in dead with x-death.
void dead_letter(TestClient& c, const std::vector<std::pair<std::string, std::string>>& bodies_and_causes) {
    for (const auto& [body, cause] : bodies_and_causes) {
        ByteBuffer keep;
        c.publish(1, "", "work", body, with_headers(table({{"error.cause", cause}}), keep));
        c.get(1, "work");
        auto d = c.deliveries();
        REQUIRE(d.size() == 1);
        c.reject(1, d[0].delivery_tag(), false);
    }
}

void declare_pair(TestClient& c) {
    c.open_channel(1);
    c.declare_queue(1, "dead");
    c.declare_queue(
        1, "work",
        table({{"x-dead-letter-exchange", std::string("")}, {"x-dead-letter-routing-key", std::string("dead")}}));
    REQUIRE(c.take<QueueDeclareOk>().size() == 2);
}

std::vector<std::string> bodies(const wb::BrowsePage& page) {
    std::vector<std::string> out;
    for (const auto& m : page.messages) out.push_back(m.body.text);
    return out;
}

std::string header_text(const FieldTable& t, std::string_view key) {
    const FieldValue* v = t.find(key);
    return v && v->as_string() ? *v->as_string() : std::string();
}

wb::ActionRequest all() {
    return wb::ActionRequest{};
}

}  // namespace

TEST_CASE("browsing pages through ready messages with headers and bodies and changes nothing", "[workbench]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "Timeout"}, {"b", "Bad"}, {"c", "Timeout"}, {"d", "Bad"}, {"e", "Timeout"}});
    // One message has been delivered and requeued: it is redelivered, the others are not.
    c.get(1, "dead");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    c.reject(1, got[0].delivery_tag(), true);
    Queue* dead = b.queue("dead");
    REQUIRE(dead->message_count() == 5);

    wb::BrowseOptions o;
    o.count = 2;
    auto p1 = wb::browse_ready(*dead, o);
    CHECK(bodies(p1) == std::vector<std::string>{"a", "b"});
    CHECK_FALSE(p1.next.done);
    CHECK(p1.ready == 5);
    CHECK(p1.messages[0].redelivered);
    CHECK_FALSE(p1.messages[1].redelivered);
    CHECK(header_text(p1.messages[0].headers, "x-first-death-reason") == "rejected");
    CHECK(header_text(p1.messages[0].headers, "x-first-death-queue") == "work");
    CHECK(header_text(p1.messages[0].headers, "error.cause") == "Timeout");
    CHECK(p1.messages[0].headers.find("x-death"));
    CHECK(p1.messages[0].exchange == "");
    CHECK(p1.messages[0].routing_key == "dead");
    // The cursor survives a round trip through text.
    auto cursor = wb::parse_cursor(wb::to_string(p1.next));
    REQUIRE(cursor);
    o.from = *cursor;
    auto p2 = wb::browse_ready(*dead, o);
    CHECK(bodies(p2) == std::vector<std::string>{"c", "d"});
    o.from = p2.next;
    auto p3 = wb::browse_ready(*dead, o);
    CHECK(bodies(p3) == std::vector<std::string>{"e"});
    CHECK(p3.next.done);

    // A filter shows only its matches.
    wb::BrowseOptions f;
    f.filter.header = "error.cause";
    f.filter.header_value = "Bad";
    CHECK(bodies(wb::browse_ready(*dead, f)) == std::vector<std::string>{"b", "d"});

    // Nothing moved: same count, same order, the same redelivered flags.
    CHECK(dead->message_count() == 5);
    c.consume(1, "dead", "reader", true);
    auto d = c.deliveries();
    REQUIRE(d.size() == 5);
    std::vector<std::string> order;
    for (auto& m : d) order.push_back(m.body);
    CHECK(order == std::vector<std::string>{"a", "b", "c", "d", "e"});
    CHECK(d[0].redelivered());
    for (int i = 1; i < 5; ++i) CHECK_FALSE(d[i].redelivered());
}

TEST_CASE("a body is shown as text when it is UTF-8, as hex otherwise, cut to the size asked", "[workbench]") {
    std::string text = "h\xC3\xA9llo";  // "héllo"
    auto p = wb::preview_body(std::as_bytes(std::span(text.data(), text.size())), 100);
    CHECK(p.is_text);
    CHECK(p.text == text);
    CHECK_FALSE(p.truncated);
    auto cut = wb::preview_body(std::as_bytes(std::span(text.data(), text.size())), 2);  // inside "é"
    CHECK(cut.is_text);
    CHECK(cut.text == "h");
    CHECK(cut.truncated);
    CHECK(cut.size == text.size());
    std::string binary("\x00\xff\x10", 3);
    auto h = wb::preview_body(std::as_bytes(std::span(binary.data(), binary.size())), 100);
    CHECK_FALSE(h.is_text);
    CHECK(h.text == "00ff10");
}

TEST_CASE("browsing a long durable queue reads paged-out messages without paging them in or reordering",
          "[workbench][storage][paging]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    TestBroker b(storage_config(), fs);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "long", {}, true);
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
    const int n = 3000;
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
    const std::size_t in_memory = q->messages_in_memory();
    REQUIRE(in_memory < static_cast<std::size_t>(n));
    wb::BrowseOptions o;
    o.count = 1000;
    std::vector<std::string> seen;
    bool paged_seen = false;
    int pages = 0;
    for (;; ++pages) {
        auto page = wb::browse_ready(*q, o);
        for (auto& m : page.messages) {
            seen.push_back(m.body.text);
            paged_seen = paged_seen || m.paged_out;
        }
        if (page.next.done) break;
        o.from = page.next;
        REQUIRE(pages < 100);
    }
    CHECK(paged_seen);
    bool in_order = seen.size() == static_cast<std::size_t>(n);
    for (int i = 0; in_order && i < n; ++i) in_order = seen[static_cast<std::size_t>(i)] == "m" + std::to_string(i);
    CHECK(in_order);
    CHECK(q->messages_in_memory() == in_memory);
    CHECK(q->message_count() == static_cast<std::size_t>(n));
    auto left = drain_bodies(c, 1, "long");
    CHECK(left.size() == static_cast<std::size_t>(n));
    CHECK(left.front() == "m0");
    CHECK(left.back() == "m" + std::to_string(n - 1));
}

TEST_CASE("unacked deliveries are listed with their channel and consumer, and stay with it", "[workbench]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "x"}, {"b", "y"}, {"c", "z"}});
    c.qos(1, 2);
    c.consume(1, "dead", "inspector");
    auto d = c.deliveries();
    REQUIRE(d.size() == 2);
    const Channel* ch = c.connection().channel(1);
    REQUIRE(ch);
    std::vector<const Channel*> channels{ch};
    auto page = wb::browse_unacked(*b.queue("dead"), channels, 0, 10, 100);
    REQUIRE(page.messages.size() == 2);
    CHECK(page.messages[0].consumer_tag == "inspector");
    CHECK(page.messages[0].channel == 1);
    CHECK(page.messages[0].delivery_tag == d[0].delivery_tag());
    CHECK(page.messages[0].message.body.text == "a");
    CHECK(page.messages[1].message.body.text == "b");
    auto second = wb::browse_unacked(*b.queue("dead"), channels, 1, 10, 100);
    CHECK(second.skipped == 1);
    CHECK(second.messages.size() == 1);
    // The ready one is browsed separately; nothing changed hands.
    CHECK(wb::browse_ready(*b.queue("dead"), {}).messages.size() == 1);
    c.ack(1, d[1].delivery_tag(), true);
    CHECK(c.deliveries().size() == 1);  // "c" goes out as credit returns
}

TEST_CASE("redrive sends dead letters back where they died from, x-death kept; a dry run only counts",
          "[workbench][redrive]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "Timeout"}, {"b", "Bad"}, {"c", "Timeout"}});
    Queue* dead = b.queue("dead");
    Queue* work = b.queue("work");

    wb::ActionRequest dry;
    dry.dry_run = true;
    auto counted = wb::redrive(*dead, dry, {});
    CHECK(counted.done == 3);
    CHECK(counted.failed == 0);
    CHECK(dead->message_count() == 3);
    CHECK(work->message_count() == 0);

    auto moved = wb::redrive(*dead, all(), {});
    b.settle();
    CHECK(moved.matched == 3);
    CHECK(moved.done == 3);
    CHECK(moved.failed == 0);
    CHECK(moved.next.done);
    CHECK(moved.ticket == 0);  // nothing stored here
    CHECK(dead->message_count() == 0);
    REQUIRE(work->message_count() == 3);
    c.consume(1, "work", "w", true);
    auto d = c.deliveries();
    REQUIRE(d.size() == 3);
    CHECK(d[0].body == "a");
    CHECK(d[2].body == "c");
    CHECK(d[0].routing_key() == "work");
    CHECK_FALSE(d[0].redelivered());
    FieldTable h = d[0].headers();
    CHECK(header_text(h, "x-first-death-reason") == "rejected");
    CHECK(header_text(h, "error.cause") == "Timeout");
}

TEST_CASE("redrive of selected handles or of a filter's matches to a chosen exchange and key", "[workbench][redrive]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    c.declare_queue(1, "retry");
    c.take<QueueDeclareOk>();
    c.bind_queue(1, "retry", "amq.direct", "again");
    c.take<QueueBindOk>();
    dead_letter(c, {{"a", "Timeout"}, {"b", "Bad"}, {"c", "Timeout"}, {"d", "Bad"}});
    Queue* dead = b.queue("dead");

    // One handle, as browse gave it (through its text form).
    auto page = wb::browse_ready(*dead, {});
    REQUIRE(page.messages.size() == 4);
    auto handle = wb::parse_handle(wb::to_string(page.messages[1].handle));
    REQUIRE(handle);
    wb::ActionRequest one;
    one.selection.handles = {*handle};
    auto r = wb::redrive(*dead, one, {std::string("amq.direct"), std::string("again")});
    CHECK(r.done == 1);
    CHECK(b.queue("retry")->message_count() == 1);
    CHECK(bodies(wb::browse_ready(*dead, {})) == std::vector<std::string>{"a", "c", "d"});
    // The same handle again names nothing.
    auto again = wb::redrive(*dead, one, {std::string("amq.direct"), std::string("again")});
    CHECK(again.done == 0);
    CHECK(again.failed == 1);

    // A filter: the Timeouts go to the retry queue.
    wb::ActionRequest timeouts;
    timeouts.selection.filter.header = "error.cause";
    timeouts.selection.filter.header_value = "Timeout";
    auto t = wb::redrive(*dead, timeouts, {std::string("amq.direct"), std::string("again")});
    CHECK(t.done == 2);
    CHECK(bodies(wb::browse_ready(*dead, {})) == std::vector<std::string>{"d"});
    CHECK(drain_bodies(c, 1, "retry") == std::vector<std::string>{"b", "a", "c"});
}

TEST_CASE("a redrive to an exchange the caller may not publish to leaves the message where it is",
          "[workbench][redrive]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "Timeout"}, {"b", "Bad"}});
    Queue* dead = b.queue("dead");
    std::vector<std::string> asked;
    const wb::MayPublish refuse_default = [&](std::string_view x) {
        asked.emplace_back(x);
        return !x.empty();
    };

    // The origin (the default exchange) is refused: both stay, each with the reason, dry run or not.
    wb::ActionRequest dry;
    dry.dry_run = true;
    auto counted = wb::redrive(*dead, dry, {}, refuse_default);
    CHECK(counted.done == 0);
    CHECK(counted.failed == 2);
    auto refused = wb::redrive(*dead, all(), {}, refuse_default);
    CHECK(refused.done == 0);
    CHECK(refused.failed == 2);
    REQUIRE(refused.failures.size() == 2);
    CHECK(refused.failures[0].reason.find("access refused") != std::string::npos);
    CHECK(dead->message_count() == 2);
    CHECK(b.queue("work")->message_count() == 0);
    CHECK(asked == std::vector<std::string>{"", "", "", ""});

    // A chosen exchange the caller may publish to: they move.
    c.declare_queue(1, "retry");
    c.take<QueueDeclareOk>();
    c.bind_queue(1, "retry", "amq.direct", "again");
    c.take<QueueBindOk>();
    auto moved = wb::redrive(*dead, all(), {std::string("amq.direct"), std::string("again")}, refuse_default);
    CHECK(moved.done == 2);
    CHECK(dead->message_count() == 0);
    CHECK(b.queue("retry")->message_count() == 2);
}

TEST_CASE("a redrive that cannot route a message, or that a full queue would refuse, leaves it where it is",
          "[workbench][redrive]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    c.declare_queue(1, "full",
                    table({{"x-max-length", std::int32_t{1}}, {"x-overflow", std::string("reject-publish")}}));
    c.take<QueueDeclareOk>();
    c.publish(1, "", "full", "occupant");
    dead_letter(c, {{"a", "x"}, {"b", "y"}});
    Queue* dead = b.queue("dead");

    auto unroutable = wb::redrive(*dead, all(), {std::string("amq.direct"), std::string("nowhere")});
    CHECK(unroutable.done == 0);
    CHECK(unroutable.failed == 2);
    REQUIRE_FALSE(unroutable.failures.empty());
    CHECK(unroutable.failures[0].reason.find("unroutable") != std::string::npos);

    auto missing = wb::redrive(*dead, all(), {std::string("no-such-exchange"), std::nullopt});
    CHECK(missing.failed == 2);
    CHECK(missing.failures[0].reason.find("no exchange") != std::string::npos);

    auto refused = wb::redrive(*dead, all(), {std::string(""), std::string("full")});
    CHECK(refused.failed == 2);
    CHECK(refused.failures[0].reason.find("full") != std::string::npos);
    CHECK(b.queue("full")->message_count() == 1);

    // A message that never died has no origin to go back to.
    c.publish(1, "", "dead", "never-died");
    auto origin_less = wb::redrive(*dead, all(), {});
    CHECK(origin_less.done == 2);    // the dead letters went back to work
    CHECK(origin_less.failed == 1);  // the plain message stayed
    CHECK(bodies(wb::browse_ready(*dead, {})) == std::vector<std::string>{"never-died"});
    CHECK(b.queue("work")->message_count() == 2);
}

TEST_CASE("a redrive back into the same queue meets each message once", "[workbench][redrive]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "x"}, {"b", "y"}, {"c", "z"}});
    Queue* dead = b.queue("dead");
    wb::ActionRequest r;
    r.max_messages = 2;  // two calls, the cursor and seq limit carried over
    auto first = wb::redrive(*dead, r, {std::string(""), std::string("dead")});
    CHECK(first.done == 2);
    CHECK_FALSE(first.next.done);
    r.from = first.next;
    r.seq_limit = first.seq_limit;
    auto second = wb::redrive(*dead, r, {std::string(""), std::string("dead")});
    CHECK(second.done == 1);
    CHECK(second.next.done);
    CHECK(bodies(wb::browse_ready(*dead, {})) == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("delete removes the selected messages and no others", "[workbench]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "Timeout"}, {"b", "Bad"}, {"c", "Timeout"}, {"d", "Bad"}});
    Queue* dead = b.queue("dead");
    auto page = wb::browse_ready(*dead, {});
    wb::ActionRequest one;
    one.selection.handles = {page.messages[0].handle};
    CHECK(wb::delete_messages(*dead, one).done == 1);
    wb::ActionRequest bad;
    bad.selection.filter.header = "error.cause";
    bad.selection.filter.header_value = "Bad";
    bad.dry_run = true;
    CHECK(wb::delete_messages(*dead, bad).done == 2);
    CHECK(dead->message_count() == 3);
    bad.dry_run = false;
    CHECK(wb::delete_messages(*dead, bad).done == 2);
    CHECK(drain_bodies(c, 1, "dead") == std::vector<std::string>{"c"});
}

TEST_CASE("browse pages through priority levels in delivery order one message at a time", "[workbench]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "prio", table({{"x-max-priority", std::int32_t{5}}}));
    c.take<QueueDeclareOk>();
    for (auto [body, priority] : {std::pair<const char*, int>{"low-1", 1}, {"top", 5}, {"mid", 3}, {"low-2", 1}}) {
        BasicProperties p;
        p.priority = static_cast<std::uint8_t>(priority);
        p.set_flag(property_flag::priority);
        c.publish(1, "", "prio", body, p);
    }
    Queue* q = b.queue("prio");
    wb::BrowseOptions o;
    o.count = 1;
    std::vector<std::string> seen;
    for (int i = 0; i < 10; ++i) {
        auto page = wb::browse_ready(*q, o);
        for (auto& m : page.messages) seen.push_back(m.body.text);
        if (page.next.done) break;
        o.from = *wb::parse_cursor(wb::to_string(page.next));
    }
    CHECK(seen == std::vector<std::string>{"top", "mid", "low-1", "low-2"});
    // A handle finds its message whatever its level; delete takes just that one.
    wb::ActionRequest mid;
    mid.selection.handles = {wb::MessageHandle{wb::queue_key(*q), 3}};
    CHECK(wb::find_ready(*q, mid.selection.handles[0], 100)->body.text == "mid");
    CHECK(wb::delete_messages(*q, mid).done == 1);
    CHECK(drain_bodies(c, 1, "prio") == std::vector<std::string>{"top", "low-1", "low-2"});
}

TEST_CASE("a redrive to an internal exchange leaves the messages where they are", "[workbench][redrive]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    dead_letter(c, {{"a", "x"}});
    ExchangeDeclare d;
    d.exchange = "inside";
    d.type = "direct";
    d.internal = true;
    c.send(1, d);
    c.take<ExchangeDeclareOk>();
    c.bind_queue(1, "work", "inside", "k");
    c.take<QueueBindOk>();
    auto r = wb::redrive(*b.queue("dead"), all(), {std::string("inside"), std::string("k")});
    CHECK(r.done == 0);
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0].reason.find("internal") != std::string::npos);
    CHECK(b.queue("dead")->message_count() == 1);
    CHECK(b.queue("work")->message_count() == 0);
}

TEST_CASE("queues count the messages they dead-letter, by reason, and the dead letters they receive",
          "[workbench][dead-letter]") {
    TestBroker b;
    TestClient c(b);
    declare_pair(c);
    c.declare_queue(1, "plain");  // no dead-letter exchange: a rejected message is dropped, not counted
    c.take<QueueDeclareOk>();
    dead_letter(c, {{"a", "x"}, {"b", "y"}});
    c.publish(1, "", "plain", "p");
    c.get(1, "plain");
    auto d = c.deliveries();
    REQUIRE(d.size() == 1);
    c.reject(1, d[0].delivery_tag(), false);
    const auto rejected = static_cast<std::size_t>(DeadLetterReason::Rejected);
    CHECK(b.queue("work")->dead_lettered()[rejected] == 2);
    CHECK(b.queue("work")->dead_lettered()[static_cast<std::size_t>(DeadLetterReason::Expired)] == 0);
    CHECK(b.queue("plain")->dead_lettered()[rejected] == 0);
    CHECK(b.queue("dead")->dead_letters_received() == 2);
    CHECK(b.queue("work")->dead_letters_received() == 0);
    CHECK(b.queue("work")->vhost().dead_lettered[rejected] == 2);
}
