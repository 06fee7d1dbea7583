// The frame writer: method frames, content headers and heartbeats, byte for byte, and what it
// writes reads back through parse_frame.
#include "protocol/frame_writer.hpp"

#include <catch2/catch.hpp>

#include "protocol/basic_properties.hpp"
#include "protocol/methods.hpp"
#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

TEST_CASE("a method frame has the header, the method payload and 0xCE", "[codec]") {
    ByteBuffer out;
    BasicAck ack;
    ack.delivery_tag = 42;
    write_method_frame(out, 1, ack);
    CHECK(hex(out) == canon("01 00 01 00 00 00 0d | 00 3c 00 50 00 00 00 00 00 00 00 2a 00 | ce"));

    auto p = parse_frame(out.span(), frame_min_size);
    REQUIRE(p.status == FrameStatus::Ready);
    CHECK(p.frame.type == FrameType::Method);
    CHECK(p.consumed == out.size());
}

TEST_CASE("frames appended to one buffer follow each other", "[codec]") {
    ByteBuffer out;
    write_method_frame(out, 0, ConnectionCloseOk{});
    write_heartbeat(out);
    CHECK(hex(out) == canon("01 00 00 00 00 00 04 00 0a 00 33 ce | 08 00 00 00 00 00 00 ce"));
}

TEST_CASE("a content header frame carries class, weight 0, body size and properties", "[codec]") {
    BasicProperties props;
    props.set_flag(property_flag::delivery_mode);
    props.delivery_mode = 2;
    ByteBuffer encoded;
    encode_properties(encoded, props);

    ByteBuffer out;
    write_content_header(out, 3, class_id::basic, 0x0102030405ull, encoded.span());
    CHECK(hex(out) == canon("02 00 03 00 00 00 0f | 00 3c | 00 00 | 00 00 00 01 02 03 04 05 | 10 00 02 | ce"));

    auto p = parse_frame(out.span(), frame_min_size);
    REQUIRE(p.status == FrameStatus::Ready);
    CHECK(p.frame.type == FrameType::Header);
    CHECK(p.frame.channel == 3);
}

TEST_CASE("a heartbeat is eight bytes on channel 0", "[codec]") {
    ByteBuffer out;
    write_heartbeat(out);
    CHECK(hex(out) == "08 00 00 00 00 00 00 ce");
}
