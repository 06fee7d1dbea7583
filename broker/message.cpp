// See message.hpp.
#include "broker/message.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace warren::broker {

namespace {
std::size_t g_live_bytes = 0;
std::size_t g_live_count = 0;
}  // namespace

std::size_t live_message_bytes() { return g_live_bytes; }
std::size_t live_message_count() { return g_live_count; }

std::optional<std::uint64_t> parse_expiration(std::string_view text) {
    if (text.empty() || text.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

MessageRef Message::create(std::string_view exchange, std::string_view routing_key,
                           std::span<const std::byte> properties, std::uint64_t body_size) {
    auto props = protocol::decode_properties(properties);
    if (!props) return {};
    // Exchange names and routing keys are shortstrs on the wire, so they fit in 255 bytes.
    if (exchange.size() > 255 || routing_key.size() > 255) return {};
    if (body_size > max_body_size || properties.size() > max_properties_size) return {};
    std::size_t size = sizeof(Message) + properties.size() + body_size;
    void* memory = std::malloc(size);
    if (!memory) throw std::bad_alloc();
    auto* m = new (memory) Message();
    m->address_ = MessageAddress::acquire(exchange, routing_key);
    m->properties_size_ = static_cast<std::uint32_t>(properties.size()) & 0xFFFFFF;
    m->body_size_ = static_cast<std::uint32_t>(body_size) & 0x3FFFFFFF;
    auto* out = reinterpret_cast<std::byte*>(m + 1);
    if (!properties.empty()) std::memcpy(out, properties.data(), properties.size());

    using protocol::property_flag::delivery_mode;
    using protocol::property_flag::expiration;
    using protocol::property_flag::priority;
    if (props->has(priority)) m->priority_ = props->priority;
    m->persistent_ = props->has(delivery_mode) && props->delivery_mode == 2;
    if (props->has(expiration)) {
        if (auto ms = parse_expiration(props->expiration); ms && *ms <= 0xFFFFFFFFull) {
            m->has_expiration_ = true;
            m->expiration_ms_ = static_cast<std::uint32_t>(*ms);
        }
    }
    g_live_bytes += size;
    ++g_live_count;
    return MessageRef(m);
}

protocol::BasicProperties Message::decoded_properties() const {
    // The properties were validated at creation, so this cannot fail.
    return *protocol::decode_properties(properties());
}

void Message::release() {
    if (--refs_ == 0) {
        g_live_bytes -= allocation_size();
        --g_live_count;
        address_->release();
        this->~Message();
        std::free(this);
    }
}

MessageRef copy_with_properties(const Message& m, const protocol::BasicProperties& props, std::string_view exchange,
                                std::string_view routing_key) {
    protocol::ByteBuffer bytes;
    protocol::encode_properties(bytes, props);
    MessageRef copy = Message::create(exchange, routing_key, bytes.span(), m.body_size());
    if (copy && m.body_size()) std::memcpy(copy->body_data(), m.body().data(), m.body_size());
    return copy;
}

MessageRef without_header(const Message& m, std::string_view key) {
    protocol::BasicProperties props = m.decoded_properties();
    protocol::FieldTable headers = props.headers.to_table();
    headers.erase(key);
    protocol::ByteBuffer header_bytes = protocol::encode_table_body(headers);
    props.headers = protocol::TableView::trusted(header_bytes.span());
    return copy_with_properties(m, props, m.exchange(), m.routing_key());
}

}  // namespace warren::broker
