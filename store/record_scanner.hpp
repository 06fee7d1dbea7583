// Reads the records of one file in order, trusting nothing: magic, length (against the file size
// and a maximum) and checksum. A bad record is stepped over when its length leads to a good one,
// otherwise the scanner searches forward for the next good record. What follows the last good
// record is the tail: zeros (space written ahead of the records, never used: the normal end of
// a preallocated segment), torn (an incomplete record, as a crash leaves it, maybe followed by
// zeros) or garbage. In a segment written into a reused file, the records of the file's earlier
// use are no good records, and what follows the last good one is that earlier content (unless it
// is a torn record of this segment's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "store/buffer.hpp"
#include "store/file_system.hpp"
#include "store/format.hpp"
#include "store/result.hpp"

namespace warren::store {

class RecordScanner {
public:
    enum class Step {
        Record,     // a good record: header, payload
        Bad,        // bytes [offset, offset + length) that are no good record, with a good one after
        End,        // no more records; see tail()
        ReadError,  // the file could not be read; see read_error()
    };
    struct Item {
        Step step;
        std::uint64_t offset = 0;
        std::uint64_t length = 0;  // whole record (header + payload) for Record
        RecordHeader header;
        std::span<const std::byte> payload;  // valid until the next call to next()
    };
    struct Tail {
        std::uint64_t offset = 0;  // == end of the last good record
        std::uint64_t length = 0;  // 0: the file ends with a good record
        std::uint64_t zeros = 0;   // of `length`, the zero bytes that end the file (unused space)
        bool torn = false;         // an incomplete record (or header) rather than garbage
        bool earlier = false;      // not torn, in a reused file: the file's earlier content (unused)
        // The bytes after the last good record that are not its trailing zeros.
        std::uint64_t data() const { return length - zeros; }
    };

    // `window` is a reused read buffer; `max_payload` bounds a plausible length.
    RecordScanner(File& file, std::uint64_t file_size, std::uint64_t start, std::uint32_t max_payload, Buffer& window,
                  std::size_t window_size = std::size_t{4} << 20);

    // A segment's file: a record that names another segment (not 0, which older records carry)
    // is no good record; `reused` (a version 3 header) makes what follows the last good record
    // the file's earlier content rather than garbage, unless it is a torn record of this one.
    void set_segment(std::uint32_t number, bool reused) {
        segment_ = number;
        reused_ = reused;
    }

    Item next();
    const Tail& tail() const { return tail_; }
    std::uint64_t good_end() const { return good_end_; }
    const Error& read_error() const { return *read_error_; }

private:
    // Makes [pos, pos + n) available; returns a pointer to pos, or nullptr on a read error.
    const std::byte* load(std::uint64_t pos, std::size_t n);
    // A good record at pos: returns its payload size.
    std::optional<std::uint32_t> good_record_at(std::uint64_t pos, bool require_newer);
    // The first good record after pos, if any.
    std::optional<std::uint64_t> resync(std::uint64_t pos);
    Item end_at(std::uint64_t pos);
    // Where the file's data ends: after its last non-zero byte (at least start). Read once, from
    // the end backwards, when a position holds no good record; nullopt on a read error.
    std::optional<std::uint64_t> data_end();

    File& file_;
    std::uint64_t size_;
    std::uint64_t pos_;
    std::uint32_t max_payload_;
    Buffer& window_;
    std::size_t window_size_;
    std::uint64_t window_offset_ = 0;
    std::uint64_t last_seq_ = 0;
    std::uint64_t good_end_;
    std::uint64_t start_;
    std::optional<std::uint64_t> data_end_;
    std::uint32_t segment_ = 0;  // 0: any
    bool reused_ = false;
    bool done_ = false;
    bool read_failed_ = false;
    std::optional<Error> read_error_;
    Tail tail_;
};

}  // namespace warren::store
