// Where a message was published: its exchange and routing key, interned. Publishers repeat the
// same few (exchange, routing key) pairs, so every message holds a pointer to one shared copy
// instead of its own bytes (a 40-character queue name would otherwise be 40 bytes per stored
// message). Reference-counted without atomics: all broker state is on one thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace warren::broker {

class MessageAddress {
public:
    // The shared address for this pair, with one more reference; both at most 255 bytes.
    static MessageAddress* acquire(std::string_view exchange, std::string_view routing_key);
    void release();

    std::string_view exchange() const { return {data(), exchange_len_}; }
    std::string_view routing_key() const { return {data() + exchange_len_, key_len_}; }
    // Length-prefixed exchange, then the key: unique per pair, the table's key.
    std::string_view key() const { return {data() - 1, std::size_t{1} + exchange_len_ + key_len_}; }

    static std::size_t live_count();

private:
    MessageAddress() = default;
    const char* data() const { return reinterpret_cast<const char*>(this + 1) + 1; }

    std::uint32_t refs_ = 0;
    std::uint8_t exchange_len_ = 0;
    std::uint8_t key_len_ = 0;
    // followed by: exchange length octet, exchange, routing key
};

}  // namespace warren::broker
