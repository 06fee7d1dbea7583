// Writes the seed corpora for the codec fuzzers: a client's whole session, one frame per method,
// content headers and broken frames for warren_fuzz_frames; realistic tables (client
// properties, queue arguments, x-death) for warren_fuzz_field_table.
//
// usage: warren_fuzz_seeds <dir>    writes <dir>/frames/* and <dir>/field_table/*
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "protocol/basic_properties.hpp"
#include "protocol/frame_writer.hpp"
#include "protocol/methods.hpp"

using namespace warren::protocol;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, std::span<const std::byte> bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A frames seed: selector 0 (frame_max 131072), chunking seed, then the stream.
void write_frames(const fs::path& dir, const std::string& name, const ByteBuffer& stream, std::uint8_t chunking = 7) {
    ByteBuffer seed;
    const std::uint8_t prefix[] = {0, chunking};
    seed.append(prefix, 2);
    seed.append(stream.span());
    write_file(dir / name, seed.span());
}

FieldTable client_properties() {
    FieldTable capabilities;
    for (const char* c : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
                          "connection.blocked", "authentication_failure_close"})
        capabilities.set(c, true);
    FieldTable t;
    t.set("product", "warren-fuzz");
    t.set("version", "1.0");
    t.set("platform", "C++");
    t.set("capabilities", std::move(capabilities));
    t.set("connection_name", "seed");
    return t;
}

FieldTable queue_arguments() {
    FieldTable t;
    t.set("x-message-ttl", std::int32_t{60000});
    t.set("x-dead-letter-exchange", "dlx");
    t.set("x-max-length", std::int64_t{1000});
    t.set("x-queue-type", "classic");
    t.set("x-max-priority", std::uint8_t{10});
    return t;
}

FieldTable x_death_headers() {
    FieldTable death;
    death.set("count", std::int64_t{1});
    death.set("reason", "rejected");
    death.set("queue", "work");
    death.set("time", Timestamp{1700000000});
    death.set("exchange", "");
    death.set("routing-keys", FieldArray{{std::string("work")}});
    FieldTable t;
    t.set("x-death", FieldArray{{death}});
    t.set("x-first-death-reason", "rejected");
    t.set("x-first-death-queue", "work");
    t.set("x-first-death-exchange", "");
    return t;
}

FieldTable every_type() {
    FieldTable t;
    t.set("t", true);
    t.set("b", std::int8_t{-1});
    t.set("B", std::uint8_t{255});
    t.set("s", std::int16_t{-2});
    t.set("u", std::uint16_t{65535});
    t.set("I", std::int32_t{-3});
    t.set("i", std::uint32_t{4000000000u});
    t.set("l", std::int64_t{-4});
    t.set("f", 1.5f);
    t.set("d", -2.5);
    t.set("D", Decimal{2, 12345});
    t.set("S", "text");
    t.set("x", ByteArray{std::string("\x00\x01\xff", 3)});
    t.set("T", Timestamp{1700000000});
    t.set("V", Void{});
    t.set("A", FieldArray{{std::int32_t{1}, std::string("a"), FieldArray{}, FieldTable{}}});
    t.set("F", queue_arguments());
    return t;
}

FieldTable nested(int levels) {
    FieldTable t;
    t.set("leaf", Void{});
    for (int i = 0; i < levels; ++i) {
        FieldTable outer;
        outer.set(i % 2 ? "table" : "t", std::move(t));
        t = std::move(outer);
    }
    return t;
}

template <class M>
void method(ByteBuffer& out, std::uint16_t channel, const M& m) {
    write_method_frame(out, channel, m);
}

void content(ByteBuffer& out, std::uint16_t channel, const BasicProperties& props, std::string_view body,
             std::size_t frame_size) {
    ByteBuffer encoded;
    encode_properties(encoded, props);
    write_content_header(out, channel, class_id::basic, body.size(), encoded.span());
    while (!body.empty()) {
        auto part = body.substr(0, frame_size);
        body.remove_prefix(part.size());
        Writer w(out);
        write_frame_header(w, FrameType::Body, channel, static_cast<std::uint32_t>(part.size()));
        w.bytes(part);
        w.u8(frame_end);
    }
}

BasicProperties all_properties(const ByteBuffer& headers_body) {
    BasicProperties p;
    p.flags = 0xfffc;
    p.content_type = "application/json";
    p.content_encoding = "utf-8";
    p.headers = TableView::trusted(headers_body.span());
    p.delivery_mode = 2;
    p.priority = 5;
    p.correlation_id = "corr-1";
    p.reply_to = "amq.rabbitmq.reply-to";
    p.expiration = "60000";
    p.message_id = "msg-1";
    p.timestamp = 1700000000;
    p.type = "order";
    p.user_id = "guest";
    p.app_id = "seed";
    p.cluster_id = "c";
    return p;
}

void frame_seeds(const fs::path& dir) {
    ByteBuffer props_body = encode_table_body(client_properties());
    ByteBuffer args_body = encode_table_body(queue_arguments());
    ByteBuffer headers_body = encode_table_body(x_death_headers());

    // A client's session, as it would arrive after the protocol header.
    ByteBuffer session;
    ConnectionStartOk start_ok;
    start_ok.client_properties = TableView::trusted(props_body.span());
    start_ok.response = std::string_view("\0guest\0guest", 12);
    method(session, 0, start_ok);
    method(session, 0, ConnectionTuneOk{2047, 131072, 60});
    method(session, 0, ConnectionOpen{});
    method(session, 1, ChannelOpen{});
    method(session, 1, ConfirmSelect{});
    ExchangeDeclare exchange;
    exchange.exchange = "logs";
    exchange.type = "topic";
    exchange.durable = true;
    method(session, 1, exchange);
    QueueDeclare queue;
    queue.queue = "work";
    queue.durable = true;
    queue.arguments = TableView::trusted(args_body.span());
    method(session, 1, queue);
    QueueBind bind;
    bind.queue = "work";
    bind.exchange = "logs";
    bind.routing_key = "a.#.b";
    method(session, 1, bind);
    BasicQos qos;
    qos.prefetch_count = 10;
    method(session, 1, qos);
    BasicConsume consume;
    consume.queue = "work";
    consume.consumer_tag = "ctag-1";
    method(session, 1, consume);
    BasicPublish publish;
    publish.exchange = "logs";
    publish.routing_key = "a.x.b";
    publish.mandatory = true;
    method(session, 1, publish);
    content(session, 1, all_properties(headers_body), "{\"order\": 1, \"items\": [1, 2, 3]}", 10);
    method(session, 1, publish);
    content(session, 1, BasicProperties{}, "", 10);
    write_heartbeat(session);
    BasicAck ack;
    ack.delivery_tag = 1;
    ack.multiple = true;
    method(session, 1, ack);
    BasicNack nack;
    nack.delivery_tag = 2;
    method(session, 1, nack);
    method(session, 1, BasicReject{3, false});
    method(session, 1, ChannelClose{200, "bye", 0, 0});
    method(session, 1, ChannelCloseOk{});
    method(session, 0, ConnectionClose{200, "Goodbye", 0, 0});
    write_frames(dir, "session", session);
    write_frames(dir, "session-bytewise", session, 0);

    // One frame per method the codec knows, with its arguments zeroed.
    Reader empty(std::span<const std::byte>{});
    for (std::uint32_t c = 0; c < 256; ++c) {
        for (std::uint32_t m = 0; m < 256; ++m) {
            visit_method(MethodId{std::uint16_t(c), std::uint16_t(m)}, empty, [&](auto& decoded) {
                ByteBuffer one;
                method(one, 1, decoded);
                write_frames(dir, "method-" + std::to_string(c) + "-" + std::to_string(m), one);
            });
        }
    }

    ByteBuffer header;
    content(header, 1, all_properties(headers_body), "body", 4096);
    write_frames(dir, "content-all-properties", header);

    // Broken frames, for the error paths.
    ByteBuffer bad_end;
    write_heartbeat(bad_end);
    bad_end.data()[bad_end.size() - 1] = std::byte{0};
    write_frames(dir, "bad-frame-end", bad_end);
    ByteBuffer unknown;
    write_heartbeat(unknown);
    unknown.data()[0] = std::byte{4};
    write_frames(dir, "unknown-type", unknown);
    ByteBuffer too_large;
    Writer w(too_large);
    write_frame_header(w, FrameType::Body, 1, 0xffffffff);
    write_frames(dir, "too-large", too_large);
}

void table_seeds(const fs::path& dir) {
    write_file(dir / "client-properties", encode_table_body(client_properties()).span());
    write_file(dir / "queue-arguments", encode_table_body(queue_arguments()).span());
    write_file(dir / "x-death", encode_table_body(x_death_headers()).span());
    write_file(dir / "every-type", encode_table_body(every_type()).span());
    write_file(dir / "nested-20", encode_table_body(nested(20)).span());
    // Single values, type letter first (the fuzzer's second reading of its input).
    ByteBuffer array;
    const std::uint8_t a = 'A';
    array.append(&a, 1);
    encode_array(array, FieldArray{{std::string("x"), FieldTable{}, true, Void{}}});
    write_file(dir / "value-array", array.span());
    ByteBuffer table;
    const std::uint8_t f = 'F';
    table.append(&f, 1);
    encode_table(table, every_type());
    write_file(dir / "value-table", table.span());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <dir>\n", argv[0]);
        return 2;
    }
    fs::path root(argv[1]);
    fs::create_directories(root / "frames");
    fs::create_directories(root / "field_table");
    frame_seeds(root / "frames");
    table_seeds(root / "field_table");
    return 0;
}
