// The disk alarm: below disk_free_limit a publishing connection gets connection.blocked ("low on
// disk", RabbitMQ's text) and is not read, consumers keep draining, and connection.unblocked
// follows when space comes back; with both alarms on, publishers stay blocked until both clear.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {
Config disk_config() {
    Config config;
    config.disk_free_limit = 50'000'000;
    config.memory_high_watermark_bytes = 1000;
    return config;
}
}  // namespace

TEST_CASE("below disk_free_limit publishers are blocked, consumers drain, and space coming back unblocks them",
          "[disk]") {
    TestBroker b(disk_config());
    TestClient publisher(b);
    TestClient consumer(b);
    publisher.open_channel(1);
    consumer.open_channel(1);
    publisher.declare_queue(1, "q");
    publisher.publish(1, "", "q", "before");
    b.broker->update_disk_free(49'999'999);
    b.settle();
    CHECK(b.broker->disk_alarm());
    auto blocked = publisher.take<ConnectionBlocked>();
    REQUIRE(blocked.size() == 1);
    CHECK(blocked[0].reason.view() == "low on disk");
    CHECK_FALSE(publisher.connection().wants_read());
    // A connection that never published is not blocked: it may be a consumer.
    CHECK(consumer.connection().wants_read());
    consumer.consume(1, "q", "c", true);
    CHECK(consumer.deliveries().size() == 1);
    b.broker->update_disk_free(50'000'000);
    b.settle();
    CHECK_FALSE(b.broker->disk_alarm());
    CHECK(publisher.take<ConnectionUnblocked>().size() == 1);
    CHECK(publisher.connection().wants_read());
}

TEST_CASE("with the memory and the disk alarm on, publishers stay blocked until both clear", "[disk][memory]") {
    TestBroker b(disk_config());
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "x");
    b.memory_used = 2000;
    b.broker->check_memory();
    b.broker->update_disk_free(1);
    b.settle();
    auto blocked = c.take<ConnectionBlocked>();
    REQUIRE(blocked.size() == 1);
    CHECK(blocked[0].reason.view() == "low on memory");
    b.memory_used = 10;
    b.broker->check_memory();
    b.settle();
    CHECK(c.take<ConnectionUnblocked>().empty());
    CHECK_FALSE(c.connection().wants_read());
    b.broker->update_disk_free(60'000'000);
    b.settle();
    CHECK(c.take<ConnectionUnblocked>().size() == 1);
}
