// Log lines are bounded: wire text is escaped and cut, a line never exceeds max_line_bytes,
// and lines about one client host are rate-limited, so bad clients cannot fill the disk.
#include "broker/log.hpp"

#include <catch2/catch.hpp>

#include "support/log_capture.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;
namespace wlog = warren::log;

TEST_CASE("escaped keeps printable ASCII and writes other bytes as \\xNN", "[log]") {
    CHECK(wlog::escaped("queue 'q'") == "queue 'q'");
    CHECK(wlog::escaped(std::string_view("a\nb\0c\\\xff", 7)) == "a\\x0ab\\x00c\\\\\\xff");
}

TEST_CASE("escaped cuts long text and says how long it was", "[log]") {
    std::string long_text(100000, 'z');
    std::string out = wlog::escaped(long_text, 256);
    CHECK(out.size() < 300);
    CHECK(out.starts_with(std::string(256, 'z')));
    CHECK(out.ends_with("...(100000 bytes)"));
}

TEST_CASE("peer_host drops the port", "[log]") {
    CHECK(wlog::peer_host("10.0.0.5:53422") == "10.0.0.5");
    CHECK(wlog::peer_host("[::1]:53422") == "[::1]");
    CHECK(wlog::peer_host("unknown") == "unknown");
}

TEST_CASE("a line longer than max_line_bytes is cut", "[log]") {
    LogCapture capture;
    wlog::info("{}", std::string(100000, 'y'));
    REQUIRE(capture.lines.size() == 1);
    CHECK(capture.lines[0].size() <= wlog::max_line_bytes);
    CHECK(capture.lines[0].ends_with("(100000 bytes cut)"));
}

TEST_CASE("the rate limiter lets a burst through, then one line a second, and counts the rest", "[log]") {
    wlog::RateLimiter limiter(3, 1);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
    std::uint64_t suppressed = 0;
    for (int i = 0; i < 3; ++i) CHECK(limiter.allow("10.0.0.5", t0, suppressed));
    for (int i = 0; i < 50; ++i) CHECK_FALSE(limiter.allow("10.0.0.5", t0, suppressed));
    CHECK(limiter.allow("10.0.0.6", t0, suppressed));  // another host has its own budget
    CHECK(suppressed == 0);
    CHECK_FALSE(limiter.allow("10.0.0.5", t0 + 500ms, suppressed));
    CHECK(limiter.allow("10.0.0.5", t0 + 1001ms, suppressed));
    CHECK(suppressed == 51);
    CHECK_FALSE(limiter.allow("10.0.0.5", t0 + 1001ms, suppressed));
}

TEST_CASE("the rate limiter keeps a bounded number of hosts", "[log]") {
    wlog::RateLimiter limiter(2, 1, 100);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
    std::uint64_t suppressed = 0;
    for (int i = 0; i < 10000; ++i)
        limiter.allow("10.0." + std::to_string(i), t0 + std::chrono::milliseconds(i), suppressed);
    CHECK(limiter.keys() <= 100);
}

// The issue: one malformed 130 KB frame produced a 520 KB log line (its arguments rendered as
// Erlang prints a binary). The reply text on the wire is RabbitMQ's, cut at 255 bytes.
TEST_CASE("a malformed 130 KB method frame is logged in a bounded line", "[log][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.frames();
    LogCapture capture;
    std::vector<std::byte> payload = method_payload(QueueDeclare{});
    payload.resize(130000, std::byte{7});  // arguments followed by garbage
    c.send_raw(raw_frame(1, 1, payload));
    auto close = c.connection_close();
    REQUIRE(close);
    INFO(text_of(*close));
    CHECK(close->reply_code == 501);
    CHECK(text_of(*close).starts_with("FRAME_ERROR - cannot decode <<"));
    CHECK(text_of(*close).size() == 255);
    CHECK(text_of(*close).ends_with("..."));
    CHECK_FALSE(capture.lines.empty());
    CHECK(capture.longest() < 1024);
}

// The issue: 2,000 bad connections wrote 6.3 MB of log.
TEST_CASE("two thousand bad connections from one host write a bounded log", "[log][connection]") {
    TestBroker b;
    LogCapture capture(wlog::Level::Debug);
    for (int i = 0; i < 2000; ++i) {
        TestClient c(b, false);
        c.send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(2000, 'h'));
        REQUIRE(c.transport_closed());
    }
    CHECK(capture.lines.size() < 100);
    CHECK(capture.bytes() < 20000);
}
