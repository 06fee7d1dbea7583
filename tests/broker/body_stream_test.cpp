// Large body frames are streamed to their channel as they arrive (and read straight into the
// message when nothing else is buffered), instead of being buffered whole first.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "broker/channel.hpp"
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

namespace {

// Feeds `bytes` through read_space/on_read as a socket would, with every read ending at or
// before `limit` bytes (what the kernel has ready).
void read_in(Connection& conn, std::span<const std::byte> bytes, std::size_t limit) {
    while (!bytes.empty()) {
        auto space = conn.read_space(limit);
        std::size_t n = std::min({space.size(), bytes.size(), limit});
        std::memcpy(space.data(), bytes.data(), n);
        conn.on_read(n);
        bytes = bytes.subspan(n);
    }
}

BasicProperties long_properties(const std::string& text) {
    BasicProperties p;
    for (auto [flag, field] : {std::pair{property_flag::message_id, &BasicProperties::message_id},
                               std::pair{property_flag::correlation_id, &BasicProperties::correlation_id},
                               std::pair{property_flag::reply_to, &BasicProperties::reply_to},
                               std::pair{property_flag::type, &BasicProperties::type}}) {
        p.set_flag(flag);
        p.*field = text;
    }
    return p;
}

}  // namespace

TEST_CASE("after a large body, the next body is read into its message in one read", "[content][stream]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    std::string first = pattern(64 * 1024), second = pattern(64 * 1024 + 1);
    second[0] = 'Z';
    auto one = c.encode_publish(1, "", "q", first);
    auto two = c.encode_publish(1, "", "q", second);
    Connection& conn = c.connection();
    conn.feed(std::span<const std::byte>(one));
    // The next read is short: it stops at the frames before the body...
    auto space = conn.read_space(256 * 1024);
    REQUIRE(space.size() < 4096);
    std::memcpy(space.data(), two.data(), space.size());
    conn.on_read(space.size());
    // ... and the body's rest (all but its frame-end octet) goes straight into the message.
    std::size_t rest = two.size() - space.size() - 1;
    auto direct = conn.read_space(256 * 1024);
    REQUIRE(direct.size() == rest);
    std::memcpy(direct.data(), two.data() + space.size(), rest);
    conn.on_read(rest);
    conn.feed(std::span<const std::byte>(two).last(1));
    b.settle();
    for (const std::string& expected : {first, second}) {
        c.get(1, "q");
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].body == expected);
    }
    CHECK_FALSE(c.connection_close());
}

TEST_CASE("large and small messages split across reads at every boundary arrive intact", "[content][stream]") {
    // A large body with properties longer than a short read, a small message, a large body
    // over two frames (frame_max 32 KiB), then a small one: every split point of the first
    // 1,100 bytes (through the first body frame's start) and of the last 300, a stride through
    // the rest; reads of any size, and (every 7th split) reads cut at 700 bytes.
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(0, 32 * 1024, 0));
    c.open_channel(1);
    c.declare_queue(1, "q");
    std::string text(200, 'p');
    std::vector<std::string> bodies{pattern(17 * 1024), "small", pattern(60 * 1024 + 3), std::string(300, 's')};
    std::vector<std::byte> all;
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        auto frames = c.encode_publish(1, "", "q", bodies[i], i == 0 ? long_properties(text) : BasicProperties{});
        all.insert(all.end(), frames.begin(), frames.end());
    }
    std::vector<std::size_t> splits;
    for (std::size_t at = 1; at < all.size() - 300; at += at < 1100 ? 1 : 173) splits.push_back(at);
    for (std::size_t at = all.size() - 300; at < all.size(); ++at) splits.push_back(at);
    for (std::size_t limit : {std::size_t{256} * 1024, std::size_t{700}}) {
        for (std::size_t k = 0; k < splits.size(); k += limit == 700 ? 7 : 1) {
            std::size_t split = splits[k];
            std::span<const std::byte> bytes(all);
            read_in(c.connection(), bytes.first(split), limit);
            read_in(c.connection(), bytes.subspan(split), limit);
            b.settle();
            for (std::size_t i = 0; i < bodies.size(); ++i) {
                c.get(1, "q", true);
                auto got = c.deliveries();
                REQUIRE(got.size() == 1);
                if (got[0].body != bodies[i]) FAIL("message " << i << " differs, split at " << split);
                if (i == 0) CHECK(got[0].properties().message_id == text);
            }
            REQUIRE_FALSE(c.connection_close());
        }
    }
}

TEST_CASE("a connection closed while a body is read into its message", "[content][stream]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    auto frames = c.encode_publish(1, "", "q", pattern(300 * 1024));
    Connection& conn = c.connection();
    // The method and header frames and the start of the first body frame.
    std::size_t head = frames.size() - 300 * 1024 + 1000;
    conn.feed(std::span<const std::byte>(frames).first(head));
    auto space = conn.read_space(256 * 1024);
    REQUIRE(space.size() >= 64 * 1024);  // read into the message
    SECTION("by the broker") {
        // The channels are torn down at once; the read lands in memory the connection still holds.
        conn.close_with_error(amqp_error(ReplyCode::InternalError, "test"));
    }
    SECTION("by the channel") {
        conn.channel(1)->begin_close(amqp_error(ReplyCode::PreconditionFailed, "test"));
    }
    std::memset(space.data(), 'x', space.size());
    conn.on_read(space.size());
    conn.feed(std::span<const std::byte>(frames).subspan(head + space.size()));
    b.settle();
}

TEST_CASE("after large bodies, small messages are read in large reads again", "[content][stream]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    Connection& conn = c.connection();
    auto big = c.encode_publish(1, "", "q", pattern(64 * 1024));
    conn.feed(std::span<const std::byte>(big));
    REQUIRE(conn.read_space(256 * 1024).size() < 4096);  // short reads while bodies are large
    std::vector<std::byte> small;
    for (int i = 0; i < 200; ++i) {
        auto frames = c.encode_publish(1, "", "q", "small " + std::to_string(i));
        small.insert(small.end(), frames.begin(), frames.end());
    }
    conn.feed(std::span<const std::byte>(small));
    CHECK(conn.read_space(256 * 1024).size() >= 64 * 1024);
    b.settle();
    c.get(1, "q", true);
    c.deliveries();
    for (int i = 0; i < 200; ++i) {
        c.get(1, "q", true);
        auto got = c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].body == "small " + std::to_string(i));
    }
}
