// The log of a stream queue (x-queue-type stream): messages get consecutive offsets and stay
// after they are read; each consumer has its own cursor. Bodies are shared: a message in memory
// is one Message for every consumer, and one stored in the vhost's message log is read back
// once for the consumers reading near it. Retention drops whole segments from the head.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/message.hpp"
#include "broker/stream_args.hpp"
#include "broker/stream_group.hpp"
#include "store/message_log.hpp"

namespace warren::broker {

class Channel;
class Queue;
struct Consumer;

struct StreamSettings {
    std::optional<std::uint64_t> max_age_ms;  // x-max-age
    std::optional<std::uint64_t> max_bytes;   // x-max-length-bytes
    std::uint64_t segment_bytes = default_stream_segment_bytes;
};

class Stream {
public:
    Stream(Queue& queue, StreamSettings settings);

    std::uint64_t first_offset() const { return entries_.empty() ? next_ : entries_.front().offset; }
    std::uint64_t next_offset() const { return next_; }
    std::size_t size() const { return entries_.size(); }
    std::uint64_t bytes() const { return total_bytes_; }
    std::size_t segment_count() const { return segments_.size(); }
    const StreamSettings& settings() const { return settings_; }

    // A published message; it is stored (when the queue is) before this is called.
    void append(const MessageRef& message);
    // Recovery: an entry of the message log, in any order (sorted on first use).
    void restore(std::uint64_t offset, std::uint64_t location, std::uint32_t size, std::int64_t timestamp_ms);

    // Where a new consumer starts.
    std::uint64_t resolve(const OffsetSpec& spec);
    // Delivers to the queue's consumers with credit, at most `budget` messages (or skipped
    // by a filter); whether more could be delivered.
    bool dispatch(std::size_t budget);
    // A consumer acked its delivery of `offset`: for a named consumer, the offset it has
    // processed everything up to is remembered (and written to the definitions log).
    // `tag` is the delivery's tag on the consumer's channel; `consumer` is null once cancelled.
    void on_delivered(Consumer& consumer, std::uint64_t offset, std::uint64_t tag);
    void on_acked(Consumer* consumer, std::uint64_t offset, const Channel& channel, std::uint64_t tag);
    // A delivery went back unacked (its channel closed, a consumer timeout, a nack): nothing
    // moves in the log, but a group hands the partition on and the next owner reads it again.
    void on_returned(const Channel& channel, std::uint64_t tag);
    void on_consumer_added(Consumer& consumer);
    void on_consumer_removed(Consumer& consumer);
    // Consumer groups reading this partition (x-stream-group).
    const std::vector<StreamGroup>& groups() const { return groups_; }
    // The last offset acked by consumers named `name` (everything before it acked too).
    std::optional<std::uint64_t> tracked_offset(const std::string& name) const;
    void set_tracked_offset(const std::string& name, std::uint64_t offset) { tracked_[name] = offset; }
    const std::unordered_map<std::string, std::uint64_t>& tracked_offsets() const { return tracked_; }
    // Writes the offsets that moved since the last time (a timer calls it; so does shutdown).
    void flush_tracked_offsets();

    // Moves old bodies out of memory once they are written (end of turn).
    void page_out();
    // The queue is deleted: its stored messages are let go.
    void forget_stored();
    void checkpoint(std::vector<store::RecoveredEntry>& out, std::uint32_t queue_id) const;

private:
    struct Entry {
        std::uint64_t offset = 0;
        std::uint64_t location = 0;  // in the vhost's message log; 0: not stored
        std::int64_t timestamp_ms = 0;
        std::uint32_t size = 0;  // body bytes (what x-max-length-bytes counts)
        MessageRef message;      // null while it is only on disk
    };
    struct Segment {
        std::uint64_t first_offset = 0;
        std::uint64_t bytes = 0;
        std::int64_t last_timestamp_ms = 0;
    };

    std::size_t index_of(std::uint64_t offset);  // entries_.size() when gone or not yet written
    MessageRef load(std::size_t index);
    bool passes(const Consumer& consumer, const Message& message) const;
    void sort_restored();
    void add_to_segments(std::uint64_t offset, std::uint32_t size, std::int64_t timestamp_ms);
    void apply_retention();
    void commit(const std::string& name, std::uint64_t offset);
    StreamGroup* find_group(std::string_view name);
    void rebalance(StreamGroup& group, const Consumer* leaving = nullptr);
    void try_handover(StreamGroup& group);
    void settle_group_delivery(StreamGroup& group, const Channel& channel, std::uint64_t tag, StreamGroup::State to);
    std::uint64_t first_of_timestamp(std::int64_t ms);

    Queue& queue_;
    StreamSettings settings_;
    std::deque<Entry> entries_;
    std::deque<Segment> segments_;
    std::uint64_t next_ = 0;
    std::uint64_t total_bytes_ = 0;
    bool unsorted_ = false;
    // "last" starts at the last chunk: the messages appended at one instant (one read of a
    // publisher's socket), as RabbitMQ's osiris writes a batch as one chunk.
    std::uint64_t last_chunk_start_ = 0;
    std::int64_t last_append_tick_ = -1;
    // Read back from disk, kept so that consumers reading close together share them.
    struct Loaded {
        std::uint64_t offset = 0;
        std::uint32_t size = 0;
    };
    std::deque<Loaded> loaded_;
    std::uint64_t loaded_bytes_ = 0;
    std::unordered_map<std::string, std::uint64_t> tracked_;
    std::vector<std::string> tracked_dirty_;
    bool flush_scheduled_ = false;
    std::vector<StreamGroup> groups_;
};

}  // namespace warren::broker
