// The dead-letter workbench's browse: a page of a queue's ready messages (or of its unacked
// deliveries) with properties, headers and a body preview, read without taking anything: no
// message moves, none is marked redelivered, a paged-out one is read from the log as a copy.
// Bounded work per call (a page, a scan budget), so a huge queue never holds up the loop.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/queue.hpp"
#include "broker/workbench_filter.hpp"
#include "protocol/basic_properties.hpp"
#include "protocol/field_table.hpp"

namespace warren::broker {
class Channel;
}

namespace warren::broker::workbench {

// Names a ready message for a later redrive or delete: the queue (its stored id, which lasts
// across restarts, or else its id in this process) and the message's seq there, which a
// requeue keeps. A handle whose message is gone names nothing (it is never reused).
struct MessageHandle {
    std::uint64_t queue_key = 0;
    std::uint64_t seq = 0;
    bool operator==(const MessageHandle&) const = default;
};
std::uint64_t queue_key(const Queue& queue);
std::string to_string(const MessageHandle& handle);  // "<queue key>-<seq>"
std::optional<MessageHandle> parse_handle(std::string_view text);

// Page cursors as text: "" is the start, "end" the end, else "<priority level>.<seq>".
std::string to_string(const ReadyMessages::Cursor& cursor);
std::optional<ReadyMessages::Cursor> parse_cursor(std::string_view text);

// The body as text when it is valid UTF-8, else as hex; cut to `max_bytes` of the body.
struct BodyPreview {
    std::string text;
    bool is_text = true;
    bool truncated = false;
    std::uint64_t size = 0;  // the whole body
};
BodyPreview preview_body(std::span<const std::byte> body, std::size_t max_bytes);

struct BrowsedMessage {
    MessageHandle handle;
    std::uint8_t priority = 0;
    bool redelivered = false;
    std::uint32_t delivery_count = 0;
    bool paged_out = false;  // read from the message log for this look
    bool readable = true;    // false: its record could not be read (nothing below is set)
    bool persistent = false;
    std::string exchange;  // as published (or dead-lettered) to this queue
    std::string routing_key;
    std::vector<std::byte> properties_bytes;  // encoded, as the message carries them
    protocol::FieldTable headers;             // decoded, owned (x-death, x-first-death-*, the app's own)
    BodyPreview body;
    // The properties, viewing properties_bytes (valid while this object lives).
    protocol::BasicProperties properties() const;
};

struct BrowseOptions {
    ReadyMessages::Cursor from;  // where the page starts
    std::size_t count = 50;      // messages in the page, at most max_page
    std::size_t max_body_bytes = 4096;
    MessageFilter filter;  // only matching messages
    // Slots looked at per call, tombstones and filtered-out messages included (0: 16 per
    // message asked for, at least 1,024); at most max_paged_reads paged-out messages are read.
    std::size_t scan_budget = 0;
    std::size_t max_paged_reads = 256;
    static constexpr std::size_t max_page = 1000;
};

struct BrowsePage {
    std::vector<BrowsedMessage> messages;
    ReadyMessages::Cursor next;  // next.done: nothing after this page
    std::size_t ready = 0;       // the queue's ready messages now
};

// Ready messages in delivery order (highest priority first, then oldest first).
BrowsePage browse_ready(const Queue& queue, const BrowseOptions& options);

// An unacked delivery of the queue, with the channel and consumer that hold it.
struct UnackedMessage {
    BrowsedMessage message;  // handle.seq is its seq; it cannot be redriven while unacked
    std::uint64_t connection_id = 0;
    std::uint16_t channel = 0;
    std::string consumer_tag;  // "" for basic.get
    std::uint64_t delivery_tag = 0;
    TimePoint delivered_at{};
};
struct UnackedPage {
    std::vector<UnackedMessage> messages;
    std::size_t skipped = 0;  // deliveries before `offset`
    bool more = false;        // there are more after this page
};
// The queue's unacked deliveries held by these channels (the caller lists a vhost's channels),
// channel by channel in delivery-tag order, from `offset`; the work is the number of
// unacked deliveries on those channels.
UnackedPage browse_unacked(const Queue& queue, std::span<const Channel* const> channels, std::size_t offset,
                           std::size_t count, std::size_t max_body_bytes);

// One message as browse shows it (also for a single message looked up by handle).
BrowsedMessage describe(const Queue& queue, const Message& message, std::uint64_t seq, std::uint8_t priority,
                        std::uint32_t delivery_count, std::size_t max_body_bytes);
// The ready message a handle names, or nullopt if it is no longer ready in this queue.
std::optional<BrowsedMessage> find_ready(const Queue& queue, const MessageHandle& handle, std::size_t max_body_bytes);

}  // namespace warren::broker::workbench
