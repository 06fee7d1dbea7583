// The frame reader: every prefix of a frame is "need more", the declared size is checked against
// frame_max on the 7-byte header alone, and each violation carries RabbitMQ's FRAME_ERROR text.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/frame.hpp"
#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

namespace {

struct FrameCase {
    const char* what;
    FrameType type;
    std::uint16_t channel;
    const char* payload;
    const char* wire;
};

// basic.ack, its content-free cousins' frame layout, a content header with no properties,
// a body, and a heartbeat.
const FrameCase frames[] = {
    {"method frame", FrameType::Method, 1, "00 3c 00 50 00 00 00 00 00 00 00 2a 01",
     "01 00 01 00 00 00 0d | 00 3c 00 50 00 00 00 00 00 00 00 2a 01 | ce"},
    {"content header frame", FrameType::Header, 1, "00 3c 00 00 00 00 00 00 00 00 00 05 00 00",
     "02 00 01 00 00 00 0e | 00 3c 00 00 00 00 00 00 00 00 00 05 00 00 | ce"},
    {"body frame", FrameType::Body, 0x1234, "'hello'", "03 12 34 00 00 00 05 | 'hello' | ce"},
    {"empty body frame", FrameType::Body, 7, "", "03 00 07 00 00 00 00 | ce"},
    {"heartbeat frame", FrameType::Heartbeat, 0, "", "08 00 00 00 00 00 00 | ce"},
};

const std::uint32_t frame_maxes[] = {0, frame_min_size, 131072};

}  // namespace

TEST_CASE("a complete frame of each type parses in place", "[codec]") {
    for (const auto& f : frames) {
        INFO(f.what);
        Bytes wire = unhex(f.wire);
        for (std::uint32_t frame_max : frame_maxes) {
            auto p = parse_frame(wire, frame_max);
            REQUIRE(p.status == FrameStatus::Ready);
            CHECK(p.frame.type == f.type);
            CHECK(p.frame.channel == f.channel);
            CHECK(hex(p.frame.payload) == canon(f.payload));
            CHECK(p.frame.payload.data() == wire.data() + frame_header_size);  // a view, not a copy
            CHECK(p.consumed == wire.size());
        }
    }
}

TEST_CASE("every prefix of a valid frame needs more bytes", "[codec]") {
    for (const auto& f : frames) {
        INFO(f.what);
        Bytes wire = unhex(f.wire);
        for (std::uint32_t frame_max : frame_maxes) {
            for (std::size_t n = 0; n < wire.size(); ++n) {
                INFO("prefix of " << n << " bytes, frame_max " << frame_max);
                auto p = parse_frame(std::span<const std::byte>(wire.data(), n), frame_max);
                CHECK(p.status == FrameStatus::NeedMore);
                CHECK(p.consumed == 0);
            }
        }
    }
}

TEST_CASE("a frame followed by the start of the next consumes only its own bytes", "[codec]") {
    Bytes stream;
    for (const auto& f : frames) {
        Bytes one = unhex(f.wire);
        stream.insert(stream.end(), one.begin(), one.end());
    }
    std::span<const std::byte> rest(stream);
    for (const auto& f : frames) {
        INFO(f.what);
        auto p = parse_frame(rest, 131072);
        REQUIRE(p.status == FrameStatus::Ready);
        CHECK(p.frame.type == f.type);
        CHECK(hex(p.frame.payload) == canon(f.payload));
        rest = rest.subspan(p.consumed);
    }
    CHECK(rest.empty());
    CHECK(parse_frame(rest, 131072).status == FrameStatus::NeedMore);
}

TEST_CASE("frames arriving one byte at a time come out whole and in order", "[codec]") {
    Bytes stream;
    for (const auto& f : frames) {
        Bytes one = unhex(f.wire);
        stream.insert(stream.end(), one.begin(), one.end());
    }
    ByteBuffer buffer;
    std::vector<std::string> payloads;
    for (std::byte b : stream) {
        buffer.append(&b, 1);
        for (;;) {
            auto p = parse_frame(buffer.span(), frame_min_size);
            REQUIRE(p.status != FrameStatus::Error);
            if (p.status == FrameStatus::NeedMore) break;
            payloads.push_back(hex(p.frame.payload));
            buffer.consume_front(p.consumed);
        }
    }
    REQUIRE(payloads.size() == std::size(frames));
    for (std::size_t i = 0; i < payloads.size(); ++i) CHECK(payloads[i] == canon(frames[i].payload));
    CHECK(buffer.empty());
}

TEST_CASE("an oversized declared size is an error with only the 7-byte header present", "[codec]") {
    Bytes header = unhex("01 00 05 | 00 02 00 01");  // 131073 bytes declared
    auto p = parse_frame(header, 131072);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.kind == FrameErrorKind::TooLarge);
    CHECK(p.error.type == 1);
    CHECK(p.error.channel == 5);
    CHECK(p.error.size == 131073);
    CHECK(p.error.limit == 131072 - 8);
    CHECK(p.error.text() == "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,131073,131064}");

    // Six bytes of header are not enough to know.
    CHECK(parse_frame(std::span<const std::byte>(header).first(6), 131072).status == FrameStatus::NeedMore);
}

TEST_CASE("frame_max allows RabbitMQ's 8-byte fudge and no more", "[codec]") {
    // rabbit_reader: PayloadSize > FrameMax - ?EMPTY_FRAME_SIZE + ?FRAME_SIZE_FUDGE is too large,
    // so a payload of exactly frame_max bytes is still accepted (clients get this off by 8).
    Bytes at_limit = unhex("03 00 01 | 00 00 10 00");  // 4096
    CHECK(parse_frame(at_limit, 4096).status == FrameStatus::NeedMore);
    Bytes within_fudge = unhex("03 00 01 | 00 00 0f f9");  // 4089 = frame_max - 8 + 1
    CHECK(parse_frame(within_fudge, 4096).status == FrameStatus::NeedMore);
    Bytes over = unhex("03 00 01 | 00 00 10 01");  // 4097
    auto p = parse_frame(over, 4096);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.text() == "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}");

    Bytes full(7 + 4096 + 1, std::byte{'x'});
    for (std::size_t i = 0; i < 7; ++i) full[i] = at_limit[i];
    full.back() = std::byte{frame_end};
    auto whole = parse_frame(full, 4096);
    REQUIRE(whole.status == FrameStatus::Ready);
    CHECK(whole.frame.payload.size() == 4096);
}

TEST_CASE("the frame_too_large text shows no payload, whatever has been buffered", "[codec]") {
    // RabbitMQ rejects on the header alone and reports <<>> as the octets.
    Bytes wire = unhex("01 00 00 | 00 00 ff ff | 00 0a 00 0a 00 09 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    auto p = parse_frame(wire, 4096);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.payload.empty());
    CHECK(p.error.text() == "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,65535,4088}");
}

TEST_CASE("an absurd frame length is rejected at once under any frame_max", "[codec]") {
    Bytes header = unhex("01 00 01 | ff ff ff ff");
    for (std::uint32_t frame_max : {frame_min_size, 131072u, 0xfffffff0u}) {
        auto p = parse_frame(header, frame_max);
        REQUIRE(p.status == FrameStatus::Error);
        CHECK(p.error.kind == FrameErrorKind::TooLarge);
        CHECK(p.error.size == 0xffffffffu);
    }
    CHECK(parse_frame(header, frame_min_size).error.text() ==
          "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,4294967295,4088}");
    // frame_max 0 means "no limit" (before connection.tune-ok the connection must pass a real one).
    CHECK(parse_frame(header, 0).status == FrameStatus::NeedMore);
}

TEST_CASE("a wrong frame-end octet is a frame error naming the octet", "[codec]") {
    Bytes wire = unhex("01 00 01 00 00 00 02 | ab cd | 00");
    auto p = parse_frame(wire, 131072);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.kind == FrameErrorKind::BadFrameEnd);
    CHECK(p.error.end_octet == 0);
    CHECK(p.error.text() == "FRAME_ERROR - type 1, all octets = <<171,205>>: {invalid_frame_end_marker,0}");

    Bytes printable = unhex("03 00 01 00 00 00 03 | 'abc' | 41");
    CHECK(parse_frame(printable, 131072).error.text() ==
          "FRAME_ERROR - type 3, all octets = <<\"abc\">>: {invalid_frame_end_marker,65}");

    Bytes empty = unhex("08 00 00 00 00 00 00 | cf");
    CHECK(parse_frame(empty, 131072).error.text() ==
          "FRAME_ERROR - type 8, all octets = <<>>: {invalid_frame_end_marker,207}");
}

TEST_CASE("a frame error shows the first 16 octets of a longer payload", "[codec]") {
    Bytes wire = unhex("03 00 01 00 00 00 14 | 'abcdefghijklmnopqrst' | 00");
    auto p = parse_frame(wire, 131072);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.text() ==
          "FRAME_ERROR - type 3, first 16 octets = <<\"abcdefghijklmnop\">>: {invalid_frame_end_marker,0}");
}

TEST_CASE("an unknown frame type is a frame error once the frame is complete", "[codec]") {
    for (int type : {0, 4, 5, 6, 7, 9, 65, 255}) {
        INFO("type " << type);
        Bytes wire = unhex("00 00 00 00 00 00 01 | 00 | ce");
        wire[0] = std::byte(type);
        for (std::size_t n = 0; n < wire.size(); ++n)
            CHECK(parse_frame(std::span<const std::byte>(wire).first(n), 131072).status == FrameStatus::NeedMore);
        auto p = parse_frame(wire, 131072);
        REQUIRE(p.status == FrameStatus::Error);
        CHECK(p.error.kind == FrameErrorKind::UnknownType);
        CHECK(p.error.type == type);
        CHECK(p.error.text() == "FRAME_ERROR - type " + std::to_string(type) + ", all octets = <<0>>: unknown_frame");
    }
}

TEST_CASE("the frame-end octet is checked before the frame type, as RabbitMQ does", "[codec]") {
    Bytes wire = unhex("04 00 00 00 00 00 00 | 00");
    auto p = parse_frame(wire, 131072);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.kind == FrameErrorKind::BadFrameEnd);
}

TEST_CASE("the size check comes before the frame type", "[codec]") {
    Bytes wire = unhex("09 00 00 | 00 10 00 00");
    auto p = parse_frame(wire, 131072);
    REQUIRE(p.status == FrameStatus::Error);
    CHECK(p.error.kind == FrameErrorKind::TooLarge);
    CHECK(p.error.type == 9);
}

TEST_CASE("a heartbeat frame is channel 0 with an empty payload", "[codec]") {
    Bytes wire = unhex("08 00 00 00 00 00 00 ce");
    auto p = parse_frame(wire, frame_min_size);
    REQUIRE(p.status == FrameStatus::Ready);
    CHECK(p.frame.type == FrameType::Heartbeat);
    CHECK(p.frame.channel == 0);
    CHECK(p.frame.payload.empty());
    CHECK(p.consumed == 8);
}

TEST_CASE("erlang_binary renders like Erlang's ~p", "[codec]") {
    CHECK(erlang_binary({}) == "<<>>");
    CHECK(erlang_binary(unhex("'amq.gen-1'")) == "<<\"amq.gen-1\">>");
    CHECK(erlang_binary(unhex("00 01 ff")) == "<<0,1,255>>");
    CHECK(erlang_binary(unhex("'ab' 00")) == "<<97,98,0>>");
}
