// A sealed segment's index (NNNNNNNN.idx): for each record its offset, size, body size, publish
// time, TTL, priority, flags and queue list, without the properties and body. Written once the
// segment is sealed and whole; after a crash, recovery reads it instead of the segment's bodies,
// but only when it proves itself (header, checksum, records that tile the segment exactly) and
// the segment is exactly the size it describes. Otherwise the segment is read as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "store/buffer.hpp"
#include "store/file_system.hpp"
#include "store/message_record.hpp"
#include "store/result.hpp"

namespace warren::store {

// Entry: offset u32, record size u32, body size u32, ttl u32, publish time u64, priority u8,
// flags u8, reserved u16, queue count u32, then per queue {queue id u32, queue seq u64}.
inline constexpr std::size_t index_entry_size = 32;
// Payload before the entries: segment size u64, the last record's seq u64, record count u32,
// the last record's CRC u32 (with its seq, what ties the index to this segment's content).
inline constexpr std::size_t index_payload_head = 24;

struct IndexRecord {
    std::uint32_t offset = 0;
    std::uint32_t size = 0;  // header and payload
    std::uint32_t body_size = 0;
    std::uint32_t ttl_ms = no_ttl;
    std::uint64_t publish_ms = 0;
    std::uint8_t priority = 0;
    std::uint8_t flags = 0;
    QueueList queues;
};

// An index payload is built in place: begin_index() leaves room for the head, entries follow,
// and write_index_file() fills the head in. `queues` is the record's queue list as encoded
// (12 bytes a queue).
void begin_index(Buffer& payload);
void append_index_entry(Buffer& payload, const IndexRecord& r, std::span<const std::byte> queues);

// Writes the whole .idx file at `path` (created or truncated): file header, one Index record
// whose payload is `payload` (begun by begin_index). `file` gets the file, for syncing.
Status write_index_file(FileSystem& fs, const std::string& path, std::shared_ptr<File>& file, std::uint32_t number,
                        std::uint32_t epoch, std::uint64_t segment_size, std::uint64_t last_seq, std::uint32_t last_crc,
                        std::uint32_t record_count, Buffer& payload);

struct IndexSummary {
    std::uint64_t segment_size = 0;
    std::uint64_t last_seq = 0;
    std::uint32_t last_crc = 0;
    std::uint32_t last_offset = 0;  // of the last record
};

// Checks an .idx file's bytes against segment `number` of `segment_size` bytes and then calls
// `each` for every entry, in order; nullopt (and `why` set) when anything fails its checks,
// before any entry is handed out.
std::optional<IndexSummary> read_index(std::span<const std::byte> bytes, std::uint32_t number,
                                       std::uint64_t segment_size, std::uint32_t max_record_size,
                                       const std::function<void(const IndexRecord&)>& each, std::string& why);

}  // namespace warren::store
