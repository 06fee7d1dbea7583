// The generated method structs: a round trip of every method through encode_method and
// visit_method, a check that the list below misses none, and hand-checked byte fixtures.
#include "protocol/methods.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/protocol/hex.hpp"

using namespace warren::protocol;
using namespace warren::protocol::test;

namespace {

template <class... Ms>
struct MethodList {
    static constexpr std::size_t size = sizeof...(Ms);
    template <class M>
    static constexpr bool contains = (std::is_same_v<M, Ms> || ...);
    template <class F>
    static void for_each(F&& f) {
        (f(std::type_identity<Ms>{}), ...);
    }
};

// Every method in methods.hpp. The completeness test below fails if visit_method knows one
// that is missing here.
using AllMethods = MethodList<
    ConnectionStart, ConnectionStartOk, ConnectionSecure, ConnectionSecureOk, ConnectionTune, ConnectionTuneOk,
    ConnectionOpen, ConnectionOpenOk, ConnectionClose, ConnectionCloseOk, ConnectionBlocked, ConnectionUnblocked,
    ConnectionUpdateSecret, ConnectionUpdateSecretOk, ChannelOpen, ChannelOpenOk, ChannelFlow, ChannelFlowOk,
    ChannelClose, ChannelCloseOk, AccessRequest, AccessRequestOk, ExchangeDeclare, ExchangeDeclareOk, ExchangeDelete, ExchangeDeleteOk, ExchangeBind,
    ExchangeBindOk, ExchangeUnbind, ExchangeUnbindOk, QueueDeclare, QueueDeclareOk, QueueBind, QueueBindOk, QueuePurge,
    QueuePurgeOk, QueueDelete, QueueDeleteOk, QueueUnbind, QueueUnbindOk, BasicQos, BasicQosOk, BasicConsume,
    BasicConsumeOk, BasicCancel, BasicCancelOk, BasicPublish, BasicReturn, BasicDeliver, BasicGet, BasicGetOk,
    BasicGetEmpty, BasicAck, BasicReject, BasicRecoverAsync, BasicRecover, BasicRecoverOk, BasicNack, TxSelect,
    TxSelectOk, TxCommit, TxCommitOk, TxRollback, TxRollbackOk, ConfirmSelect, ConfirmSelectOk>;

template <class T>
constexpr bool is_bit = std::is_same_v<std::remove_cvref_t<T>, Bit>;

template <class M>
int bit_count() {
    M m;
    int n = 0;
    std::apply([&](auto&... f) { ((n += is_bit<decltype(f)> ? 1 : 0), ...); }, M::fields(m));
    return n;
}

// Gives every field a value distinct from its default and from its neighbours. Strings and
// tables live in `store` (the structs hold views).
struct Filler {
    std::deque<std::string>& store;
    std::deque<ByteBuffer>& tables;
    int variant;
    std::vector<bool> bits;
    int index = 0;
    std::size_t bit_index = 0;

    template <class T>
    void operator()(T& field) {
        ++index;
        if constexpr (std::is_same_v<T, Bit>) {
            field = Bit{bits.at(bit_index++)};
        } else if constexpr (std::is_same_v<T, std::uint8_t>) {
            field = static_cast<std::uint8_t>(0x10 * index + variant + 1);
        } else if constexpr (std::is_same_v<T, std::uint16_t>) {
            field = static_cast<std::uint16_t>(0xa100 + 0x10 * index + variant);
        } else if constexpr (std::is_same_v<T, std::uint32_t>) {
            field = 0xc0000000u + 0x100u * index + variant;
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
            field = 0x8102030405060000ull + 0x100u * index + variant;
        } else if constexpr (std::is_same_v<T, ShortStr>) {
            field = ShortStr{text(variant == 2 ? 255 : 5)};
        } else if constexpr (std::is_same_v<T, LongStr>) {
            field = LongStr{text(variant == 2 ? 70000 : 7)};
        } else if constexpr (std::is_same_v<T, TableView>) {
            FieldTable t;
            t.set("index", std::int32_t{index});
            t.set("variant", std::string(static_cast<std::size_t>(variant), 'v'));
            tables.push_back(encode_table_body(t));
            field = TableView::trusted(tables.back().span());
        }
    }

    std::string_view text(std::size_t length) {
        std::string s = "f" + std::to_string(index) + "v" + std::to_string(variant) + "-";
        while (s.size() < length) s += static_cast<char>('a' + s.size() % 26);
        s.resize(length);
        store.push_back(std::move(s));
        return store.back();
    }
};

// A readable dump of every field, so a failed comparison names the field that differs.
template <class T>
void dump_field(std::string& out, const T& field) {
    if constexpr (std::is_same_v<T, Bit>)
        out += field ? "bit 1" : "bit 0";
    else if constexpr (std::is_same_v<T, ShortStr> || std::is_same_v<T, LongStr>)
        out += "str \"" + std::string(field.view()) + "\"";
    else if constexpr (std::is_same_v<T, TableView>)
        out += "table " + hex(field.bytes());
    else
        out += "int " + std::to_string(field);
    out += "; ";
}

template <class M>
std::string dump(const M& m) {
    std::string out;
    std::apply([&](const auto&... f) { (dump_field(out, f), ...); }, M::fields(m));
    return out;
}

template <class M>
ByteBuffer encode(const M& m) {
    ByteBuffer out;
    Writer w(out);
    encode_method(w, m);
    return out;
}

// Decodes a method payload (class id, method id, arguments) that must hold an M and nothing more.
template <class M>
M decode(std::span<const std::byte> payload) {
    Reader r(payload);
    MethodId id{r.u16(), r.u16()};
    M result;
    bool got = false;
    bool known = visit_method(id, r, [&](auto& m) {
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(m)>, M>) {
            result = m;
            got = true;
        }
    });
    REQUIRE(known);
    REQUIRE(got);
    REQUIRE(r.ok());
    REQUIRE(r.at_end());
    return result;
}

template <class M>
void check_round_trip(int variant, std::vector<bool> bits) {
    std::deque<std::string> store;
    std::deque<ByteBuffer> tables;
    M original;
    Filler fill{store, tables, variant, std::move(bits)};
    std::apply([&](auto&... f) { (fill(f), ...); }, M::fields(original));

    ByteBuffer wire = encode(original);
    M back = decode<M>(wire.span());
    CHECK(dump(back) == dump(original));

    // Every strict prefix of the arguments is incomplete; one extra byte is left over.
    for (std::size_t n = 4; n < wire.size(); ++n) {
        Reader r(wire.span().first(n).subspan(4));
        M partial;
        decode_fields(r, partial);
        CHECK_FALSE(r.ok());
    }
    wire.append(std::string_view("\x00", 1));
    Reader r(wire.span().subspan(4));
    M extra;
    decode_fields(r, extra);
    CHECK(r.ok());
    CHECK_FALSE(r.at_end());
}

template <class M>
void check_method(std::type_identity<M>) {
    INFO(M::name);
    int nbits = bit_count<M>();
    auto pattern = [&](auto pick) {
        std::vector<bool> bits;
        for (int i = 0; i < nbits; ++i) bits.push_back(pick(i));
        return bits;
    };
    check_round_trip<M>(0, pattern([](int) { return false; }));
    check_round_trip<M>(1, pattern([](int) { return true; }));
    check_round_trip<M>(2, pattern([](int i) { return i % 2 == 0; }));
    check_round_trip<M>(3, pattern([](int i) { return i % 2 == 1; }));
    for (int one = 0; one < nbits; ++one) check_round_trip<M>(4 + one, pattern([&](int i) { return i == one; }));

    // A default-constructed method round-trips too (empty strings, empty tables).
    M defaults;
    ByteBuffer wire = encode(defaults);
    Reader ids(wire.span());
    CHECK(ids.u16() == M::id.class_id);
    CHECK(ids.u16() == M::id.method_id);
    CHECK(dump(decode<M>(wire.span())) == dump(defaults));

    CHECK(method_name(M::id) == M::name);
    CHECK(method_has_content(M::id) == M::has_content);
}

}  // namespace

TEST_CASE("every method round-trips through encode_method and visit_method", "[codec]") {
    AllMethods::for_each([](auto type) { check_method(type); });
}

TEST_CASE("the round-trip list covers every method visit_method knows", "[codec]") {
    int known = 0;
    for (std::uint32_t class_id = 0; class_id < 256; ++class_id) {
        for (std::uint32_t method_id = 0; method_id < 256; ++method_id) {
            MethodId id{static_cast<std::uint16_t>(class_id), static_cast<std::uint16_t>(method_id)};
            Reader r(std::span<const std::byte>{});
            bool listed = false;
            bool right_id = false;
            bool handled = visit_method(id, r, [&](auto& m) {
                using M = std::remove_cvref_t<decltype(m)>;
                listed = AllMethods::contains<M>;
                right_id = M::id == id;
            });
            CHECK((method_name(id) != "unknown") == handled);
            if (!handled) continue;
            ++known;
            INFO("class " << class_id << " method " << method_id);
            CHECK(listed);
            CHECK(right_id);
        }
    }
    CHECK(known == static_cast<int>(AllMethods::size));
    CHECK(known == 66);
}

TEST_CASE("methods default to the spec's default values", "[codec]") {
    CHECK(ConnectionStart{}.version_major == 0);
    CHECK(ConnectionStart{}.version_minor == 9);
    CHECK(BasicReject{}.requeue);
    CHECK(BasicNack{}.requeue);
    CHECK_FALSE(BasicNack{}.multiple);
    CHECK(ConnectionOpen{}.virtual_host == "/");
}

// ---- hand-checked fixtures: class id, method id, then the arguments -----------------------

TEST_CASE("connection.start has a byte-exact encoding", "[codec]") {
    FieldTable props;
    props.set("product", "Warren");
    ByteBuffer props_body = encode_table_body(props);
    ConnectionStart m;
    m.server_properties = TableView::trusted(props_body.span());
    m.mechanisms = "PLAIN AMQPLAIN";
    m.locales = "en_US";
    std::string fixture = canon(
        "00 0a 00 0a | 00 | 09"
        "| 00 00 00 13 07 'product' 53 00 00 00 06 'Warren'"
        "| 00 00 00 0e 'PLAIN AMQPLAIN'"
        "| 00 00 00 05 'en_US'");
    CHECK(hex(encode(m)) == fixture);

    Bytes wire = unhex(fixture);
    auto d = decode<ConnectionStart>(wire);
    CHECK(d.version_major == 0);
    CHECK(d.version_minor == 9);
    CHECK(d.server_properties.find("product")->as_string() == "Warren");
    CHECK(d.mechanisms == "PLAIN AMQPLAIN");
    CHECK(d.locales == "en_US");
}

TEST_CASE("connection.tune has a byte-exact encoding", "[codec]") {
    ConnectionTune m;
    m.channel_max = 2047;
    m.frame_max = 131072;
    m.heartbeat = 60;
    std::string fixture = canon("00 0a 00 1e | 07 ff | 00 02 00 00 | 00 3c");
    CHECK(hex(encode(m)) == fixture);
    Bytes wire = unhex(fixture);
    auto d = decode<ConnectionTune>(wire);
    CHECK(d.channel_max == 2047);
    CHECK(d.frame_max == 131072);
    CHECK(d.heartbeat == 60);
}

TEST_CASE("connection.close has a byte-exact encoding", "[codec]") {
    ConnectionClose m;
    m.reply_code = 320;
    m.reply_text = "CONNECTION_FORCED";
    m.class_id = 0;
    m.method_id = 0;
    CHECK(hex(encode(m)) == canon("00 0a 00 32 | 01 40 | 11 'CONNECTION_FORCED' | 00 00 | 00 00"));
}

TEST_CASE("queue.declare packs its five bits into one octet before the table", "[codec]") {
    FieldTable args;
    args.set("x-message-ttl", std::int32_t{60000});
    ByteBuffer args_body = encode_table_body(args);
    QueueDeclare m;
    m.queue = "q1";
    m.durable = true;
    m.auto_delete = true;
    m.arguments = TableView::trusted(args_body.span());
    std::string fixture = canon("00 32 00 0a | 00 00 | 02 'q1' | 0a | 00 00 00 13 0d 'x-message-ttl' 49 00 00 ea 60");
    CHECK(hex(encode(m)) == fixture);

    Bytes wire = unhex(fixture);
    auto d = decode<QueueDeclare>(wire);
    CHECK(d.queue == "q1");
    CHECK_FALSE(d.passive);
    CHECK(d.durable);
    CHECK_FALSE(d.exclusive);
    CHECK(d.auto_delete);
    CHECK_FALSE(d.nowait);
    CHECK(d.arguments.find("x-message-ttl")->as_integer() == 60000);

    QueueDeclare bits;
    bits.passive = bits.durable = bits.exclusive = bits.auto_delete = bits.nowait = true;
    CHECK(hex(encode(bits)) == canon("00 32 00 0a | 00 00 | 00 | 1f | 00 00 00 00"));
    QueueDeclare nowait_only;
    nowait_only.nowait = true;
    CHECK(hex(encode(nowait_only)) == canon("00 32 00 0a | 00 00 | 00 | 10 | 00 00 00 00"));
}

TEST_CASE("exchange.declare packs its five bits into one octet", "[codec]") {
    ExchangeDeclare m;
    m.exchange = "logs";
    m.type = "fanout";
    m.durable = true;
    m.internal = true;
    m.nowait = true;
    std::string fixture = canon("00 28 00 0a | 00 00 | 04 'logs' | 06 'fanout' | 1a | 00 00 00 00");
    CHECK(hex(encode(m)) == fixture);

    Bytes wire = unhex(fixture);
    auto d = decode<ExchangeDeclare>(wire);
    CHECK(d.exchange == "logs");
    CHECK(d.type == "fanout");
    CHECK_FALSE(d.passive);
    CHECK(d.durable);
    CHECK_FALSE(d.auto_delete);
    CHECK(d.internal);
    CHECK(d.nowait);
    CHECK(d.arguments.empty());

    ExchangeDeclare passive_only;
    passive_only.passive = true;
    CHECK(hex(encode(passive_only)) == canon("00 28 00 0a | 00 00 | 00 | 06 'direct' | 01 | 00 00 00 00"));
}

TEST_CASE("basic.publish has a byte-exact encoding", "[codec]") {
    BasicPublish m;
    m.exchange = "amq.direct";
    m.routing_key = "rk";
    m.mandatory = true;
    std::string fixture = canon("00 3c 00 28 | 00 00 | 0a 'amq.direct' | 02 'rk' | 01");
    CHECK(hex(encode(m)) == fixture);

    Bytes wire = unhex(fixture);
    auto d = decode<BasicPublish>(wire);
    CHECK(d.exchange == "amq.direct");
    CHECK(d.routing_key == "rk");
    CHECK(d.mandatory);
    CHECK_FALSE(d.immediate);

    Bytes immediate = unhex("00 3c 00 28 | 00 00 | 00 | 00 | 02");
    CHECK(decode<BasicPublish>(immediate).immediate);
}

TEST_CASE("basic.deliver has a byte-exact encoding", "[codec]") {
    BasicDeliver m;
    m.consumer_tag = "ctag";
    m.delivery_tag = 5;
    m.redelivered = true;
    m.exchange = "";
    m.routing_key = "q1";
    std::string fixture = canon("00 3c 00 3c | 04 'ctag' | 00 00 00 00 00 00 00 05 | 01 | 00 | 02 'q1'");
    CHECK(hex(encode(m)) == fixture);

    Bytes wire = unhex(fixture);
    auto d = decode<BasicDeliver>(wire);
    CHECK(d.consumer_tag == "ctag");
    CHECK(d.delivery_tag == 5);
    CHECK(d.redelivered);
    CHECK(d.exchange.empty());
    CHECK(d.routing_key == "q1");
}

TEST_CASE("basic.ack has a byte-exact encoding", "[codec]") {
    BasicAck m;
    m.delivery_tag = 42;
    m.multiple = true;
    std::string fixture = canon("00 3c 00 50 | 00 00 00 00 00 00 00 2a | 01");
    CHECK(hex(encode(m)) == fixture);
    Bytes wire = unhex(fixture);
    auto d = decode<BasicAck>(wire);
    CHECK(d.delivery_tag == 42);
    CHECK(d.multiple);

    BasicAck high;
    high.delivery_tag = 0xfffffffffffffffeull;
    CHECK(hex(encode(high)) == canon("00 3c 00 50 | ff ff ff ff ff ff ff fe | 00"));
}

TEST_CASE("basic.nack packs multiple and requeue into one octet", "[codec]") {
    // The spec gives basic.nack two bits (multiple, requeue), packed least significant first.
    BasicNack m;
    m.delivery_tag = 7;
    CHECK(hex(encode(m)) == canon("00 3c 00 78 | 00 00 00 00 00 00 00 07 | 02"));  // requeue defaults to true
    m.multiple = true;
    CHECK(hex(encode(m)) == canon("00 3c 00 78 | 00 00 00 00 00 00 00 07 | 03"));
    m.requeue = false;
    CHECK(hex(encode(m)) == canon("00 3c 00 78 | 00 00 00 00 00 00 00 07 | 01"));

    Bytes wire = unhex("00 3c 00 78 | 00 00 00 00 00 00 00 09 | 02");
    auto d = decode<BasicNack>(wire);
    CHECK(d.delivery_tag == 9);
    CHECK_FALSE(d.multiple);
    CHECK(d.requeue);
}

TEST_CASE("basic.consume packs four bits before its table", "[codec]") {
    BasicConsume m;
    m.queue = "q";
    m.consumer_tag = "c";
    m.no_ack = true;
    m.exclusive = true;
    CHECK(hex(encode(m)) == canon("00 3c 00 14 | 00 00 | 01 'q' | 01 'c' | 06 | 00 00 00 00"));
}

TEST_CASE("basic.qos has a byte-exact encoding", "[codec]") {
    BasicQos m;
    m.prefetch_count = 10;
    m.global = true;
    CHECK(hex(encode(m)) == canon("00 3c 00 0a | 00 00 00 00 | 00 0a | 01"));
}

TEST_CASE("visit_method refuses ids outside the spec and leaves the reader alone", "[codec]") {
    Bytes args = unhex("01 02");
    Reader r(args);
    bool called = false;
    CHECK_FALSE(visit_method(MethodId{60, 41}, r, [&](auto&) { called = true; }));
    CHECK_FALSE(visit_method(MethodId{30, 99}, r, [&](auto&) { called = true; }));
    CHECK_FALSE(called);
    CHECK(r.position() == 0);
    CHECK(method_name(MethodId{60, 41}) == "unknown");
}
