// The store's on-disk format, shared by segments (.seg), sidecars (.evt) and the meta log:
// a 32-byte file header, then records, each a 32-byte header and a payload. Everything is
// little-endian; docs/storage.md describes every field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace warren::store {

// Version 1: the first format. Version 2 (sidecars and checkpoints only): sidecars may hold
// Hold events, checkpoints carry each pair's hold deadline. Version 3 (segments only): a segment
// written into the file of a settled one (LogOptions::reuse_segments), so that what follows its
// own records may be that file's earlier records, told apart by the segment number every record
// carries. Files keep the oldest version that describes them, so a broker that knows only
// version 1 reads what it can (it leaves newer files alone, as the recovery rules say).
inline constexpr std::uint16_t format_version = 3;

// File header: magic u32, version u16, reserved u16, number u64 (segment number or meta
// generation), epoch u32, reserved 8 bytes, crc32c u32 of the 28 bytes before it.
inline constexpr std::size_t file_header_size = 32;

enum class FileKind : std::uint32_t {
    Segment = 0x47455357,     // "WSEG"
    Sidecar = 0x54564557,     // "WEVT"
    MetaLog = 0x474f4c57,     // "WLOG"
    Snapshot = 0x504e5357,    // "WSNP"
    Checkpoint = 0x504b4357,  // "WCKP"
    Index = 0x58444957,       // "WIDX"
};

// The version written into (and the newest read from) files of this kind.
std::uint16_t format_version_of(FileKind kind);

struct FileHeader {
    FileKind kind;
    std::uint64_t number = 0;
    std::uint32_t epoch = 0;
    std::uint16_t version = 0;  // 0 when encoding: format_version_of(kind)
};

void encode_file_header(std::byte* out, const FileHeader& header);
// nullopt when the magic, version or checksum is wrong.
std::optional<FileHeader> decode_file_header(std::span<const std::byte> bytes);

// Record header: magic u32, payload length u32, crc32c u32 (over the length field and then
// everything after the crc field: the rest of the header and the payload), epoch u32, seq u64,
// type u8, flags u8, segment u32 (the number of the segment a message record was written to; 0
// in other records and in records written before segments were reused), 2 reserved bytes (zero).
inline constexpr std::size_t record_header_size = 32;
inline constexpr std::uint32_t record_magic = 0x43455257;  // "WREC"

enum class RecordType : std::uint8_t {
    Message = 1,     // .seg: one message and the queues it is in
    Events = 2,      // .evt: deliver / return / ack events about messages of one segment
    Entry = 3,       // meta log: one opaque definitions record
    Snapshot = 4,    // meta snapshot: the opaque definitions as of a generation
    Checkpoint = 5,  // a message log's unsettled pairs at a clean shutdown
    Index = 6,       // .idx: what a sealed segment's records are, without their bodies
};

struct RecordHeader {
    std::uint32_t payload_size = 0;
    std::uint32_t crc = 0;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    RecordType type = RecordType::Message;
    std::uint8_t flags = 0;
    std::uint32_t segment = 0;
};

// Writes the header for a payload already in place at out + record_header_size, computing
// the checksum over it.
void seal_record(std::byte* out, const RecordHeader& header);
// The same for a payload elsewhere (gathered writes): header bytes only.
void seal_record_header(std::byte* out, const RecordHeader& header, std::span<const std::byte> payload);

// Reads the fixed fields; does not check the magic or the checksum.
RecordHeader peek_record_header(const std::byte* p);
bool has_record_magic(const std::byte* p);
// True when the checksum matches the header and payload (the payload follows the header).
bool record_checksum_ok(const std::byte* record, std::size_t payload_size);

}  // namespace warren::store
