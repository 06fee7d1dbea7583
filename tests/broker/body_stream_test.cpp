// Large body frames are streamed to their channel as they arrive (and read straight into the
// message when nothing else is buffered), instead of being buffered whole first.
#include <catch2/catch.hpp>

#include <vector>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

// The frames of one publish of `body` to `queue`, body split at the connection's frame_max.
ByteBuffer publish_frames(TestClient& c, std::uint16_t channel, std::string_view queue, std::string_view body) {
    ByteBuffer out;
    auto frames = c.encode_publish(channel, "", queue, body);
    out.append(frames.data(), frames.size());
    return out;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

}  // namespace

TEST_CASE("a large message fed in uneven pieces arrives intact", "[content][stream]") {
    for (std::size_t piece : {1u, 7u, 4096u, 65536u, 100000u, 1u << 20}) {
        TestBroker b;
        TestClient c(b);
        c.open_channel(1);
        c.declare_queue(1, "q");
        std::string body = pattern(700 * 1024 + 13);
        ByteBuffer frames = publish_frames(c, 1, "q", body);
        auto bytes = frames.span();
        for (std::size_t at = 0; at < bytes.size(); at += piece)
            c.connection().feed(bytes.subspan(at, std::min(piece, bytes.size() - at)));
        b.settle();
        c.get(1, "q");
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].body.size() == body.size());
        CHECK(got[0].body == body);
        CHECK_FALSE(c.connection_close());
    }
}

TEST_CASE("messages around a streamed body keep their order and content", "[content][stream]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    ByteBuffer all;
    all.append(publish_frames(c, 1, "q", "small-1").span());
    std::string big = pattern(300 * 1024);
    all.append(publish_frames(c, 1, "q", big).span());
    all.append(publish_frames(c, 1, "q", "small-2").span());
    auto bytes = all.span();
    for (std::size_t at = 0; at < bytes.size(); at += 50000)
        c.connection().feed(bytes.subspan(at, std::min<std::size_t>(50000, bytes.size() - at)));
    b.settle();
    for (std::string_view expected : {std::string_view("small-1"), std::string_view(big), std::string_view("small-2")}) {
        c.get(1, "q");
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].body == expected);
    }
}

TEST_CASE("back-to-back large messages fed in pieces of many sizes arrive intact and in order", "[content][stream]") {
    // Bodies of 16 KiB to 93 KiB, so that pieces end mid-body, mid-header and between frames.
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    std::vector<std::string> bodies;
    ByteBuffer all;
    for (std::size_t i = 0; i < 12; ++i) {
        std::string body = pattern(16 * 1024 + i * 7 * 1024 + i);
        body[0] = static_cast<char>('A' + i);
        all.append(publish_frames(c, 1, "q", body).span());
        bodies.push_back(std::move(body));
    }
    auto bytes = all.span();
    for (std::size_t piece : {1000u, 30000u, 65536u, 200000u}) {
        for (std::size_t at = 0; at < bytes.size(); at += piece)
            c.connection().feed(bytes.subspan(at, std::min(piece, bytes.size() - at)));
        b.settle();
        for (const std::string& expected : bodies) {
            c.get(1, "q");
            auto got = c.deliveries();
            REQUIRE(got.size() == 1);
            CHECK(got[0].body.size() == expected.size());
            CHECK(got[0].body == expected);
        }
        CHECK_FALSE(c.connection_close());
    }
}

TEST_CASE("a streamed body frame with a bad frame-end octet gets connection.close 501", "[content][stream]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    std::string body = pattern(50 * 1024);
    ByteBuffer frames = publish_frames(c, 1, "q", body);
    auto bytes = frames.span();
    // Feed everything but the final frame-end octet, then a wrong one.
    c.connection().feed(bytes.first(bytes.size() - 1));
    const std::byte bad{0x00};
    c.connection().feed(std::span<const std::byte>(&bad, 1));
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 501);
    CHECK(close->reply_text.view().find("invalid_frame_end_marker,0") != std::string_view::npos);
}

TEST_CASE("a streamed body for a message over max_message_size is skipped and refused", "[content][stream]") {
    Config config;
    config.max_message_size = 100 * 1024;
    TestBroker b(config);
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    c.declare_queue(2, "q");
    ByteBuffer frames = publish_frames(c, 1, "q", pattern(200 * 1024));
    auto bytes = frames.span();
    for (std::size_t at = 0; at < bytes.size(); at += 30000)
        c.connection().feed(bytes.subspan(at, std::min<std::size_t>(30000, bytes.size() - at)));
    b.settle();
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    // The connection is in step: channel 2 still works.
    c.publish(2, "", "q", "after");
    c.get(2, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "after");
}
