// See message.hpp.
#include "broker/message.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace warren::broker {

namespace {
std::size_t g_live_bytes = 0;
std::size_t g_live_count = 0;

// Freed message blocks of 1,033 bytes to 8 KiB, kept for the next message of the same size:
// glibc's per-thread cache takes blocks up to 1,032 bytes only, and a 1 KiB message published
// into a stream (freed as newer ones pass it) cost its bins and chunk splitting and merging
// (_int_malloc, _int_free, unlink_chunk: 6-7% of the broker's CPU at stream-publish-1k). One
// bin per 16 bytes (glibc's granularity, so no block is larger than malloc would make it), most
// recently freed first (the one likeliest in the cache), at most 256 KiB in all. One thread owns
// every Message (the event loop). Off under AddressSanitizer, which must see every free.
#if defined(__SANITIZE_ADDRESS__)  // what g++ defines with -fsanitize=address (as the test checks)
constexpr bool recycle_blocks = false;
#else
constexpr bool recycle_blocks = true;
#endif

constexpr std::size_t recycle_min = 1033, recycle_max = 8192, recycle_step = 16;
constexpr std::size_t recycle_bins = (recycle_max - recycle_min) / recycle_step + 1;
constexpr std::size_t recycle_limit = std::size_t{256} << 10;

struct FreeBlock {
    FreeBlock* next;
};
FreeBlock* g_bins[recycle_bins] = {};
std::size_t g_recycled_bytes = 0;

// The bin of a block of `size` bytes (rounded up to recycle_step), or recycle_bins if none.
std::size_t bin_of(std::size_t size) {
    if (!recycle_blocks || size < recycle_min || size > recycle_max) return recycle_bins;
    return (size - recycle_min) / recycle_step;
}
std::size_t bin_size(std::size_t bin) {
    return recycle_min + bin * recycle_step + (recycle_step - 1);
}

void* allocate_block(std::size_t size) {
    const std::size_t bin = bin_of(size);
    if (bin == recycle_bins) return std::malloc(size);
    if (FreeBlock* b = g_bins[bin]) {
        g_bins[bin] = b->next;
        g_recycled_bytes -= bin_size(bin);
        return b;
    }
    return std::malloc(bin_size(bin));
}

void free_block(void* p, std::size_t size) {
    const std::size_t bin = bin_of(size);
    if (bin == recycle_bins || g_recycled_bytes + bin_size(bin) > recycle_limit) {
        std::free(p);
        return;
    }
    auto* b = static_cast<FreeBlock*>(p);
    b->next = g_bins[bin];
    g_bins[bin] = b;
    g_recycled_bytes += bin_size(bin);
}
}  // namespace

std::size_t live_message_bytes() {
    return g_live_bytes;
}
std::size_t live_message_count() {
    return g_live_count;
}

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
    void* memory = allocate_block(size);
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
        const std::size_t size = allocation_size();
        g_live_bytes -= size;
        --g_live_count;
        address_->release();
        this->~Message();
        free_block(this, size);
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
