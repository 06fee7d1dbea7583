// Encode and decode of the basic class's content-header property list.
#include "protocol/basic_properties.hpp"

#include "protocol/reader.hpp"
#include "protocol/writer.hpp"

namespace warren::protocol {

namespace {

// Flags of the 14 defined properties; anything else is an unknown property.
constexpr std::uint16_t known_flags = property_flag::defined;

}  // namespace

std::optional<BasicProperties> decode_properties(std::span<const std::byte> bytes) {
    // Most messages carry no properties at all: two zero flag octets.
    if (bytes.size() == 2 && bytes[0] == std::byte{0} && bytes[1] == std::byte{0}) return BasicProperties{};
    Reader r(bytes);
    BasicProperties p;
    p.flags = r.u16();
    // Continuation words may follow, but the basic class defines no property beyond 14.
    for (std::uint16_t word = p.flags; word & property_flag::continuation;) {
        word = r.u16();
        if (word & ~property_flag::continuation) return std::nullopt;
    }
    p.flags &= known_flags;
    if (p.has(property_flag::content_type)) p.content_type = r.shortstr();
    if (p.has(property_flag::content_encoding)) p.content_encoding = r.shortstr();
    if (p.has(property_flag::headers)) {
        std::uint32_t n = r.u32();
        auto body = r.bytes(n);
        if (!r.ok()) return std::nullopt;
        auto table = TableView::parse(body);
        if (!table) return std::nullopt;
        p.headers = *table;
    }
    if (p.has(property_flag::delivery_mode)) p.delivery_mode = r.u8();
    if (p.has(property_flag::priority)) p.priority = r.u8();
    if (p.has(property_flag::correlation_id)) p.correlation_id = r.shortstr();
    if (p.has(property_flag::reply_to)) p.reply_to = r.shortstr();
    if (p.has(property_flag::expiration)) p.expiration = r.shortstr();
    if (p.has(property_flag::message_id)) p.message_id = r.shortstr();
    if (p.has(property_flag::timestamp)) p.timestamp = r.u64();
    if (p.has(property_flag::type)) p.type = r.shortstr();
    if (p.has(property_flag::user_id)) p.user_id = r.shortstr();
    if (p.has(property_flag::app_id)) p.app_id = r.shortstr();
    if (p.has(property_flag::cluster_id)) p.cluster_id = r.shortstr();
    if (!r.ok() || !r.at_end()) return std::nullopt;
    return p;
}

void encode_properties(ByteBuffer& out, const BasicProperties& p) {
    Writer w(out);
    w.u16(p.flags & known_flags);
    if (p.has(property_flag::content_type)) w.shortstr(p.content_type);
    if (p.has(property_flag::content_encoding)) w.shortstr(p.content_encoding);
    if (p.has(property_flag::headers)) {
        w.u32(static_cast<std::uint32_t>(p.headers.bytes().size()));
        w.bytes(p.headers.bytes());
    }
    if (p.has(property_flag::delivery_mode)) w.u8(p.delivery_mode);
    if (p.has(property_flag::priority)) w.u8(p.priority);
    if (p.has(property_flag::correlation_id)) w.shortstr(p.correlation_id);
    if (p.has(property_flag::reply_to)) w.shortstr(p.reply_to);
    if (p.has(property_flag::expiration)) w.shortstr(p.expiration);
    if (p.has(property_flag::message_id)) w.shortstr(p.message_id);
    if (p.has(property_flag::timestamp)) w.u64(p.timestamp);
    if (p.has(property_flag::type)) w.shortstr(p.type);
    if (p.has(property_flag::user_id)) w.shortstr(p.user_id);
    if (p.has(property_flag::app_id)) w.shortstr(p.app_id);
    if (p.has(property_flag::cluster_id)) w.shortstr(p.cluster_id);
}

}  // namespace warren::protocol
