// libFuzzer target for the read side of a connection: arbitrary bytes go through parse_frame in
// a loop, once whole and once in uneven chunks as a socket delivers them (both must agree);
// method frames are decoded with visit_method and content headers with decode_properties.
//
// Input: [frame_max selector][chunking seed][the byte stream...]
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "protocol/basic_properties.hpp"
#include "protocol/frame.hpp"
#include "protocol/methods.hpp"
#include "protocol/writer.hpp"

using namespace warren::protocol;

namespace {

void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "frame fuzzer: invariant failed: %s\n", what);
    std::abort();
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Reads every value of a validated table through each accessor, as handlers would.
void touch(TableView table);

void touch(FieldRef value) {
    require(value.is_integer() == value.as_integer().has_value(), "is_integer agrees with as_integer");
    require(value.as_string().has_value() == value.is_string(), "as_string only for 'S'");
    (void)value.as_bool();
    if (value.type() == 'F') touch(value.as_table());
    if (value.type() == 'A') value.as_array().for_each([](FieldRef item) { touch(item); });
}

void touch(TableView table) {
    table.for_each([&](std::string_view key, FieldRef value) {
        touch(value);
        require(table.find(key).has_value(), "every key is found");
    });
    (void)table.to_table();
}

template <class Tuple>
struct HasBit;
template <class... Fields>
struct HasBit<std::tuple<Fields...>> : std::bool_constant<(std::is_same_v<std::remove_cvref_t<Fields>, Bit> || ...)> {};
template <class M>
constexpr bool has_bits = HasBit<decltype(M::fields(std::declval<M&>()))>::value;

template <class T>
void touch_field(const T& field) {
    if constexpr (std::is_same_v<T, TableView>) touch(field);
}

template <class M>
ByteBuffer encode(const M& m) {
    ByteBuffer out;
    Writer w(out);
    encode_method(w, m);
    return out;
}

void decode_method_frame(std::span<const std::byte> payload) {
    Reader r(payload);
    MethodId id{r.u16(), r.u16()};
    if (!r.ok()) return;
    (void)method_name(id);
    (void)method_has_content(id);
    visit_method(id, r, [&](auto& m) {
        using M = std::remove_cvref_t<decltype(m)>;
        std::apply([](const auto&... f) { (touch_field(f), ...); }, M::fields(m));
        if (!r.ok() || !r.at_end()) return;

        // What we decoded re-encodes to the same size, and to the very same bytes unless the
        // method has bits (undefined bits in a bit octet are dropped). Encoding is stable.
        ByteBuffer first = encode(m);
        require(first.size() == payload.size(), "re-encoded method has the received size");
        if constexpr (!has_bits<M>) require(same_bytes(first.span(), payload), "re-encoded method is identical");
        Reader again(first.span().subspan(4));
        M m2;
        decode_fields(again, m2);
        require(again.ok() && again.at_end(), "re-encoded method decodes");
        require(same_bytes(encode(m2).span(), first.span()), "encoding is stable");
    });
}

void decode_header_frame(std::span<const std::byte> payload) {
    Reader r(payload);
    r.u16();  // class id
    r.u16();  // weight
    r.u64();  // body size
    if (!r.ok()) return;
    auto bytes = r.rest();
    auto props = decode_properties(bytes);
    if (!props) return;
    touch(props->headers);
    ByteBuffer first;
    encode_properties(first, *props);
    // Only the flag word can lose bits (bit 1, and empty continuation words).
    bool plain_flags = (std::to_integer<unsigned>(bytes[1]) & 0x03) == 0;
    if (plain_flags) require(same_bytes(first.span(), bytes), "re-encoded properties are identical");
    auto again = decode_properties(first.span());
    require(again.has_value(), "re-encoded properties decode");
    ByteBuffer second;
    encode_properties(second, *again);
    require(same_bytes(first.span(), second.span()), "property encoding is stable");
}

// What one parse_frame call produced, for comparing the two ways of feeding the reader.
struct Seen {
    FrameStatus status;
    std::uint8_t type;
    std::uint16_t channel;
    std::string payload_or_text;
    friend bool operator==(const Seen&, const Seen&) = default;
};

Seen on_frame(const FrameParse& p, std::span<const std::byte> in) {
    if (p.status == FrameStatus::Error) {
        require(p.consumed == 0, "an error consumes nothing");
        return Seen{p.status, p.error.type, p.error.channel, p.error.text()};
    }
    const Frame& f = p.frame;
    require(p.consumed == f.payload.size() + frame_overhead, "consumed is payload + 8");
    require(p.consumed <= in.size(), "consumed is within the input");
    require(f.payload.data() == in.data() + frame_header_size, "payload is a view after the header");
    if (f.type == FrameType::Method) decode_method_frame(f.payload);
    if (f.type == FrameType::Header) decode_header_frame(f.payload);
    return Seen{p.status, static_cast<std::uint8_t>(f.type), f.channel,
                std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size())};
}

std::vector<Seen> read_whole(std::span<const std::byte> in, std::uint32_t frame_max) {
    std::vector<Seen> seen;
    for (;;) {
        FrameParse p = parse_frame(in, frame_max);
        if (p.status == FrameStatus::NeedMore) {
            require(p.consumed == 0, "need-more consumes nothing");
            break;
        }
        seen.push_back(on_frame(p, in));
        if (p.status == FrameStatus::Error) break;
        in = in.subspan(p.consumed);
    }
    return seen;
}

// As a connection reads: append what the socket gave, take whole frames, keep the rest.
std::vector<Seen> read_chunked(std::span<const std::byte> in, std::uint32_t frame_max, std::uint32_t seed) {
    std::vector<Seen> seen;
    ByteBuffer buffer;
    std::uint32_t state = seed * 2654435761u + 1;
    while (!in.empty()) {
        state = state * 1103515245u + 12345u;
        std::size_t n = std::min<std::size_t>(in.size(), 1 + (state >> 16) % 97);
        buffer.append(in.first(n));
        in = in.subspan(n);
        for (;;) {
            FrameParse p = parse_frame(buffer.span(), frame_max);
            if (p.status == FrameStatus::NeedMore) break;
            seen.push_back(on_frame(p, buffer.span()));
            if (p.status == FrameStatus::Error) return seen;
            buffer.consume_front(p.consumed);
        }
    }
    return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    static constexpr std::uint32_t frame_maxes[] = {131072, frame_min_size, 0, 64};
    std::uint32_t frame_max = frame_maxes[data[0] % 4];
    std::uint32_t seed = data[1];
    std::span<const std::byte> stream(reinterpret_cast<const std::byte*>(data) + 2, size - 2);

    auto whole = read_whole(stream, frame_max);
    auto chunked = read_chunked(stream, frame_max, seed);
    require(whole == chunked, "whole and chunked reads see the same frames");
    return 0;
}
