// The broker's clock cache: Broker::now() may return a cached time only inside a TimeScope (one
// event-loop handler); outside one it reads the clock.
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
