// The health of a dead-letter queue (broker/dead_letter_health.cpp): counts by reason, origin
// queue and header, the oldest message's age, growth and arrival rates, and the bounded census.
#include "broker/dead_letter_health.hpp"

#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;
namespace wb = warren::broker::workbench;

namespace {

BasicProperties caused(std::string_view cause, ByteBuffer& keep, std::optional<std::string> expiration = {}) {
    BasicProperties p;
    keep = encode_table_body(table({{"error.cause", std::string(cause)}, {"tenant", std::string("acme")}}));
    p.headers = TableView::trusted(keep.span());
    p.set_flag(property_flag::headers);
    if (expiration) {
        p.expiration = *expiration;
        p.set_flag(property_flag::expiration);
    }
    return p;
}

// "orders" rejects into "dead", "payments" expires into it.
void declare(TestClient& c) {
    c.open_channel(1);
    c.declare_queue(1, "dead");
    for (const char* q : {"orders", "payments"})
        c.declare_queue(
            1, q,
            table({{"x-dead-letter-exchange", std::string("")}, {"x-dead-letter-routing-key", std::string("dead")}}));
    REQUIRE(c.take<QueueDeclareOk>().size() == 3);
}

void reject_from_orders(TestClient& c, std::string_view cause) {
    ByteBuffer keep;
    c.publish(1, "", "orders", "o", caused(cause, keep));
    c.get(1, "orders");
    auto d = c.deliveries();
    REQUIRE(d.size() == 1);
    c.reject(1, d[0].delivery_tag(), false);
}

}  // namespace

TEST_CASE("dead-letter health counts by first death reason, origin queue and error header", "[workbench][health]") {
    TestBroker b;
    TestClient c(b);
    declare(c);
    reject_from_orders(c, "Timeout");
    reject_from_orders(c, "Timeout");
    ByteBuffer keep;
    c.publish(1, "", "payments", "p", caused("CardDeclined", keep, std::string("1000")));
    b.advance(std::chrono::milliseconds(1000));
    c.publish(1, "", "dead", "plain");  // never died: counted under "" everywhere

    wb::HealthBook book;
    auto h = book.read(*b.queue("dead"), b.clock.now());
    CHECK(h.ready == 4);
    CHECK(h.counts_complete);
    CHECK(h.header == "error.cause");
    CHECK(h.by_reason == wb::LabelCounts{{"rejected", 2}, {"expired", 1}, {"", 1}});
    CHECK(h.by_origin_queue == wb::LabelCounts{{"orders", 2}, {"payments", 1}, {"", 1}});
    CHECK(h.by_header == wb::LabelCounts{{"Timeout", 2}, {"CardDeclined", 1}, {"", 1}});

    wb::HealthOptions tenant;
    tenant.header = "tenant";
    auto t = book.read(*b.queue("dead"), b.clock.now(), tenant);
    CHECK(t.by_header == wb::LabelCounts{{"acme", 3}, {"", 1}});
}

TEST_CASE("the oldest message's age is its time in the queue, and follows the head as it goes", "[workbench][health]") {
    TestBroker b;
    TestClient c(b);
    declare(c);
    wb::HealthBook book;
    CHECK_FALSE(book.read(*b.queue("dead"), b.clock.now()).oldest_age);  // empty
    reject_from_orders(c, "a");
    b.advance(std::chrono::milliseconds(30'000));
    reject_from_orders(c, "b");
    b.advance(std::chrono::milliseconds(10'000));
    auto h = book.read(*b.queue("dead"), b.clock.now());
    REQUIRE(h.oldest_age);
    CHECK(*h.oldest_age == std::chrono::seconds(40));
    c.get(1, "dead", true);  // the oldest goes
    c.deliveries();
    h = book.read(*b.queue("dead"), b.clock.now());
    REQUIRE(h.oldest_age);
    CHECK(*h.oldest_age == std::chrono::seconds(10));
}

TEST_CASE("the arrival index stays small and errs on the old side as it thins", "[workbench][health]") {
    warren::broker::ArrivalIndex index;
    warren::broker::TimePoint t0{std::chrono::hours(1)};
    for (std::uint64_t seq = 1; seq <= 1000; ++seq) index.note(seq, t0 + std::chrono::seconds(seq));
    CHECK(index.arrivals() == 1000);
    CHECK(index.resolution() > std::chrono::seconds(1));
    auto at = index.arrived_by(500);
    REQUIRE(at);
    CHECK(*at <= t0 + std::chrono::seconds(500));
    CHECK(*at >= t0 + std::chrono::seconds(500) - index.resolution());
}

TEST_CASE("growth and arrival rates come from samples taken when health is read", "[workbench][health]") {
    TestBroker b;
    TestClient c(b);
    declare(c);
    wb::HealthBook book;
    reject_from_orders(c, "x");
    auto first = book.read(*b.queue("dead"), b.clock.now());
    CHECK(first.rate_window == warren::broker::Duration::zero());
    for (int i = 0; i < 10; ++i) reject_from_orders(c, "x");
    c.get(1, "dead", true);  // one consumed: 10 in, 9 more ready
    c.deliveries();
    b.advance(std::chrono::milliseconds(10'000));
    auto h = book.read(*b.queue("dead"), b.clock.now());
    CHECK(h.rate_window == std::chrono::seconds(10));
    CHECK(h.arrivals_per_second == Approx(1.0));
    CHECK(h.growth_per_second == Approx(0.9));
}

TEST_CASE("on a long queue the counts are built over several reads, each with bounded work", "[workbench][health]") {
    TestBroker b;
    TestClient c(b);
    declare(c);
    for (int i = 0; i < 50; ++i) reject_from_orders(c, i % 5 ? "Timeout" : "Bad");
    wb::HealthBook book;
    wb::HealthOptions o;
    o.census_budget = 20;
    CHECK_FALSE(book.read(*b.queue("dead"), b.clock.now(), o).counts_complete);
    CHECK_FALSE(book.read(*b.queue("dead"), b.clock.now(), o).counts_complete);
    auto h = book.read(*b.queue("dead"), b.clock.now(), o);
    CHECK(h.counts_complete);
    CHECK(h.by_header == wb::LabelCounts{{"Timeout", 40}, {"Bad", 10}});
    // The next pass starts over; the finished counts are shown meanwhile.
    auto next = book.read(*b.queue("dead"), b.clock.now(), o);
    CHECK(next.by_reason == wb::LabelCounts{{"rejected", 50}});
    book.prune([](QueueId) { return false; });
    CHECK(book.size() == 0);
}
