// Encoding and checking file and record headers.
#include "store/format.hpp"

#include <cstring>

#include "store/bytes.hpp"
#include "store/crc32c.hpp"

namespace warren::store {

std::uint16_t format_version_of(FileKind kind) {
    switch (kind) {
        case FileKind::Segment: return 3;  // written as 1 unless the file is reused
        case FileKind::Sidecar:
        case FileKind::Checkpoint: return 2;
        default: return 1;
    }
}

void encode_file_header(std::byte* out, const FileHeader& h) {
    std::memset(out, 0, file_header_size);
    put_u32(out, static_cast<std::uint32_t>(h.kind));
    // A segment is version 3 only in a reused file (its writer says so): version 1 describes the others.
    const std::uint16_t oldest = h.kind == FileKind::Segment ? 1 : format_version_of(h.kind);
    put_u16(out + 4, h.version ? h.version : oldest);
    put_u64(out + 8, h.number);
    put_u32(out + 16, h.epoch);
    put_u32(out + 28, crc32c(out, 28));
}

std::optional<FileHeader> decode_file_header(std::span<const std::byte> bytes) {
    if (bytes.size() < file_header_size) return std::nullopt;
    const std::byte* p = bytes.data();
    if (get_u32(p + 28) != crc32c(p, 28)) return std::nullopt;
    std::uint32_t magic = get_u32(p);
    if (magic != static_cast<std::uint32_t>(FileKind::Segment) &&
        magic != static_cast<std::uint32_t>(FileKind::Sidecar) &&
        magic != static_cast<std::uint32_t>(FileKind::MetaLog) &&
        magic != static_cast<std::uint32_t>(FileKind::Snapshot) &&
        magic != static_cast<std::uint32_t>(FileKind::Checkpoint) &&
        magic != static_cast<std::uint32_t>(FileKind::Index))
        return std::nullopt;
    FileHeader h;
    h.kind = static_cast<FileKind>(magic);
    h.version = get_u16(p + 4);
    h.number = get_u64(p + 8);
    h.epoch = get_u32(p + 16);
    return h;
}

namespace {

void encode_fixed(std::byte* out, const RecordHeader& h) {
    put_u32(out, record_magic);
    put_u32(out + 4, h.payload_size);
    put_u32(out + 12, h.epoch);
    put_u64(out + 16, h.seq);
    put_u8(out + 24, static_cast<std::uint8_t>(h.type));
    put_u8(out + 25, h.flags);
    put_u32(out + 26, h.segment);
    std::memset(out + 30, 0, 2);
}

}  // namespace

void seal_record(std::byte* out, const RecordHeader& h) {
    encode_fixed(out, h);
    std::uint32_t crc = crc32c(out + 4, 4);
    crc = crc32c(out + 12, record_header_size - 12 + h.payload_size, crc);
    put_u32(out + 8, crc);
}

void seal_record_header(std::byte* out, const RecordHeader& h, std::span<const std::byte> payload) {
    encode_fixed(out, h);
    std::uint32_t crc = crc32c(out + 4, 4);
    crc = crc32c(out + 12, record_header_size - 12, crc);
    crc = crc32c(payload, crc);
    put_u32(out + 8, crc);
}

RecordHeader peek_record_header(const std::byte* p) {
    RecordHeader h;
    h.payload_size = get_u32(p + 4);
    h.crc = get_u32(p + 8);
    h.epoch = get_u32(p + 12);
    h.seq = get_u64(p + 16);
    h.type = static_cast<RecordType>(get_u8(p + 24));
    h.flags = get_u8(p + 25);
    h.segment = get_u32(p + 26);
    return h;
}

bool has_record_magic(const std::byte* p) {
    return get_u32(p) == record_magic;
}

bool record_checksum_ok(const std::byte* record, std::size_t payload_size) {
    std::uint32_t crc = crc32c(record + 4, 4);
    crc = crc32c(record + 12, record_header_size - 12 + payload_size, crc);
    return crc == get_u32(record + 8);
}

}  // namespace warren::store
