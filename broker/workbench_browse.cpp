// See workbench_browse.hpp.
#include "broker/workbench_browse.hpp"

#include <fmt/format.h>

#include <charconv>

#include "broker/channel.hpp"
#include "broker/connection.hpp"
#include "protocol/utf8.hpp"

namespace warren::broker::workbench {

namespace {
constexpr std::uint64_t process_key_bit = std::uint64_t{1} << 63;

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}
}  // namespace

std::uint64_t queue_key(const Queue& q) {
    return q.stored_id() ? q.stored_id() : (process_key_bit | q.id());
}

std::string to_string(const MessageHandle& h) {
    return fmt::format("{}-{}", h.queue_key, h.seq);
}

std::optional<MessageHandle> parse_handle(std::string_view text) {
    auto dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto key = parse_u64(text.substr(0, dash));
    auto seq = parse_u64(text.substr(dash + 1));
    if (!key || !seq) return std::nullopt;
    return MessageHandle{*key, *seq};
}

std::string to_string(const ReadyMessages::Cursor& c) {
    if (c.done) return "end";
    if (c.level == 0xFFFF) return "";
    return fmt::format("{}.{}", c.level, c.after_seq);
}

std::optional<ReadyMessages::Cursor> parse_cursor(std::string_view text) {
    if (text.empty()) return ReadyMessages::Cursor{};
    if (text == "end") return ReadyMessages::Cursor{0, 0, true};
    auto dot = text.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    auto level = parse_u64(text.substr(0, dot));
    auto seq = parse_u64(text.substr(dot + 1));
    if (!level || !seq || *level > 255) return std::nullopt;
    return ReadyMessages::Cursor{static_cast<std::uint16_t>(*level), *seq, false};
}

BodyPreview preview_body(std::span<const std::byte> body, std::size_t max_bytes) {
    BodyPreview p;
    p.size = body.size();
    std::span<const std::byte> shown = body.first(std::min(body.size(), max_bytes));
    p.truncated = shown.size() < body.size();
    std::string_view text(reinterpret_cast<const char*>(shown.data()), shown.size());
    // A cut may split a UTF-8 sequence: up to three trailing bytes may be an incomplete one.
    std::size_t valid = text.size();
    if (p.truncated)
        for (std::size_t back = 0; back < 4 && back <= text.size(); ++back)
            if (protocol::is_valid_utf8(text.substr(0, text.size() - back))) {
                valid = text.size() - back;
                break;
            }
    if (protocol::is_valid_utf8(text.substr(0, valid))) {
        p.text.assign(text.substr(0, valid));
        return p;
    }
    p.is_text = false;
    p.text.reserve(shown.size() * 2);
    for (std::byte b : shown) p.text += fmt::format("{:02x}", static_cast<unsigned>(b));
    return p;
}

protocol::BasicProperties BrowsedMessage::properties() const {
    auto p = protocol::decode_properties(properties_bytes);
    return p ? *p : protocol::BasicProperties{};
}

BrowsedMessage describe(const Queue& q, const Message& m, std::uint64_t seq, std::uint8_t priority,
                        std::uint32_t delivery_count, std::size_t max_body_bytes) {
    BrowsedMessage b;
    b.handle = MessageHandle{queue_key(q), seq};
    b.priority = priority;
    b.delivery_count = delivery_count;
    b.redelivered = delivery_count > 0;
    b.persistent = m.is_persistent();
    b.exchange = m.exchange();
    b.routing_key = m.routing_key();
    const std::span<const std::byte> props = m.properties();
    b.properties_bytes.assign(props.begin(), props.end());
    if (m.has_headers()) b.headers = m.decoded_properties().headers.to_table();
    b.body = preview_body(m.body(), max_body_bytes);
    return b;
}

BrowsePage browse_ready(const Queue& q, const BrowseOptions& o) {
    BrowsePage page;
    page.ready = q.message_count();
    const std::size_t count = std::min(o.count, BrowseOptions::max_page);
    std::size_t budget = o.scan_budget ? o.scan_budget : std::max<std::size_t>(1024, 16 * count);
    std::size_t paged_reads = 0;
    ReadyMessages::Cursor from = o.from;
    // Refusing a message (the page is full, or enough was read from disk) stops the walk
    // before it: the next page starts with it.
    page.next = q.ready().walk(from, budget, [&](const ReadyMessages::Entry& e) {
        if (page.messages.size() >= count) return false;
        if (!e.message && paged_reads >= o.max_paged_reads) return false;
        if (!e.message) ++paged_reads;
        MessageRef m = q.peek(e);
        if (!m) {
            BrowsedMessage gone;
            gone.handle = MessageHandle{queue_key(q), e.seq};
            gone.readable = false;
            gone.paged_out = true;
            if (o.filter.empty()) page.messages.push_back(std::move(gone));
            return true;
        }
        if (!o.filter.matches(*m)) return true;
        BrowsedMessage b = describe(q, *m, e.seq, e.priority, e.delivery_count, o.max_body_bytes);
        b.paged_out = !e.message;
        page.messages.push_back(std::move(b));
        return true;
    });
    return page;
}

std::optional<BrowsedMessage> find_ready(const Queue& q, const MessageHandle& h, std::size_t max_body_bytes) {
    if (h.queue_key != queue_key(q)) return std::nullopt;
    auto e = q.ready().find(h.seq);
    if (!e) return std::nullopt;
    MessageRef m = q.peek(*e);
    if (!m) return std::nullopt;
    BrowsedMessage b = describe(q, *m, e->seq, e->priority, e->delivery_count, max_body_bytes);
    b.paged_out = !e->message;
    return b;
}

UnackedPage browse_unacked(const Queue& q, std::span<const Channel* const> channels, std::size_t offset,
                           std::size_t count, std::size_t max_body_bytes) {
    UnackedPage page;
    count = std::min(count, BrowseOptions::max_page);
    for (const Channel* ch : channels) {
        if (page.more) break;
        ch->for_each_unacked(
            q.id(), [&](std::uint64_t tag, const QueuedMessage& m, std::string_view consumer, TimePoint delivered_at) {
                if (page.skipped < offset) {
                    ++page.skipped;
                    return true;
                }
                if (page.messages.size() >= count) {
                    page.more = true;
                    return false;
                }
                UnackedMessage u;
                u.message = describe(q, *m.message, m.seq(), m.message->priority(), m.delivery_count(), max_body_bytes);
                // Delivered now, so a redelivery if it comes back: as the consumer saw it.
                u.connection_id = ch->connection().id();
                u.channel = ch->id();
                u.consumer_tag = consumer;
                u.delivery_tag = tag;
                u.delivered_at = delivered_at;
                page.messages.push_back(std::move(u));
                return true;
            });
    }
    return page;
}

}  // namespace warren::broker::workbench
