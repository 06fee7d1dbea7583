// The broker's clock cache and the memory it accounts for the alarm. Broker::now() and unix_ms()
// may return a cached time only inside a TimeScope (one event-loop handler); outside one they read
// the clock.
#include <catch2/catch.hpp>

#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

TEST_CASE("outside a time scope now() reads the clock on every call", "[clock]") {
    TestBroker b;
    TimePoint first = b.broker->now();
    b.clock.advance(5s);
    CHECK(b.broker->now() == first + 5s);
}

TEST_CASE("inside a time scope now() is read once, and the next scope reads it again", "[clock]") {
    TestBroker b;
    TimePoint start = b.clock.now();
    {
        Broker::TimeScope scope(*b.broker);
        CHECK(b.broker->now() == start);
        b.clock.advance(1s);
        CHECK(b.broker->now() == start);  // one handler, one instant
        {
            Broker::TimeScope nested(*b.broker);
            CHECK(b.broker->now() == start);
        }
        CHECK(b.broker->now() == start);
    }
    CHECK(b.broker->now() == start + 1s);
    b.clock.advance(1s);
    Broker::TimeScope next(*b.broker);
    CHECK(b.broker->now() == start + 2s);
}

TEST_CASE("unix_ms() is cached like now(): once per time scope, read on every call outside one", "[clock]") {
    TestBroker b;
    const std::int64_t start = b.clock.unix_ms();
    CHECK(b.broker->unix_ms() == start);
    b.clock.advance(1s);
    CHECK(b.broker->unix_ms() == start + 1000);
    {
        Broker::TimeScope scope(*b.broker);
        CHECK(b.broker->unix_ms() == start + 1000);
        b.clock.advance(1s);
        CHECK(b.broker->unix_ms() == start + 1000);  // one handler, one instant
    }
    CHECK(b.broker->unix_ms() == start + 2000);
    b.clock.advance(1s);
    Broker::TimeScope next(*b.broker);
    CHECK(b.broker->unix_ms() == start + 3000);
}

TEST_CASE("a connection accepted after the loop was idle gets the whole handshake timeout", "[clock][connection]") {
    // The accept path used to read the time cached by the last handler, minutes old on an idle
    // broker, so the handshake timer of a new connection could fire at once.
    TestBroker b;
    b.broker->run_pending();
    (void)b.broker->now();
    b.clock.advance(60s);
    TestClient c(b, false);
    b.advance(9s);
    CHECK_FALSE(c.transport_closed());
    b.advance(1s);
    CHECK(c.transport_closed());
}

TEST_CASE("memory in use counts live messages and falls as soon as they are consumed", "[memory]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    const std::uint64_t before = b.broker->memory_in_use();
    const std::string body(10000, 'x');
    for (int i = 0; i < 10; ++i) c.publish(1, "", "q", body);
    CHECK(b.broker->memory_in_use() >= before + 10 * body.size());
    c.consume(1, "q", "t", true);
    CHECK(c.deliveries().size() == 10);
    CHECK(b.queue("q")->message_count() == 0);
    // The messages are gone; what is left over is at most some buffer growth.
    CHECK(b.broker->memory_in_use() < before + body.size());
}

TEST_CASE("memory in use counts a message once however many queues hold it", "[memory]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_exchange(1, "fan", "fanout");
    for (const char* q : {"a", "b", "c"}) {
        c.declare_queue(1, q);
        c.bind_queue(1, q, "fan", "");
    }
    const std::uint64_t before = b.broker->memory_in_use();
    c.publish(1, "fan", "", std::string(30000, 'x'));
    const std::uint64_t grown = b.broker->memory_in_use() - before;
    CHECK(grown >= 30000);
    CHECK(grown < 2 * 30000);
}
