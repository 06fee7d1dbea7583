// The recovery scanner: good records in order, bad regions skipped and reported.
#include "store/record_scanner.hpp"

#include <algorithm>
#include <cstring>

#include "store/bytes.hpp"

namespace warren::store {

RecordScanner::RecordScanner(File& file, std::uint64_t file_size, std::uint64_t start, std::uint32_t max_payload,
                             Buffer& window, std::size_t window_size)
    : file_(file),
      size_(file_size),
      pos_(std::min(start, file_size)),
      max_payload_(max_payload),
      window_(window),
      window_size_(std::max<std::size_t>(window_size, 2 * record_header_size)),
      good_end_(pos_),
      start_(pos_) {
    window_.clear();
}

std::optional<std::uint64_t> RecordScanner::data_end() {
    if (data_end_) return data_end_;
    std::uint64_t end = size_;
    while (end > start_) {
        std::size_t span = static_cast<std::size_t>(std::min<std::uint64_t>(window_size_, end - start_));
        const std::byte* p = load(end - span, span);
        if (!p) return std::nullopt;
        std::size_t i = span;
        while (i > 0 && p[i - 1] == std::byte{0}) --i;
        if (i > 0) {
            end -= span - i;
            break;
        }
        end -= span;
    }
    data_end_ = end;
    return end;
}

const std::byte* RecordScanner::load(std::uint64_t pos, std::size_t n) {
    if (read_failed_) return nullptr;
    if (pos >= window_offset_ && pos + n <= window_offset_ + window_.size())
        return window_.data() + (pos - window_offset_);
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, window_size_), size_ - pos));
    window_.resize(want);
    auto got = read_fully(file_, std::span<std::byte>(window_.data(), want), pos);
    if (!got || *got < n) {
        read_failed_ = true;
        read_error_ = got ? make_error(std::errc::io_error, "pread " + file_.path() + ": file shorter than its size")
                          : got.error();
        window_.clear();
        return nullptr;
    }
    window_.resize(*got);
    window_offset_ = pos;
    return window_.data();
}

std::optional<std::uint32_t> RecordScanner::good_record_at(std::uint64_t pos, bool require_newer) {
    if (size_ - pos < record_header_size) return std::nullopt;
    const std::byte* p = load(pos, record_header_size);
    if (!p || !has_record_magic(p)) return std::nullopt;
    RecordHeader h = peek_record_header(p);
    if (h.payload_size > max_payload_ || h.payload_size > size_ - pos - record_header_size) return std::nullopt;
    if (require_newer && h.seq <= last_seq_) return std::nullopt;
    if (segment_ != 0 && h.segment != 0 && h.segment != segment_) return std::nullopt;
    p = load(pos, record_header_size + h.payload_size);
    if (!p || !record_checksum_ok(p, h.payload_size)) return std::nullopt;
    return h.payload_size;
}

std::optional<std::uint64_t> RecordScanner::resync(std::uint64_t pos) {
    static constexpr std::byte first = std::byte{record_magic & 0xFF};
    // No magic (four non-zero bytes) ends in the zeros after the data: search up to its end.
    auto limit_end = data_end();
    if (!limit_end) return std::nullopt;
    const std::uint64_t end = *limit_end;
    std::uint64_t q = pos + 1;
    while (q + record_header_size <= size_ && q < end) {
        std::size_t span = static_cast<std::size_t>(std::min<std::uint64_t>(window_size_, end - q));
        const std::byte* p = load(q, span);
        if (!p) return std::nullopt;
        // Candidates in [q, q + span - 3): where a 4-byte magic could start inside this window.
        std::size_t limit = span >= 4 ? span - 3 : 0;
        std::size_t i = 0;
        while (i < limit) {
            const void* hit = std::memchr(p + i, std::to_integer<int>(first), limit - i);
            if (!hit) break;
            i = static_cast<std::size_t>(static_cast<const std::byte*>(hit) - p);
            if (get_u32(p + i) == record_magic) {
                std::uint64_t at = q + i;
                if (good_record_at(at, true)) return at;
                if (read_failed_) return std::nullopt;
                p = load(q, span);  // good_record_at may have moved the window
                if (!p) return std::nullopt;
            }
            ++i;
        }
        if (limit == 0 || q + span >= end) break;
        q += limit;
    }
    return std::nullopt;
}

RecordScanner::Item RecordScanner::end_at(std::uint64_t pos) {
    done_ = true;
    tail_.offset = pos;
    tail_.length = size_ - pos;
    tail_.zeros = 0;
    tail_.torn = false;
    tail_.earlier = false;
    if (tail_.length == 0) return {Step::End, pos};
    auto end = data_end();
    if (!end) return {Step::ReadError, pos};
    tail_.zeros = size_ - std::max(*end, pos);
    // What a crash tears is the end of the data, whether the file ends there (appended) or zeros
    // follow (written into preallocated space).
    const std::uint64_t data = tail_.data();
    if (data == 0) {
        tail_.torn = false;  // only zeros: unused space
    } else if (data < record_header_size) {
        tail_.torn = true;
    } else {
        const std::byte* p = load(pos, record_header_size);
        if (!p) return {Step::ReadError, pos};
        RecordHeader h = peek_record_header(p);
        // Past the end of the file, or past the data into zeros that go on after it. A record
        // that ends exactly at the end of the file is whole, and bad (as without zeros).
        const std::uint64_t declared = pos + record_header_size + h.payload_size;
        if (reused_) {
            // The earlier content goes on after this segment's data, so a torn record of this
            // segment's ends inside it: its header names this segment (or it is no record at all).
            tail_.torn = has_record_magic(p) && h.payload_size <= max_payload_ && h.segment == segment_;
            tail_.earlier = !tail_.torn;
        } else {
            tail_.torn =
                has_record_magic(p) && h.payload_size <= max_payload_ && declared > pos + data && declared != size_;
        }
    }
    return {Step::End, pos};
}

RecordScanner::Item RecordScanner::next() {
    if (read_failed_) return {Step::ReadError, pos_};
    if (done_) return {Step::End, pos_};
    if (pos_ >= size_) return end_at(pos_);
    if (auto payload = good_record_at(pos_, false)) {
        const std::byte* p = load(pos_, record_header_size + *payload);
        Item item{Step::Record, pos_, record_header_size + std::uint64_t{*payload}, peek_record_header(p),
                  std::span<const std::byte>(p + record_header_size, *payload)};
        last_seq_ = std::max(last_seq_, item.header.seq);
        pos_ += item.length;
        good_end_ = pos_;
        return item;
    }
    if (read_failed_) return {Step::ReadError, pos_};
    // Not a good record. Only zeros from here: the unused end of a preallocated file.
    auto end = data_end();
    if (!end) return {Step::ReadError, pos_};
    if (*end <= pos_) return end_at(pos_);
    // If its length is plausible and leads to a good record (or covers the rest of the data,
    // which makes it the tail), step over it; otherwise search for the next one.
    std::uint64_t bad = pos_;
    if (size_ - bad >= record_header_size) {
        const std::byte* p = load(bad, record_header_size);
        if (!p) return {Step::ReadError, bad};
        RecordHeader h = peek_record_header(p);
        if (has_record_magic(p) && h.payload_size <= max_payload_ &&
            h.payload_size <= size_ - bad - record_header_size) {
            std::uint64_t after = bad + record_header_size + h.payload_size;
            if (after >= *end) return end_at(bad);
            if (good_record_at(after, true)) {
                pos_ = after;
                return {Step::Bad, bad, after - bad};
            }
            if (read_failed_) return {Step::ReadError, bad};
        }
    }
    auto found = resync(bad);
    if (read_failed_) return {Step::ReadError, bad};
    if (!found) return end_at(bad);
    pos_ = *found;
    return {Step::Bad, bad, *found - bad};
}

}  // namespace warren::store
