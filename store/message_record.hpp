// A message as the store keeps it: the broker's fields (opaque here, except the queue list) in
// one record, stored once however many queues it reached. The payload layout starts with every
// length, so a reader checks that the parts add up to the record before touching them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace warren::store {

inline constexpr std::uint32_t no_ttl = 0xFFFFFFFF;
namespace message_flags {
inline constexpr std::uint8_t persistent = 1;
}

// One queue the message is in, and its position there (the broker's per-queue sequence).
struct QueueEntryRef {
    std::uint32_t queue_id = 0;
    std::uint64_t queue_seq = 0;
    bool operator==(const QueueEntryRef&) const = default;
};

struct MessageRecord {
    std::uint64_t publish_ms = 0;  // unix time
    std::uint32_t ttl_ms = no_ttl;
    std::uint8_t priority = 0;
    std::uint8_t flags = 0;
    std::string_view exchange;     // at most 255 bytes
    std::string_view routing_key;  // at most 255 bytes
    std::span<const std::byte> properties;
    std::span<const std::byte> body;
    std::span<const QueueEntryRef> queues;
};

// The queue list inside a stored record.
class QueueList {
public:
    QueueList() = default;
    explicit QueueList(const std::byte* data, std::uint32_t count) : data_(data), count_(count) {}
    std::uint32_t size() const { return count_; }
    QueueEntryRef operator[](std::uint32_t i) const;

private:
    const std::byte* data_ = nullptr;
    std::uint32_t count_ = 0;
};

// A stored message, viewing the bytes it was read from.
struct MessageRecordView {
    std::uint64_t publish_ms = 0;
    std::uint32_t ttl_ms = no_ttl;
    std::uint8_t priority = 0;
    std::uint8_t flags = 0;
    std::string_view exchange;
    std::string_view routing_key;
    std::span<const std::byte> properties;
    std::span<const std::byte> body;
    QueueList queues;
};

// Payload: publish_ms u64, ttl_ms u32, priority u8, flags u8, exchange length u8, routing-key
// length u8, queue count u32, properties length u32, body length u32; then queue count times
// {queue_id u32, queue_seq u64}; then exchange, routing key, properties and body bytes.
inline constexpr std::size_t message_fixed_size = 28;
inline constexpr std::size_t queue_entry_size = 12;

// Throws std::length_error for an exchange or routing key over 255 bytes, or a record
// whose size does not fit in 32 bits (the broker's message size limit rules both out).
std::size_t message_payload_size(const MessageRecord& m);
void encode_message_payload(std::byte* out, const MessageRecord& m);
// nullopt unless the lengths add up exactly to the payload.
std::optional<MessageRecordView> decode_message_payload(std::span<const std::byte> payload);

}  // namespace warren::store
