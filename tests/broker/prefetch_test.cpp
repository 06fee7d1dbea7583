// Prefetch through the connection core: consumers receive at most prefetch_count unacked
// deliveries; an ack frees credit; a new qos applies to existing consumers.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

TEST_CASE("prefetch 2 holds the third message until an ack", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 2);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    c.consume(1, "q");
    auto first = c.deliveries();
    REQUIRE(first.size() == 2);
    CHECK(first[0].body == "m1");
    CHECK(first[1].body == "m2");
    c.ack(1, first[0].method.as<BasicDeliver>()->delivery_tag);
    auto second = c.deliveries();
    REQUIRE(second.size() == 1);
    CHECK(second[0].body == "m3");
}

TEST_CASE("a new qos applies to existing consumers", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 5);
    c.consume(1, "q");
    CHECK(c.deliveries().size() == 1);
    c.qos(1, 3);
    CHECK(c.deliveries().size() == 2);
    c.qos(1, 0);
    CHECK(c.deliveries().size() == 2);
}

TEST_CASE("global prefetch limits the channel across consumers", "[prefetch]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.qos(1, 3, true);
    c.declare_queue(1, "a");
    c.declare_queue(1, "b");
    c.publish_n(1, "", "a", 5);
    c.publish_n(1, "", "b", 5);
    c.consume(1, "a");
    c.consume(1, "b");
    CHECK(c.deliveries().size() == 3);
    c.ack(1, 0, true);
    CHECK(c.deliveries().size() == 3);
}
