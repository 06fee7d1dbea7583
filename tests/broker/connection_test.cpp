// The connection core through its bytes: protocol header, handshake, frame errors, channel
// bookkeeping, heartbeats and closing. Expected codes and texts are RabbitMQ 3.10's
// (docs/rabbitmq-reference.md) unless a test says otherwise.
#include <catch2/catch.hpp>

#include "broker/channel.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

std::string header_reply(TestClient& c) {
    for (auto& f : c.frames())
        if (f.channel == 0xFFFF) return std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    return {};
}

// Expects a connection.close with this code, text and class/method, then completes the close.
void expect_connection_close(TestClient& c, std::uint16_t code, std::string_view text, MethodId method = {}) {
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == code);
    CHECK(text_of(*close) == text);
    CHECK(close->class_id == method.class_id);
    CHECK(close->method_id == method.method_id);
    CHECK_FALSE(c.transport_closed());
    c.send(0, ConnectionCloseOk{});
    CHECK(c.transport_closed());
}

}  // namespace

// ---- protocol header ------------------------------------------------------------------------

TEST_CASE("a wrong protocol header is answered with AMQP 0-9-1's header and the transport closes",
          "[connection]") {
    const std::string_view wrong = GENERATE(std::string_view("AMQP\0\0\x09\x02", 8), std::string_view("AMQP\1\1\0\x0a", 8),
                                            std::string_view("GET / HTTP/1.1\r\n", 16), std::string_view("AMQP\0\1\0\0", 8));
    TestBroker b;
    TestClient c(b, false);
    c.send_raw(wrong);
    CHECK(header_reply(c) == std::string_view("AMQP\0\0\x09\x01", 8));
    CHECK(c.transport_closed());
    CHECK(c.connection().is_closed());
}

TEST_CASE("the old-style 0-9-1 header is accepted", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_raw(std::string_view("AMQP\1\1\0\x09", 8));
    CHECK(c.take<ConnectionStart>().size() == 1);
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("connection.start advertises RabbitMQ's mechanisms, locales and capabilities", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    auto start = c.take<ConnectionStart>();
    REQUIRE(start.size() == 1);
    CHECK(start[0].version_major == 0);
    CHECK(start[0].version_minor == 9);
    CHECK(start[0].mechanisms.view() == "PLAIN AMQPLAIN");
    CHECK(start[0].locales.view() == "en_US");
    FieldTable props = start[0].server_properties.to_table();
    const FieldValue* caps = props.find("capabilities");
    REQUIRE(caps);
    REQUIRE(caps->get_if<FieldTable>());
    for (const char* name : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
                             "connection.blocked", "consumer_priorities", "authentication_failure_close",
                             "per_consumer_qos", "direct_reply_to"}) {
        INFO(name);
        const FieldValue* v = caps->get_if<FieldTable>()->find(name);
        REQUIRE(v);
        CHECK(*v == FieldValue(true));
    }
}

TEST_CASE("connection.start reports the configured product and version, and Warren's own in platform", "[connection]") {
    auto text = [](const FieldTable& t, std::string_view key) {
        const FieldValue* v = t.find(key);
        return v && v->as_string() ? *v->as_string() : std::string("(missing)");
    };
    auto start_properties = [](Config config) {
        TestBroker b(std::move(config));
        TestClient c(b, false);
        c.send_protocol_header();
        auto start = c.take<ConnectionStart>();
        REQUIRE(start.size() == 1);
        return start[0].server_properties.to_table();
    };
    // The default: what kombu needs to choose the channel-wide qos Celery relies on.
    FieldTable props = start_properties({});
    CHECK(text(props, "product") == "RabbitMQ");
    CHECK(text(props, "version") == "3.13.7");
    CHECK(text(props, "platform") == "Warren 0.1.0 (C++20 on Linux)");
    CHECK(text(props, "information") == "Warren 0.1.0, an AMQP 0-9-1 broker. See its README.");

    Config config;
    config.server_product = "Warren";
    config.server_version = "0.1.0";
    props = start_properties(config);
    CHECK(text(props, "product") == "Warren");
    CHECK(text(props, "version") == "0.1.0");
}

// ---- handshake ------------------------------------------------------------------------------

TEST_CASE("a failed login with authentication_failure_close gets connection.close 403", "[connection][auth]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok("guest", "wrong");
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 403);
    CHECK(text_of(*close) ==
          "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.");
    CHECK(close->class_id == 0);
    CHECK(close->method_id == 0);
    CHECK(c.take<ConnectionTune>().empty());
    CHECK(c.transport_closed());
}

TEST_CASE("a failed login without authentication_failure_close closes the transport without a close",
          "[connection][auth]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok("nobody", "guest", {"publisher_confirms"});
    CHECK_FALSE(c.connection_close());
    CHECK(c.take<ConnectionTune>().empty());
    CHECK(c.transport_closed());
}

TEST_CASE("an unknown mechanism or a malformed PLAIN response closes silently, even with the capability",
          "[connection][auth]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    SECTION("unknown mechanism") { c.send_start_ok("guest", "guest", default_capabilities(), "FOO"); }
    SECTION("PLAIN response without NULs") {
        ByteBuffer props = encode_table_body(table({{"capabilities", table({{"authentication_failure_close", true}})}}));
        ConnectionStartOk ok;
        ok.client_properties = TableView::trusted(props.span());
        ok.mechanism = "PLAIN";
        ok.response = "guestguest";
        c.send(0, ok);
    }
    CHECK_FALSE(c.connection_close());
    CHECK(c.take<ConnectionTune>().empty());
    CHECK(c.transport_closed());
}

TEST_CASE("an empty vhost name is not found", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(2047, 131072, 0);
    c.send_open("");
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 530);
    CHECK(text_of(*close) == "NOT_ALLOWED - vhost  not found");
}

TEST_CASE("a heartbeat during the handshake is ignored", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_raw(raw_frame(8, 0, ""));
    CHECK_FALSE(c.transport_closed());
    c.send_tune_ok(2047, 131072, 0);
    c.send_raw(raw_frame(8, 0, ""));
    c.send_open();
    CHECK(c.take<ConnectionOpenOk>().size() == 1);
}

TEST_CASE("guest is refused from a non-loopback peer", "[connection][auth]") {
    TestBroker b;
    TestClient c(b, false, false);
    c.send_protocol_header();
    c.send_start_ok("guest", "guest");
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 403);
    CHECK(c.take<ConnectionTune>().empty());
    CHECK(c.transport_closed());
}

TEST_CASE("guest from a non-loopback peer is accepted when loopback-only is off", "[connection][auth]") {
    Config config;
    config.default_user_loopback_only = false;
    TestBroker b(config);
    TestClient c(b, false, false);
    CHECK(c.handshake(2047, 131072, 0));
}

TEST_CASE("AMQPLAIN credentials are accepted", "[connection][auth]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    FieldTable creds;
    creds.set("LOGIN", std::string("guest"));
    creds.set("PASSWORD", std::string("guest"));
    ByteBuffer body = encode_table_body(creds);
    ByteBuffer props = encode_table_body(FieldTable{});
    ConnectionStartOk ok;
    ok.client_properties = TableView::trusted(props.span());
    ok.mechanism = "AMQPLAIN";
    ok.response = std::string_view(reinterpret_cast<const char*>(body.span().data()), body.size());
    c.send(0, ok);
    CHECK(c.take<ConnectionTune>().size() == 1);
}

TEST_CASE("connection.tune offers RabbitMQ's defaults", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    auto tune = c.take<ConnectionTune>();
    REQUIRE(tune.size() == 1);
    CHECK(tune[0].channel_max == 2047);
    CHECK(tune[0].frame_max == 131072);
    CHECK(tune[0].heartbeat == 60);
}

TEST_CASE("an unknown vhost gets connection.close 530", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(2047, 131072, 0);
    c.send_open("nope");
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 530);
    CHECK(text_of(*close) == "NOT_ALLOWED - vhost nope not found");
    CHECK(close->class_id == 10);
    CHECK(close->method_id == 40);
    CHECK(c.take<ConnectionOpenOk>().empty());
    CHECK(c.transport_closed());
}

// RabbitMQ 3.10 closes silently here; current RabbitMQ (rabbit_reader, state `tuning`) sends
// the 530, which is what Warren does.
TEST_CASE("tune-ok with frame_max below 4096 gets connection.close 530", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(2047, 1024, 0);
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 530);
    CHECK(text_of(*close) == "NOT_ALLOWED - negotiated frame_max = 1024 is lower than the minimum allowed value (4096)");
    CHECK(close->class_id == 10);
    CHECK(close->method_id == 30);
    CHECK(c.transport_closed());
}

TEST_CASE("tune-ok with frame_max above the server's gets connection.close 530", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(2047, 131073, 0);
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 530);
    CHECK(text_of(*close) ==
          "NOT_ALLOWED - negotiated frame_max = 131073 is higher than the maximum allowed value (131072)");
    CHECK(c.transport_closed());
}

TEST_CASE("tune-ok with channel_max above the server's gets connection.close 530", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(3000, 131072, 0);
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 530);
    CHECK(text_of(*close) ==
          "NOT_ALLOWED - negotiated channel_max = 3000 is higher than the maximum allowed value (2047)");
}

TEST_CASE("tune-ok with the smallest frame_max and no heartbeat is accepted", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    CHECK(c.handshake(2047, 4096, 0));
    CHECK(c.connection().frame_max() == 4096);
}

TEST_CASE("a client silent during the handshake is dropped after 10 seconds", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    b.advance(9s);
    CHECK_FALSE(c.transport_closed());
    b.advance(1s);
    CHECK(c.transport_closed());
}

TEST_CASE("a handshake that completes is not dropped at the handshake timeout", "[connection]") {
    TestBroker b;
    TestClient c(b);
    b.advance(30s);
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("channel.open between tune-ok and connection.open gets connection.close 505", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(2047, 131072, 0);
    c.send(1, ChannelOpen{});
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 505);
    CHECK(text_of(*close) == "UNEXPECTED_FRAME - type 1, all octets = <<0,20,0,10,0>>");
    CHECK(c.take<ChannelOpenOk>().empty());
    CHECK(c.transport_closed());
}

TEST_CASE("a method on channel 0 before connection.open gets connection.close 504", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send_start_ok();
    c.send_tune_ok(2047, 131072, 0);
    QueueDeclare d;
    d.queue = "q";
    c.send(0, d);
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 504);
    CHECK(text_of(*close) == "CHANNEL_ERROR - unexpected method in connection state opening");
    CHECK(close->class_id == 50);
    CHECK(close->method_id == 10);
}

TEST_CASE("a method other than start-ok during the handshake closes the transport silently", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    c.send(0, ConnectionOpen{"/"});
    CHECK_FALSE(c.connection_close());
    CHECK(c.transport_closed());
}

TEST_CASE("a second connection.open after open-ok gets connection.close 504", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.send(0, ConnectionOpen{"/"});
    expect_connection_close(c, 504, "CHANNEL_ERROR - unexpected method in connection state running", {10, 40});
}

// ---- frame errors ---------------------------------------------------------------------------

TEST_CASE("a frame larger than frame_max gets connection.close 501", "[connection][frames]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 4096, 0));
    // The header alone is enough: the size is checked before the payload is buffered.
    c.send_raw(hex("03 0001 00001388"));
    expect_connection_close(c, 501, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,5000,4088}");
}

TEST_CASE("a frame whose payload is exactly frame_max is accepted", "[connection][frames]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 4096, 0));
    c.open_channel(1);
    c.declare_queue(1, "q");
    BasicPublish p;
    p.routing_key = "q";
    c.send(1, p);
    ByteBuffer header;
    ByteBuffer props;
    encode_properties(props, BasicProperties{});
    write_content_header(header, 1, 60, 4096, props.span());
    c.send_raw(header.span());
    c.send_raw(raw_frame(3, 1, std::string(4096, 'x')));
    CHECK_FALSE(c.connection_close());
    REQUIRE(b.queue("q"));
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a bad frame-end octet gets connection.close 501", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send_raw(raw_frame(1, 1, method_payload(BasicQos{0, 1, false}), 0x00));
    expect_connection_close(c, 501,
                            "FRAME_ERROR - type 1, all octets = <<0,60,0,10,0,0,0,0,0,1,0>>: {invalid_frame_end_marker,0}");
}

TEST_CASE("an unknown frame type gets connection.close 501", "[connection][frames]") {
    const std::uint16_t channel = GENERATE(0, 1);
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send_raw(raw_frame(9, channel, "abc"));
    expect_connection_close(c, 501, "FRAME_ERROR - type 9, all octets = <<\"abc\">>: unknown_frame");
}

TEST_CASE("frames after a frame error are not read", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    auto bytes = raw_frame(9, 1, "abc");
    auto declare = method_payload(QueueDeclare{0, "q"});
    auto more = raw_frame(1, 1, declare);
    bytes.insert(bytes.end(), more.begin(), more.end());
    c.send_raw(bytes);
    CHECK(c.connection_close());
    CHECK(c.take<QueueDeclareOk>().empty());
    CHECK(b.queue("q") == nullptr);
}

TEST_CASE("a method frame too short for its ids gets connection.close 501", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send_raw(raw_frame(1, 1, hex("0032")));
    expect_connection_close(c, 501, "FRAME_ERROR - type 1, all octets = <<0,50>>: unknown_frame");
}

TEST_CASE("truncated method arguments get connection.close 501 cannot decode", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    // queue.declare: ticket 0, then a shortstr of 11 bytes of which only "pro" arrives.
    c.send_raw(raw_frame(1, 1, hex("0032 000a 0000 0b 70726f")));
    expect_connection_close(c, 501, "FRAME_ERROR - cannot decode <<0,0,11,112,114,111>>", {50, 10});
}

TEST_CASE("bytes after a method's arguments get connection.close 501 cannot decode", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    auto payload = method_payload(BasicQos{0, 1, false});
    auto extra = hex("deadbeef");
    payload.insert(payload.end(), extra.begin(), extra.end());
    c.send_raw(raw_frame(1, 1, payload));
    expect_connection_close(c, 501, "FRAME_ERROR - cannot decode <<0,0,0,0,0,1,0,222,173,190,239>>", {60, 10});
}

// RabbitMQ's reader crashes on an unknown id and drops the socket with no close frame; Warren
// answers with a close (see the report). Either way the connection ends.
TEST_CASE("an unknown class or method id ends the connection", "[connection][frames]") {
    const auto payload = GENERATE(hex("003c 03e7"), hex("07d0 000a"));
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send_raw(raw_frame(1, 1, payload));
    auto close = c.connection_close();
    if (close) {
        CHECK(close->reply_code == 503);
        c.send(0, ConnectionCloseOk{});
    }
    CHECK(c.transport_closed());
}

TEST_CASE("a heartbeat on a non-zero channel gets connection.close 505", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send_raw(raw_frame(8, 1, ""));
    expect_connection_close(c, 505, "UNEXPECTED_FRAME - type 8, all octets = <<>>");
}

TEST_CASE("a heartbeat with a payload gets connection.close 501", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.send_raw(raw_frame(8, 0, "abc"));
    expect_connection_close(c, 501, "FRAME_ERROR - type 8, all octets = <<\"abc\">>: unknown_frame");
}

TEST_CASE("a content header on channel 0 gets connection.close 505", "[connection][frames]") {
    TestBroker b;
    TestClient c(b);
    c.send_raw(raw_frame(2, 0, hex("003c 0000 0000000000000003 0000")));
    expect_connection_close(c, 505, "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,3,0,0>>");
}

// ---- channels -------------------------------------------------------------------------------

TEST_CASE("a method on a channel that was never opened gets connection.close 504", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    SECTION("queue.declare") {
        c.send(1, QueueDeclare{0, "q"});
        expect_connection_close(c, 504, "CHANNEL_ERROR - expected 'channel.open'", {50, 10});
    }
    SECTION("channel.close") {
        c.send(3, ChannelClose{200, "", 0, 0});
        expect_connection_close(c, 504, "CHANNEL_ERROR - expected 'channel.open'", {20, 40});
    }
}

TEST_CASE("a second channel.open on an open channel gets connection.close 504", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, ChannelOpen{});
    CHECK(c.take<ChannelOpenOk>().empty());
    expect_connection_close(c, 504, "CHANNEL_ERROR - second 'channel.open' seen", {20, 10});
}

TEST_CASE("channel.open on channel 0 gets connection.close 504", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.send(0, ChannelOpen{});
    expect_connection_close(c, 504, "CHANNEL_ERROR - unexpected method in connection state running", {20, 10});
}

TEST_CASE("connection.close on a channel other than 0 gets connection.close 503", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, ConnectionClose{200, "", 0, 0});
    expect_connection_close(c, 503, "COMMAND_INVALID - unimplemented method", {10, 50});
}

// As RabbitMQ: channel_max caps the number of open channels, not the channel id; the close
// names no method (0/0).
TEST_CASE("opening more channels than channel_max gets connection.close 530", "[connection][channel]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2, 131072, 0));
    c.open_channel(7);
    c.open_channel(11);
    CHECK(c.connection().channel_count() == 2);
    c.send(3, ChannelOpen{});
    CHECK(c.take<ChannelOpenOk>().empty());
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 530);
    CHECK(close->reply_text.view() ==
          "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)");
    CHECK(close->class_id == 0);
    CHECK(close->method_id == 0);
    CHECK(c.connection().channel_count() == 0);
}

TEST_CASE("a content header without a publish gets connection.close 505", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    ByteBuffer out;
    ByteBuffer props;
    encode_properties(props, BasicProperties{});
    write_content_header(out, 1, 60, 3, props.span());
    c.send_raw(out.span());
    expect_connection_close(c, 505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead");
}

TEST_CASE("a body frame after a body_size 0 header gets connection.close 505", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", "");
    c.send_raw(raw_frame(3, 1, ""));
    expect_connection_close(c, 505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead");
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("a method frame instead of the content header gets connection.close 505", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, BasicPublish{0, "", "q"});
    c.send(1, BasicQos{0, 1, false});
    expect_connection_close(
        c, 505, "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        {60, 40});
}

TEST_CASE("a body frame instead of the content header gets connection.close 505", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, BasicPublish{0, "", "q"});
    c.send_raw(raw_frame(3, 1, "abc"));
    expect_connection_close(
        c, 505, "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        {60, 40});
}

TEST_CASE("a content header of another class gets connection.close 505", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, BasicPublish{0, "", "q"});
    c.send_raw(raw_frame(2, 1, hex("0032 0000 0000000000000003 0000")));
    expect_connection_close(
        c, 505, "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead", {60, 40});
}

TEST_CASE("a method frame while the content body is expected gets connection.close 505", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.send(1, BasicPublish{0, "", "q"});
    ByteBuffer out;
    ByteBuffer props;
    encode_properties(props, BasicProperties{});
    write_content_header(out, 1, 60, 10, props.span());
    c.send_raw(out.span());
    c.send_raw(raw_frame(3, 1, "abc"));
    c.send(1, BasicQos{0, 1, false});
    expect_connection_close(c, 505, "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
                            {60, 40});
    CHECK(b.queue("q")->message_count() == 0);
}

TEST_CASE("empty body frames inside a content are accepted", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.send(1, BasicPublish{0, "", "q"});
    ByteBuffer out;
    ByteBuffer props;
    encode_properties(props, BasicProperties{});
    write_content_header(out, 1, 60, 3, props.span());
    c.send_raw(out.span());
    c.send_raw(raw_frame(3, 1, ""));
    c.send_raw(raw_frame(3, 1, "ab"));
    c.send_raw(raw_frame(3, 1, ""));
    c.send_raw(raw_frame(3, 1, "c"));
    CHECK_FALSE(c.connection_close());
    c.get(1, "q", true);
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "abc");
}

TEST_CASE("a channel error leaves the connection and other channels working", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    QueueDeclare passive;
    passive.queue = "missing";
    passive.passive = true;
    c.send(1, passive);
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 404);
    CHECK(text_of(*close) == "NOT_FOUND - no queue 'missing' in vhost '/'");
    CHECK(close->class_id == 50);
    CHECK(close->method_id == 10);
    CHECK_FALSE(c.connection_close());

    c.declare_queue(2, "q");
    CHECK(c.take<QueueDeclareOk>().size() == 1);
    c.publish(2, "", "q", "still here");
    c.get(2, "q");
    auto got = c.deliveries();
    REQUIRE(got.size() == 1);
    CHECK(got[0].body == "still here");

    c.close_ok(1);
    c.open_channel(1);
    c.declare_queue(1, "q2");
    CHECK(c.take<QueueDeclareOk>().size() == 1);
}

TEST_CASE("frames for a channel the broker is closing are dropped until close-ok", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.take<QueueDeclareOk>();
    c.get(1, "missing");
    REQUIRE(c.channel_close(1));

    // A method, a whole publish and even a stray content header: all ignored.
    c.declare_queue(1, "other");
    c.publish(1, "", "q", "dropped");
    ByteBuffer out;
    ByteBuffer props;
    encode_properties(props, BasicProperties{});
    write_content_header(out, 1, 60, 3, props.span());
    c.send_raw(out.span());
    CHECK(c.take<QueueDeclareOk>().empty());
    CHECK_FALSE(c.connection_close());
    CHECK(b.queue("other") == nullptr);
    CHECK(b.queue("q")->message_count() == 0);

    c.close_ok(1);
    c.open_channel(1);
    c.publish(1, "", "q", "kept");
    CHECK(b.queue("q")->message_count() == 1);
}

TEST_CASE("channel.open on a channel the broker is closing, before close-ok, gets connection.close 504",
          "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.get(1, "missing");
    REQUIRE(c.channel_close(1));
    c.send(1, ChannelOpen{});
    CHECK(c.take<ChannelOpenOk>().empty());
    expect_connection_close(c, 504, "CHANNEL_ERROR - second 'channel.open' seen", {20, 10});
}

TEST_CASE("a client channel.close gets close-ok and releases the channel id", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, ChannelClose{200, "bye", 0, 0});
    CHECK(c.take<ChannelCloseOk>().size() == 1);
    CHECK(c.connection().channel_count() == 0);
    c.send(1, ChannelOpen{});
    CHECK(c.take<ChannelOpenOk>().size() == 1);
}

TEST_CASE("a hundred channels open and close", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    for (std::uint16_t ch = 1; ch <= 100; ++ch) c.send(ch, ChannelOpen{});
    CHECK(c.take<ChannelOpenOk>().size() == 100);
    CHECK(c.connection().channel_count() == 100);
    for (std::uint16_t ch = 1; ch <= 100; ++ch) c.send(ch, ChannelClose{200, "", 0, 0});
    auto oks = c.frames();
    int close_oks = 0;
    for (auto& f : oks) close_oks += f.as<ChannelCloseOk>() ? 1 : 0;
    CHECK(close_oks == 100);
    CHECK(c.connection().channel_count() == 0);
    CHECK_FALSE(c.connection_close());
}

TEST_CASE("delivery tags start again at 1 on a reopened channel", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 2);
    c.get(1, "q", true);
    REQUIRE(c.deliveries().at(0).delivery_tag() == 1);
    c.close_channel(1);
    c.open_channel(1);
    c.get(1, "q", true);
    CHECK(c.deliveries().at(0).delivery_tag() == 1);
}

// ---- closing --------------------------------------------------------------------------------

TEST_CASE("connection.close gets close-ok and the broker leaves the socket for the client to close", "[connection]") {
    // close-ok tells its recipient that it may close the socket: closing ours first let the Go
    // client's reader see the end of the stream before it had handed close-ok to the caller.
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.close_connection();
    CHECK(c.take<ConnectionCloseOk>().size() == 1);
    CHECK(c.connection().is_closed());
    CHECK(b.broker->connection_count() == 0);
    CHECK_FALSE(c.transport_closed());
    CHECK(c.transport_awaits_client_close());
    // The socket is still read: every further close is answered, as RabbitMQ does (the Go
    // client sends one per concurrent Close() call); anything else is ignored.
    c.send(2, ChannelOpen{});
    c.close_connection();
    c.close_connection();
    CHECK(c.take<ConnectionCloseOk>().size() == 2);
    CHECK(c.take<ChannelOpenOk>().empty());
    c.lose_transport();  // the client closes its end
    b.advance(60s);
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("a client that keeps its socket open after close-ok is disconnected after its heartbeat interval",
          "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    c.close_connection();
    REQUIRE(c.take<ConnectionCloseOk>().size() == 1);
    b.advance(9s);
    CHECK_FALSE(c.transport_closed());
    b.advance(1s);
    CHECK(c.transport_closed());
}

TEST_CASE("without heartbeats a client gets 30 s to close its socket after close-ok", "[connection]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 0));
    c.close_connection();
    b.advance(29s);
    CHECK_FALSE(c.transport_closed());
    b.advance(1s);
    CHECK(c.transport_closed());
}

TEST_CASE("after the broker's connection.close other frames are ignored until close-ok", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send_raw(raw_frame(9, 0, ""));
    REQUIRE(c.connection_close());
    c.declare_queue(1, "q");
    c.send(2, ChannelOpen{});
    CHECK(c.take<QueueDeclareOk>().empty());
    CHECK(c.take<ChannelOpenOk>().empty());
    CHECK(b.queue("q") == nullptr);
    CHECK_FALSE(c.transport_closed());
    c.send(0, ConnectionCloseOk{});
    CHECK(c.transport_closed());
}

TEST_CASE("a peer that never sends close-ok is dropped after the close timeout", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.send_raw(raw_frame(9, 0, ""));
    REQUIRE(c.connection_close());
    b.advance(5s);
    CHECK_FALSE(c.transport_closed());
    b.advance(10s);
    CHECK(c.transport_closed());
}

TEST_CASE("a crossing connection.close during the broker's close is answered with close-ok", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.send_raw(raw_frame(9, 0, ""));
    REQUIRE(c.connection_close());
    c.close_connection();
    CHECK(c.take<ConnectionCloseOk>().size() == 1);
    CHECK(c.connection().is_closed());
    CHECK(c.transport_awaits_client_close());
}

TEST_CASE("a close-ok that arrives in two reads ends the broker's close", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.send_raw(raw_frame(9, 0, ""));
    REQUIRE(c.connection_close());
    auto close_ok = raw_frame(1, 0, method_payload(ConnectionCloseOk{}));
    c.send_raw(std::span(close_ok).first(5));
    CHECK_FALSE(c.transport_closed());
    c.send_raw(std::span(close_ok).subspan(5));
    CHECK(c.transport_closed());
}

// ---- heartbeats -----------------------------------------------------------------------------

namespace {
int heartbeats(TestClient& c) {
    int n = 0;
    for (auto& f : c.frames()) n += f.type == FrameType::Heartbeat && f.channel == 0 ? 1 : 0;
    return n;
}
}  // namespace

TEST_CASE("with a heartbeat negotiated the broker sends heartbeats when idle", "[connection][heartbeat]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    c.frames();
    int sent = 0;
    for (int i = 0; i < 3; ++i) {
        b.advance(5s);
        sent += heartbeats(c);
        c.send_raw(raw_frame(8, 0, ""));  // the client keeps the connection alive
    }
    CHECK(sent >= 2);
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("the broker closes the transport after the peer is silent for two heartbeat intervals",
          "[connection][heartbeat]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    for (int i = 0; i < 19; ++i) b.advance(1s);
    CHECK_FALSE(c.transport_closed());
    for (int i = 0; i < 11; ++i) b.advance(1s);
    CHECK(c.transport_closed());
    CHECK(c.connection().is_closed());
}

TEST_CASE("client heartbeats keep a connection alive", "[connection][heartbeat]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    for (int i = 0; i < 24; ++i) {
        b.advance(5s);
        c.send_raw(raw_frame(8, 0, ""));
    }
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("any frame from the client counts as a sign of life", "[connection][heartbeat]") {
    TestBroker b;
    TestClient c(b, false);
    REQUIRE(c.handshake(2047, 131072, 10));
    c.open_channel(1);
    for (int i = 0; i < 12; ++i) {
        b.advance(5s);
        c.send(1, BasicQos{0, 1, false});
    }
    CHECK_FALSE(c.transport_closed());
}

TEST_CASE("with heartbeat 0 the broker neither sends heartbeats nor times out", "[connection][heartbeat]") {
    TestBroker b;
    TestClient c(b);
    b.advance(600s);
    CHECK(heartbeats(c) == 0);
    CHECK_FALSE(c.transport_closed());
}

// ---- transport loss -------------------------------------------------------------------------

TEST_CASE("transport loss tears the connection down and unregisters it", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.open_channel(2);
    REQUIRE(b.broker->connection_count() == 1);
    c.lose_transport();
    CHECK(c.connection().is_closed());
    CHECK(c.connection().channel_count() == 0);
    CHECK(b.broker->connection_count() == 0);
}

// ---- conformance with RabbitMQ 3.10 (docs/rabbitmq-reference.md) ---------------------------

TEST_CASE("a shortstr that is not UTF-8 gets connection.close 501 without a method", "[connection][codec]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    QueueDeclare d;
    std::string bad("\xff\xfe", 2);
    d.queue = bad;
    c.send(1, d);
    expect_connection_close(c, 501, "FRAME_ERROR - Malformed UTF-8 in shortstr");
}

TEST_CASE("access.request is answered with ticket 1, as RabbitMQ does", "[connection][channel]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, AccessRequest{});
    auto ok = c.take<AccessRequestOk>();
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].ticket == 1);
    CHECK_FALSE(c.connection_close());
}

TEST_CASE("connection.update-secret is accepted", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.send(0, ConnectionUpdateSecret{"guest", "rotation"});
    CHECK(c.take<ConnectionUpdateSecretOk>().size() == 1);
    CHECK_FALSE(c.connection_close());
}

TEST_CASE("a basic.deliver sent by a client waits for its content header like RabbitMQ", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.send(1, BasicDeliver{"x", 1, false, "", "q"});
    c.qos(1, 1);
    expect_connection_close(
        c, 505, "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        {60, 60});
}

TEST_CASE("a content header with a non-zero weight is not taken for a header", "[connection][content]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    ByteBuffer out;
    write_method_frame(out, 1, BasicPublish{0, "", "q"});
    Writer w(out);
    write_frame_header(w, FrameType::Header, 1, 14);
    w.u16(60);
    w.u16(7);
    w.u64(3);
    w.u16(0);
    w.u8(frame_end);
    c.send_raw(out.span());
    expect_connection_close(
        c, 505, "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        {60, 40});
}

TEST_CASE("a message over max_message_size is read to its end, then refused with 406 naming basic.publish",
          "[connection][content]") {
    Config config;
    config.max_message_size = 1000;
    TestBroker b(config);
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish(1, "", "q", std::string(1500, 'x'));
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(close->reply_text.view() == "PRECONDITION_FAILED - message size 1500 is larger than configured max size 1000");
    CHECK(close->class_id == 60);
    CHECK(close->method_id == 40);
    CHECK_FALSE(c.connection_close());
    CHECK(b.queue("q")->message_count() == 0);
}

TEST_CASE("a reply text longer than 255 bytes is cut to 252 bytes and '...'", "[connection]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    std::string name(250, 'n');
    c.send(1, QueueDeclare{0, name, true});
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_text.size() == 255);
    CHECK(close->reply_text.view().substr(0, 27) == "NOT_FOUND - no queue 'nnnnn");
    CHECK(close->reply_text.view().substr(252) == "...");
}
