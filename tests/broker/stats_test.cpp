// Message statistics: the counters the hot path bumps (per channel, queue, vhost and exchange),
// each queue's count of unacknowledged deliveries, and rates from the sampler's two samples.
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "broker/vhost.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;

TEST_CASE("publish, deliver, ack, get and redeliver are counted per channel, queue and vhost", "[stats]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.consume(1, "q", "ctag");
    auto got = c.deliveries();
    REQUIRE(got.size() == 3);
    Queue& q = *b.queue("q");
    CHECK(q.unacked_count() == 3);
    c.ack(1, got[0].delivery_tag());
    c.nack(1, got[1].delivery_tag(), false, true);  // requeued: delivered again, redelivered
    auto again = c.deliveries();
    REQUIRE(again.size() == 1);
    CHECK(q.unacked_count() == 2);

    const Stats& qs = q.stats();
    CHECK(qs.value(Stat::publish) == 3);
    CHECK(qs.value(Stat::deliver) == 4);
    CHECK(qs.value(Stat::redeliver) == 1);
    CHECK(qs.value(Stat::ack) == 1);
    const Stats& ch = c.connection().channel(1)->stats();
    CHECK(ch.value(Stat::publish) == 3);
    CHECK(ch.value(Stat::deliver) == 4);
    CHECK(ch.value(Stat::ack) == 1);
    const Stats& vs = b.broker->default_vhost().stats();
    CHECK(vs.value(Stat::publish) == 3);
    CHECK(vs.value(Stat::deliver) == 4);

    c.cancel(1, "ctag");
    c.close_channel(1);  // the two unacked deliveries go back to the queue
    CHECK(q.unacked_count() == 0);
    c.open_channel(2);
    c.get(2, "q", true);
    c.get(2, "q", true);
    c.get(2, "q", true);
    CHECK(q.stats().value(Stat::get_no_ack) == 2);
    CHECK(q.stats().value(Stat::get_empty) == 1);
    CHECK(q.stats().value(Stat::redeliver) == 3);
}

TEST_CASE("unroutable publishes are returned or dropped, and confirms counted", "[stats]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.confirm_select(1);
    c.publish(1, "", "nowhere", "x", {}, true);
    c.publish(1, "", "nowhere", "y");
    c.publish(1, "amq.fanout", "", "z");
    const Stats& ch = c.connection().channel(1)->stats();
    CHECK(ch.value(Stat::publish) == 3);
    CHECK(ch.value(Stat::return_unroutable) == 1);
    CHECK(ch.value(Stat::drop_unroutable) == 2);
    CHECK(ch.value(Stat::confirm) == 3);
    ExchangeEntry* fanout = b.broker->default_vhost().find_exchange("amq.fanout");
    CHECK(fanout->stats.value(Stat::publish_in) == 1);
    CHECK(fanout->stats.value(Stat::publish_out) == 0);
}

TEST_CASE("rates come from the last two samples; queue lengths are sampled gauges", "[stats]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    b.broker->sample_stats();
    c.publish_n(1, "", "q", 10);
    b.advance(std::chrono::milliseconds(5000));
    b.broker->sample_stats();
    const Stats& qs = b.queue("q")->stats();
    CHECK(qs.rate(Stat::publish) == Approx(2.0));
    CHECK(qs.value(Stat::messages_ready) == 10);
    CHECK(qs.rate(Stat::messages_ready) == Approx(2.0));
    CHECK(b.broker->totals().value(Stat::publish) == 10);
    CHECK(b.broker->totals().value(Stat::messages) == 10);
    // Nothing happens for a window: the rate falls to 0.
    b.advance(std::chrono::milliseconds(5000));
    b.broker->sample_stats();
    CHECK(qs.rate(Stat::publish) == 0.0);
}
