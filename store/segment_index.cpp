// See segment_index.hpp.
#include "store/segment_index.hpp"

#include <fmt/format.h>

#include <cstring>
#include <stdexcept>

#include "store/bytes.hpp"
#include "store/format.hpp"

namespace warren::store {

void begin_index(Buffer& payload) {
    payload.clear();
    std::memset(payload.extend(index_payload_head), 0, index_payload_head);
}

void append_index_entry(Buffer& out, const IndexRecord& r, std::span<const std::byte> queues) {
    std::byte* p = out.extend(index_entry_size + queues.size());
    put_u32(p, r.offset);
    put_u32(p + 4, r.size);
    put_u32(p + 8, r.body_size);
    put_u32(p + 12, r.ttl_ms);
    put_u64(p + 16, r.publish_ms);
    put_u8(p + 24, r.priority);
    put_u8(p + 25, r.flags);
    put_u16(p + 26, 0);
    put_u32(p + 28, static_cast<std::uint32_t>(queues.size() / queue_entry_size));
    if (!queues.empty()) std::memcpy(p + index_entry_size, queues.data(), queues.size());
}

Status write_index_file(FileSystem& fs, const std::string& path, std::shared_ptr<File>& file, std::uint32_t number,
                        std::uint32_t epoch, std::uint64_t segment_size, std::uint64_t last_seq, std::uint32_t last_crc,
                        std::uint32_t record_count, Buffer& payload) {
    if (payload.size() < index_payload_head) throw std::logic_error("store: index payload without its head");
    std::byte* head = payload.data();
    put_u64(head, segment_size);
    put_u64(head + 8, last_seq);
    put_u32(head + 16, record_count);
    put_u32(head + 20, last_crc);
    std::byte file_header[file_header_size];
    encode_file_header(file_header, {FileKind::Index, number, epoch});
    std::byte record_header[record_header_size];
    RecordHeader h;
    h.payload_size = static_cast<std::uint32_t>(payload.size());
    h.epoch = epoch;
    h.seq = last_seq;
    h.type = RecordType::Index;
    seal_record_header(record_header, h, payload.span());
    auto opened = fs.open(path, OpenMode::CreateTruncate);
    if (!opened) return opened.error();
    file = std::move(*opened);
    iovec parts[3] = {
        {file_header, file_header_size}, {record_header, record_header_size}, {payload.data(), payload.size()}};
    return write_fully(*file, parts, 0);
}

std::optional<IndexSummary> read_index(std::span<const std::byte> bytes, std::uint32_t number,
                                       std::uint64_t segment_size, std::uint32_t max_record_size,
                                       const std::function<void(const IndexRecord&)>& each, std::string& why) {
    if (bytes.size() < file_header_size + record_header_size + index_payload_head) {
        why = "index too short";
        return std::nullopt;
    }
    auto header = decode_file_header(bytes.first(file_header_size));
    if (!header || header->kind != FileKind::Index || header->number != number) {
        why = "bad index header";
        return std::nullopt;
    }
    if (header->version != format_version_of(FileKind::Index)) {
        why = fmt::format("index of format version {}", header->version);
        return std::nullopt;
    }
    const std::byte* record = bytes.data() + file_header_size;
    RecordHeader h = peek_record_header(record);
    const std::size_t payload_size = bytes.size() - file_header_size - record_header_size;
    if (!has_record_magic(record) || h.type != RecordType::Index || h.payload_size != payload_size ||
        !record_checksum_ok(record, payload_size)) {
        why = "index record fails its checks";
        return std::nullopt;
    }
    const std::byte* p = record + record_header_size;
    const std::byte* end = p + payload_size;
    IndexSummary summary{get_u64(p), get_u64(p + 8), get_u32(p + 20), 0};
    const std::uint32_t count = get_u32(p + 16);
    if (summary.segment_size != segment_size) {
        why = fmt::format("the segment is {} bytes, its index describes {}", segment_size, summary.segment_size);
        return std::nullopt;
    }
    p += index_payload_head;
    // The records must tile the segment exactly, from its header to its end, each big enough for
    // what the entry says is in it: anything else is not an index of this segment.
    auto walk = [&](bool emit) {
        const std::byte* q = p;
        std::uint64_t next = file_header_size;
        for (std::uint32_t i = 0; i < count; ++i) {
            if (static_cast<std::size_t>(end - q) < index_entry_size) return false;
            IndexRecord r;
            r.offset = get_u32(q);
            r.size = get_u32(q + 4);
            r.body_size = get_u32(q + 8);
            r.ttl_ms = get_u32(q + 12);
            r.publish_ms = get_u64(q + 16);
            r.priority = get_u8(q + 24);
            r.flags = get_u8(q + 25);
            const std::uint32_t queues = get_u32(q + 28);
            q += index_entry_size;
            if (queues > static_cast<std::size_t>(end - q) / queue_entry_size) return false;
            const std::uint64_t least =
                record_header_size + message_fixed_size + std::uint64_t{queues} * queue_entry_size + r.body_size;
            if (r.offset != next || r.size < least || r.size - record_header_size > max_record_size) return false;
            summary.last_offset = r.offset;
            next += r.size;
            r.queues = QueueList(q, queues);
            q += std::size_t{queues} * queue_entry_size;
            if (emit) each(r);
        }
        return count != 0 && q == end && next == summary.segment_size;
    };
    if (!walk(false)) {
        why = "index does not add up";
        return std::nullopt;
    }
    walk(true);
    return summary;
}

}  // namespace warren::store
