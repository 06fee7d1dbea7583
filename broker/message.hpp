// A published message: immutable once its body is complete, reference-counted, and shared by
// every queue it reached, so fan-out never copies the body. Exchange, routing key, encoded
// properties and body live in one allocation with the header (one allocation per message).
// Reference counts are plain integers: all broker state belongs to one event-loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "broker/message_address.hpp"
#include "protocol/basic_properties.hpp"

namespace warren::broker {

class Message;

// Bytes held by live messages (headers, properties and bodies), for the memory watermark.
std::size_t live_message_bytes();
std::size_t live_message_count();

// An owning, intrusive reference to a Message.
class MessageRef {
public:
    MessageRef() = default;
    explicit MessageRef(Message* m) : m_(m) {}  // adopts one reference
    MessageRef(const MessageRef& o);
    MessageRef(MessageRef&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    MessageRef& operator=(MessageRef o) noexcept {
        std::swap(m_, o.m_);
        return *this;
    }
    ~MessageRef();

    Message* get() const { return m_; }
    Message* operator->() const { return m_; }
    Message& operator*() const { return *m_; }
    explicit operator bool() const { return m_ != nullptr; }
    void reset() { MessageRef().swap(*this); }
    // Gives up the reference without releasing it (the caller owns it now; MessageRef(m) adopts it back).
    Message* release() { return std::exchange(m_, nullptr); }
    void swap(MessageRef& o) noexcept { std::swap(m_, o.m_); }

private:
    Message* m_ = nullptr;
};

class Message {
public:
    // Allocates a message whose body (body_size bytes) is filled afterwards through
    // body_data(). nullopt-like empty ref if `properties` do not decode.
    static MessageRef create(std::string_view exchange, std::string_view routing_key,
                             std::span<const std::byte> properties, std::uint64_t body_size);

    std::string_view exchange() const { return address_->exchange(); }
    std::string_view routing_key() const { return address_->routing_key(); }
    std::span<const std::byte> properties() const { return {bytes(), properties_size_}; }
    std::span<const std::byte> body() const { return {body_start(), body_size_}; }
    std::uint64_t body_size() const { return body_size_; }
    // What a message can hold: a body of at most 512 MiB (max_message_size's bound) and encoded
    // properties under 16 MiB (a content header is one frame); create() refuses more.
    static constexpr std::uint64_t max_body_size = std::uint64_t{1} << 29;
    static constexpr std::size_t max_properties_size = (std::size_t{1} << 24) - 1;
    // Writable body, only while the message is being assembled from body frames.
    std::byte* body_data() { return const_cast<std::byte*>(body_start()); }

    // What the broker reads of the properties: the flags straight off their first two octets
    // (every valid property list has them), the rest decoded once at creation.
    std::uint16_t property_flags() const {
        const std::byte* b = bytes();
        return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[0]) << 8 | std::to_integer<unsigned>(b[1])) &
                                          protocol::property_flag::defined);
    }
    bool has_property(std::uint16_t flag) const { return (property_flags() & flag) != 0; }
    std::uint8_t priority() const { return static_cast<std::uint8_t>(priority_); }
    bool is_persistent() const { return persistent_; }
    bool has_headers() const { return has_property(protocol::property_flag::headers); }
    bool has_expiration_property() const { return has_expiration_; }
    // The expiration property in milliseconds; nullopt when absent, or when it is not a number
    // RabbitMQ accepts (at most 2^32-1 ms): such a publish is refused, so a stored message's
    // value is always valid.
    std::optional<std::uint64_t> expiration_ms() const {
        return has_expiration_ ? std::optional<std::uint64_t>(expiration_ms_) : std::nullopt;
    }
    // Decodes the properties again (views into this message).
    protocol::BasicProperties decoded_properties() const;

    // Where the message is in its vhost's message log (0: not stored). Set once, when it is
    // written for the durable queues it reached, before any queue hands it out.
    std::uint64_t store_location() const { return store_location_; }
    void set_store_location(std::uint64_t location) { store_location_ = location; }

    // Bytes this message occupies, for memory accounting.
    std::size_t memory_size() const { return allocation_size(); }

    void add_ref() { ++refs_; }
    void release();
    std::uint32_t ref_count() const { return refs_; }

private:
    Message() = default;
    const std::byte* bytes() const { return reinterpret_cast<const std::byte*>(this + 1); }
    const std::byte* body_start() const { return bytes() + properties_size_; }
    std::size_t allocation_size() const { return sizeof(Message) + properties_size_ + body_size_; }

    // 32 bytes: the header every message in memory pays, followed by the encoded properties and
    // the body. Packed because malloc rounds header + properties + body + 8 up to 16: at 40
    // bytes a 16 B body with no properties took an 80-byte chunk instead of 64, 16 MiB more
    // for a million queued messages (issue 15). The property flags are not kept: they are
    // the properties' first two octets.
    MessageAddress* address_ = nullptr;  // one reference held
    std::uint64_t store_location_ = 0;
    std::uint32_t refs_ = 1;
    std::uint32_t properties_size_ : 24 = 0;
    std::uint32_t priority_ : 8 = 0;
    std::uint32_t body_size_ : 30 = 0;  // up to max_body_size
    std::uint32_t persistent_ : 1 = 0;  // delivery mode 2
    std::uint32_t has_expiration_ : 1 = 0;
    std::uint32_t expiration_ms_ = 0;  // at most 2^32-1 ms, RabbitMQ's bound
};

static_assert(sizeof(Message) == 32);

inline MessageRef::MessageRef(const MessageRef& o) : m_(o.m_) {
    if (m_) m_->add_ref();
}
inline MessageRef::~MessageRef() {
    if (m_) m_->release();
}

// A new message with the same body and other properties, exchange and routing key (used
// where RabbitMQ rewrites a message: dead-lettering, BCC removal, direct reply-to). Copies
// the body: none of these is on the fast path.
MessageRef copy_with_properties(const Message& m, const protocol::BasicProperties& props, std::string_view exchange,
                                std::string_view routing_key);
// A copy of the message without one header (BCC before enqueue).
MessageRef without_header(const Message& m, std::string_view key);

// The expiration property as RabbitMQ reads it: a decimal string of milliseconds.
// nullopt for anything else (RabbitMQ refuses such a publish with 406).
std::optional<std::uint64_t> parse_expiration(std::string_view text);

}  // namespace warren::broker
