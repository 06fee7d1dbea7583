// The message record payload and the sidecar events: round trips, and layouts that do not add up.
#include "store/message_record.hpp"

#include <catch2/catch.hpp>
#include <vector>

#include "store/buffer.hpp"
#include "store/event_record.hpp"
#include "store_support.hpp"

namespace warren::store {
namespace {

using test::as_string;

TEST_CASE("a message record payload round trips every field", "[store][record]") {
    auto m = test::message("hello, world", {{7, 100}, {9, 0xFFFFFFFFFFull}, {0xFFFFFFFF, 1}});
    m.ttl_ms = 60000;
    m.priority = 9;
    m.flags = 0xA5;
    MessageRecord r = m.record();
    std::vector<std::byte> payload(message_payload_size(r));
    CHECK(payload.size() ==
          message_fixed_size + 3 * queue_entry_size + m.exchange.size() + m.routing_key.size() + 3 + m.body.size());
    encode_message_payload(payload.data(), r);
    auto v = decode_message_payload(payload);
    REQUIRE(v);
    CHECK(v->publish_ms == m.publish_ms);
    CHECK(v->ttl_ms == 60000);
    CHECK(v->priority == 9);
    CHECK(v->flags == 0xA5);
    CHECK(v->exchange == "amq.direct");
    CHECK(v->routing_key == "key");
    CHECK(as_string(v->properties) == m.properties);
    CHECK(as_string(v->body) == "hello, world");
    REQUIRE(v->queues.size() == 3);
    CHECK(v->queues[0] == QueueEntryRef{7, 100});
    CHECK(v->queues[1] == QueueEntryRef{9, 0xFFFFFFFFFFull});
    CHECK(v->queues[2] == QueueEntryRef{0xFFFFFFFF, 1});
}

TEST_CASE("an empty message with long names round trips", "[store][record]") {
    auto m = test::message("", {{1, 1}});
    m.exchange = std::string(255, 'x');
    m.routing_key = std::string(255, 'k');
    m.properties.clear();
    std::vector<std::byte> payload(message_payload_size(m.record()));
    encode_message_payload(payload.data(), m.record());
    auto v = decode_message_payload(payload);
    REQUIRE(v);
    CHECK(v->exchange.size() == 255);
    CHECK(v->routing_key.size() == 255);
    CHECK(v->body.empty());
    CHECK(v->properties.empty());
}

TEST_CASE("a message payload whose lengths do not add up is refused", "[store][record]") {
    auto m = test::message("body bytes", {{1, 2}});
    std::vector<std::byte> payload(message_payload_size(m.record()));
    encode_message_payload(payload.data(), m.record());
    // Every prefix and one byte more.
    for (std::size_t n = 0; n < payload.size(); ++n) CHECK_FALSE(decode_message_payload({payload.data(), n}));
    payload.push_back(std::byte{0});
    CHECK_FALSE(decode_message_payload(payload));
    payload.pop_back();
    // Each length field made larger.
    for (std::size_t at : {14, 15, 16, 20, 24}) {
        auto copy = payload;
        copy[at] = std::byte(std::to_integer<int>(copy[at]) + 1);
        CHECK_FALSE(decode_message_payload(copy));
    }
}

TEST_CASE("names over 255 bytes are a caller bug", "[store][record]") {
    auto m = test::message("x", {{1, 1}});
    m.exchange = std::string(256, 'x');
    CHECK_THROWS_AS(message_payload_size(m.record()), std::length_error);
}

std::vector<Event> read_events(std::span<const std::byte> payload, std::size_t* bad = nullptr) {
    std::vector<Event> out;
    EventCursor c(payload);
    for (Event e; c.next(e);) out.push_back(e);
    if (bad) *bad = c.bad();
    return out;
}

TEST_CASE("events round trip and malformed ones are refused", "[store][record]") {
    Buffer b;
    append_event(b, {64, 3, 0, EventKind::Deliver});
    append_event(b, {64, 3, 2, EventKind::Return});
    append_event(b, {0xFFFFFFF0, 0xFFFFFFFF, 65535, EventKind::Ack});
    REQUIRE(event_count(b.span()) == 3);
    auto e = read_events(b.span());
    REQUIRE(e.size() == 3);
    CHECK(e[1].offset == 64);
    CHECK(e[1].queue_id == 3);
    CHECK(e[1].delivery_count == 2);
    CHECK(e[1].kind == EventKind::Return);
    CHECK(e[2].offset == 0xFFFFFFF0);
    CHECK(e[2].delivery_count == 65535);
    CHECK(e[2].kind == EventKind::Ack);
    CHECK(event_count(b.span().first(35)) == 0);
    CHECK(event_count({}) == 0);
    b.data()[10] = std::byte{9};  // unknown kind: that one is skipped, the others are read
    std::size_t bad = 0;
    CHECK(read_events(b.span(), &bad).size() == 2);
    CHECK(bad == 1);
}

TEST_CASE("a Hold event takes two slots and carries its deadline; a damaged one is skipped whole",
          "[store][record][retry]") {
    Buffer b;
    append_event(b, {64, 3, 1, EventKind::Deliver});
    append_event(b, {64, 3, 4, EventKind::Hold, 1'700'000'123'456});
    append_event(b, {96, 3, 0, EventKind::Ack});
    CHECK(b.size() == 4 * event_size);
    CHECK(encoded_event_size({0, 0, 0, EventKind::Hold}) == 2 * event_size);
    auto e = read_events(b.span());
    REQUIRE(e.size() == 3);
    CHECK(e[1].kind == EventKind::Hold);
    CHECK(e[1].delivery_count == 4);
    CHECK(e[1].hold_until_ms == 1'700'000'123'456);
    CHECK(e[0].hold_until_ms == -1);
    CHECK(e[2].offset == 96);

    SECTION("its second slot's reserved bytes set: the Hold is skipped, the next event is read") {
        b.data()[event_size + 20] = std::byte{1};
        std::size_t bad = 0;
        auto left = read_events(b.span(), &bad);
        REQUIRE(left.size() == 2);
        CHECK(left[1].kind == EventKind::Ack);
        CHECK(bad == 1);
    }
    SECTION("a Hold cut after its first slot is skipped") {
        std::size_t bad = 0;
        CHECK(read_events(b.span().first(2 * event_size), &bad).size() == 1);
        CHECK(bad == 1);
    }
}

}  // namespace
}  // namespace warren::store
