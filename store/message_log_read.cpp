// MessageLog::read: a record from the buffer or the file, through a read-ahead window so that
// reading a queue in order costs one pread per read_ahead bytes. Every file read is checked.
#include <fmt/format.h>

#include <algorithm>

#include "store/format.hpp"
#include "store/message_log.hpp"

namespace warren::store {

// Makes the whole record at `offset` of a written segment available; returns its first byte.
Result<const std::byte*> MessageLog::load(Segment& s, std::uint32_t offset, std::size_t read_ahead) {
    auto cached = [&](std::uint64_t n) {
        return read_segment_ == s.number && offset >= read_offset_ && offset + n <= read_offset_ + read_buffer_.size();
    };
    auto fill = [&](std::uint64_t n) -> Status {
        if (read_buffer_.capacity() > 4 * options_.read_ahead && n <= options_.read_ahead) read_buffer_ = Buffer();
        read_buffer_.resize(static_cast<std::size_t>(n));
        read_segment_ = s.number;
        read_offset_ = offset;
        auto got = read_fully(*s.file, {read_buffer_.data(), read_buffer_.size()}, offset);
        if (!got) {
            read_buffer_.clear();
            ++stats_.read_errors;
            return got.error();
        }
        read_buffer_.resize(*got);
        return {};
    };
    std::uint64_t available = s.written - offset;
    if (available < record_header_size)
        return make_error(std::errc::invalid_argument, fmt::format("store: no record at {:08x}:{}", s.number, offset));
    if (!cached(record_header_size)) {
        if (Status st = fill(std::min<std::uint64_t>(available, read_ahead)); !st) return st.error();
        if (!cached(record_header_size))
            return make_error(std::errc::io_error, fmt::format("store: {} is shorter than written", s.file->path()));
    }
    std::uint64_t payload = peek_record_header(read_buffer_.data() + (offset - read_offset_)).payload_size;
    std::uint64_t total = record_header_size + payload;
    if (payload > options_.max_record_size || total > available) {
        ++stats_.bad_records;
        return make_error(std::errc::illegal_byte_sequence,
                          fmt::format("store: {}: bad record length at offset {}", s.file->path(), offset));
    }
    if (!cached(total)) {
        if (Status st = fill(std::max<std::uint64_t>(total, std::min<std::uint64_t>(available, read_ahead)));
            !st)
            return st.error();
        if (!cached(total))
            return make_error(std::errc::io_error, fmt::format("store: {} is shorter than written", s.file->path()));
    }
    return read_buffer_.data() + (offset - read_offset_);
}

Result<MessageRecordView> MessageLog::read(Location location, std::size_t read_ahead) {
    if (read_ahead == 0) read_ahead = options_.read_ahead;
    read_ahead = std::max<std::size_t>(read_ahead, record_header_size);
    Segment* s = find(location_segment(location));
    std::uint32_t offset = location_offset(location);
    if (!s)
        return make_error(std::errc::no_such_file_or_directory,
                          fmt::format("store: segment {:08x} is gone", location_segment(location)));
    if (offset < file_header_size || offset >= s->size())
        return make_error(std::errc::invalid_argument, fmt::format("store: no record at {:08x}:{}", s->number, offset));
    const std::byte* record;
    bool from_file = offset < s->written;
    if (from_file) {
        auto loaded = load(*s, offset, read_ahead);
        if (!loaded) return loaded.error();
        record = *loaded;
    } else {
        // Buffered by this loop turn: our own bytes, laid out by append().
        std::size_t at = offset - s->written;
        if (at + record_header_size > s->pending.size())
            return make_error(std::errc::invalid_argument,
                              fmt::format("store: no record at {:08x}:{}", s->number, offset));
        record = s->pending.data() + at;
        if (at + record_header_size + peek_record_header(record).payload_size > s->pending.size())
            return make_error(std::errc::invalid_argument,
                              fmt::format("store: no record at {:08x}:{}", s->number, offset));
    }
    RecordHeader h = peek_record_header(record);
    bool good = has_record_magic(record) && h.type == RecordType::Message &&
                (!from_file || record_checksum_ok(record, h.payload_size));
    std::optional<MessageRecordView> view;
    if (good) view = decode_message_payload({record + record_header_size, h.payload_size});
    if (!view) {
        ++stats_.bad_records;
        std::string line = fmt::format("store: {}: bad record at offset {}", path_of(s->number, "seg"), offset);
        warn(line);
        return make_error(std::errc::illegal_byte_sequence, std::move(line));
    }
    return *view;
}

}  // namespace warren::store
