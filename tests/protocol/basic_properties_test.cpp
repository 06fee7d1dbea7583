// Content-header properties: the 14 basic properties and their flag bits, byte for byte, and
// rejection of malformed property lists.
#include "protocol/basic_properties.hpp"

#include <catch2/catch.hpp>

#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

namespace {

// All 14 properties, in flag order (bit 15 down to bit 2).
constexpr const char* all_fourteen =
    "ff fc"
    "| 0a 'text/plain'"                    // content-type
    "| 04 'gzip'"                          // content-encoding
    "| 00 00 00 07 01 'h' 49 00 00 00 01"  // headers
    "| 02"                                 // delivery-mode
    "| 05"                                 // priority
    "| 02 'c1'"                            // correlation-id
    "| 01 'r'"                             // reply-to
    "| 05 '60000'"                         // expiration
    "| 02 'm1'"                            // message-id
    "| 00 00 00 00 65 53 f1 00"            // timestamp
    "| 01 't'"                             // type
    "| 05 'guest'"                         // user-id
    "| 03 'app'"                           // app-id
    "| 02 'cl'";                           // cluster-id

struct OneProperty {
    const char* name;
    std::uint16_t flag;
    const char* wire;  // flag word and value
};

const OneProperty one_each[] = {
    {"content-type", property_flag::content_type, "80 00 | 0a 'text/plain'"},
    {"content-encoding", property_flag::content_encoding, "40 00 | 04 'gzip'"},
    {"headers", property_flag::headers, "20 00 | 00 00 00 07 01 'h' 49 00 00 00 01"},
    {"delivery-mode", property_flag::delivery_mode, "10 00 | 02"},
    {"priority", property_flag::priority, "08 00 | 05"},
    {"correlation-id", property_flag::correlation_id, "04 00 | 02 'c1'"},
    {"reply-to", property_flag::reply_to, "02 00 | 01 'r'"},
    {"expiration", property_flag::expiration, "01 00 | 05 '60000'"},
    {"message-id", property_flag::message_id, "00 80 | 02 'm1'"},
    {"timestamp", property_flag::timestamp, "00 40 | 00 00 00 00 65 53 f1 00"},
    {"type", property_flag::type, "00 20 | 01 't'"},
    {"user-id", property_flag::user_id, "00 10 | 05 'guest'"},
    {"app-id", property_flag::app_id, "00 08 | 03 'app'"},
    {"cluster-id", property_flag::cluster_id, "00 04 | 02 'cl'"},
};

// Sets `flag` in `p` with the same value all_fourteen carries for it.
void set_property(BasicProperties& p, std::uint16_t flag, std::span<const std::byte> headers_body) {
    p.set_flag(flag);
    switch (flag) {
        case property_flag::content_type:
            p.content_type = "text/plain";
            break;
        case property_flag::content_encoding:
            p.content_encoding = "gzip";
            break;
        case property_flag::headers:
            p.headers = TableView::trusted(headers_body);
            break;
        case property_flag::delivery_mode:
            p.delivery_mode = 2;
            break;
        case property_flag::priority:
            p.priority = 5;
            break;
        case property_flag::correlation_id:
            p.correlation_id = "c1";
            break;
        case property_flag::reply_to:
            p.reply_to = "r";
            break;
        case property_flag::expiration:
            p.expiration = "60000";
            break;
        case property_flag::message_id:
            p.message_id = "m1";
            break;
        case property_flag::timestamp:
            p.timestamp = 1700000000;
            break;
        case property_flag::type:
            p.type = "t";
            break;
        case property_flag::user_id:
            p.user_id = "guest";
            break;
        case property_flag::app_id:
            p.app_id = "app";
            break;
        case property_flag::cluster_id:
            p.cluster_id = "cl";
            break;
    }
}

}  // namespace

TEST_CASE("all 14 properties encode in flag order behind flag word 0xFFFC", "[codec]") {
    Bytes headers_body = unhex("01 'h' 49 00 00 00 01");
    BasicProperties p;
    for (const auto& one : one_each) set_property(p, one.flag, headers_body);
    CHECK(p.flags == 0xfffc);
    ByteBuffer out;
    encode_properties(out, p);
    CHECK(hex(out) == canon(all_fourteen));
}

TEST_CASE("all 14 properties decode from their hand-checked bytes", "[codec]") {
    Bytes wire = unhex(all_fourteen);
    auto p = decode_properties(wire);
    REQUIRE(p.has_value());
    CHECK(p->flags == 0xfffc);
    CHECK(p->content_type == "text/plain");
    CHECK(p->content_encoding == "gzip");
    CHECK(p->headers.find("h")->as_integer() == 1);
    CHECK(p->delivery_mode == 2);
    CHECK(p->priority == 5);
    CHECK(p->correlation_id == "c1");
    CHECK(p->reply_to == "r");
    CHECK(p->expiration == "60000");
    CHECK(p->message_id == "m1");
    CHECK(p->timestamp == 1700000000);
    CHECK(p->type == "t");
    CHECK(p->user_id == "guest");
    CHECK(p->app_id == "app");
    CHECK(p->cluster_id == "cl");

    ByteBuffer again;
    encode_properties(again, *p);
    CHECK(hex(again) == hex(wire));
}

TEST_CASE("no properties is a zero flag word and nothing else", "[codec]") {
    ByteBuffer out;
    encode_properties(out, BasicProperties{});
    CHECK(hex(out) == "00 00");

    Bytes wire = unhex("00 00");
    auto p = decode_properties(wire);
    REQUIRE(p.has_value());
    CHECK(p->flags == 0);
    for (const auto& one : one_each) CHECK_FALSE(p->has(one.flag));
    CHECK(p->headers.empty());
    CHECK(p->content_type.empty());
}

TEST_CASE("each property has its own flag bit and nothing else moves", "[codec]") {
    Bytes headers_body = unhex("01 'h' 49 00 00 00 01");
    for (const auto& one : one_each) {
        INFO(one.name);
        BasicProperties p;
        set_property(p, one.flag, headers_body);
        ByteBuffer out;
        encode_properties(out, p);
        CHECK(hex(out) == canon(one.wire));

        Bytes wire = unhex(one.wire);
        auto d = decode_properties(wire);
        REQUIRE(d.has_value());
        CHECK(d->flags == one.flag);
        ByteBuffer again;
        encode_properties(again, *d);
        CHECK(hex(again) == hex(wire));
    }
}

TEST_CASE("a value set without its flag is not encoded", "[codec]") {
    BasicProperties p;
    p.content_type = "text/plain";
    p.priority = 9;
    ByteBuffer out;
    encode_properties(out, p);
    CHECK(hex(out) == "00 00");

    p.set_flag(property_flag::priority);
    p.set_flag(property_flag::priority, false);
    CHECK_FALSE(p.has(property_flag::priority));
}

TEST_CASE("a truncated property list is rejected at every length", "[codec]") {
    Bytes wire = unhex(all_fourteen);
    for (std::size_t n = 0; n < wire.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        CHECK_FALSE(decode_properties(std::span<const std::byte>(wire).first(n)).has_value());
    }
}

TEST_CASE("malformed property lists are rejected", "[codec]") {
    const char* cases[] = {
        "",                                  // no flag word
        "00",                                // half a flag word
        "00 00 | ff",                        // bytes left over
        "10 00 | 02 | 00",                   // one byte too many after delivery-mode
        "20 00 | 00 00 00 04 01 'h' 3f 00",  // '?' is not a field type
        "20 00 | ff ff ff ff 01 'h' 56",     // absurd headers length
        "20 00 | 00 00 00 02 01 'h'",        // header entry without a value
        "80 00 | 0b 'text/plain'",           // shortstr one byte past the end
        "00 01",                             // continuation bit with no second word
        "00 01 | 80 00",                     // a 15th property the basic class lacks
    };
    for (const char* c : cases) {
        INFO(c);
        CHECK_FALSE(decode_properties(unhex(c)).has_value());
    }
}

TEST_CASE("decoded properties are views into the content header", "[codec]") {
    Bytes wire = unhex("80 00 | 0a 'text/plain'");
    auto p = decode_properties(wire);
    REQUIRE(p.has_value());
    CHECK(reinterpret_cast<const std::byte*>(p->content_type.data()) == wire.data() + 3);
}
