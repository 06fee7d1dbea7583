// Encoding and decoding the message record payload.
#include "store/message_record.hpp"

#include <cstring>
#include <stdexcept>

#include "store/bytes.hpp"

namespace warren::store {

QueueEntryRef QueueList::operator[](std::uint32_t i) const {
    const std::byte* p = data_ + std::size_t{i} * queue_entry_size;
    return {get_u32(p), get_u64(p + 4)};
}

std::size_t message_payload_size(const MessageRecord& m) {
    if (m.exchange.size() > 255 || m.routing_key.size() > 255)
        throw std::length_error("store: exchange or routing key longer than 255 bytes");
    std::uint64_t n = message_fixed_size + std::uint64_t{m.queues.size()} * queue_entry_size + m.exchange.size() +
                      m.routing_key.size() + m.properties.size() + m.body.size();
    if (n > 0xFFFFFFF0u) throw std::length_error("store: message record larger than 4 GiB");
    return static_cast<std::size_t>(n);
}

void encode_message_payload(std::byte* out, const MessageRecord& m) {
    put_u64(out, m.publish_ms);
    put_u32(out + 8, m.ttl_ms);
    put_u8(out + 12, m.priority);
    put_u8(out + 13, m.flags);
    put_u8(out + 14, static_cast<std::uint8_t>(m.exchange.size()));
    put_u8(out + 15, static_cast<std::uint8_t>(m.routing_key.size()));
    put_u32(out + 16, static_cast<std::uint32_t>(m.queues.size()));
    put_u32(out + 20, static_cast<std::uint32_t>(m.properties.size()));
    put_u32(out + 24, static_cast<std::uint32_t>(m.body.size()));
    std::byte* p = out + message_fixed_size;
    for (const QueueEntryRef& q : m.queues) {
        put_u32(p, q.queue_id);
        put_u64(p + 4, q.queue_seq);
        p += queue_entry_size;
    }
    auto copy = [&p](const void* src, std::size_t n) {
        if (n) std::memcpy(p, src, n);
        p += n;
    };
    copy(m.exchange.data(), m.exchange.size());
    copy(m.routing_key.data(), m.routing_key.size());
    copy(m.properties.data(), m.properties.size());
    copy(m.body.data(), m.body.size());
}

std::optional<MessageRecordView> decode_message_payload(std::span<const std::byte> payload) {
    if (payload.size() < message_fixed_size) return std::nullopt;
    const std::byte* p = payload.data();
    MessageRecordView v;
    v.publish_ms = get_u64(p);
    v.ttl_ms = get_u32(p + 8);
    v.priority = get_u8(p + 12);
    v.flags = get_u8(p + 13);
    std::size_t exchange_size = get_u8(p + 14);
    std::size_t key_size = get_u8(p + 15);
    std::uint64_t queues = get_u32(p + 16);
    std::uint64_t properties_size = get_u32(p + 20);
    std::uint64_t body_size = get_u32(p + 24);
    std::uint64_t total =
        message_fixed_size + queues * queue_entry_size + exchange_size + key_size + properties_size + body_size;
    if (total != payload.size()) return std::nullopt;
    p += message_fixed_size;
    v.queues = QueueList(p, static_cast<std::uint32_t>(queues));
    p += queues * queue_entry_size;
    v.exchange = {reinterpret_cast<const char*>(p), exchange_size};
    p += exchange_size;
    v.routing_key = {reinterpret_cast<const char*>(p), key_size};
    p += key_size;
    v.properties = {p, static_cast<std::size_t>(properties_size)};
    p += properties_size;
    v.body = {p, static_cast<std::size_t>(body_size)};
    return v;
}

}  // namespace warren::store
