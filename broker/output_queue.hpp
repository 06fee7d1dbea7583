// A connection's pending output: frames encoded into one byte buffer, with large message
// bodies sent by reference (gathered at write time, never copied). The net layer takes the
// whole queue in one gathered write per loop turn. It counts which of its bytes are deliveries
// from queues and which are direct reply-to deliveries, because each kind is bounded its own way
// (see Connection::is_writable, wants_read and accepts_foreign_output).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "broker/message.hpp"
#include "protocol/byte_buffer.hpp"

namespace warren::broker {

class OutputQueue {
public:
    // Bodies at least this large are referenced rather than copied into the buffer.
    static constexpr std::size_t reference_threshold = 4096;

    protocol::ByteBuffer& bytes() { return bytes_; }

    // Appends a body chunk: copied when small, referenced (keeping the message alive) when large.
    void append_body(const MessageRef& message, std::span<const std::byte> chunk) {
        if (chunk.size() < reference_threshold) {
            bytes_.append(chunk);
            return;
        }
        refs_.push_back(BodyRef{bytes_.size(), message, chunk});
        referenced_ += chunk.size();
    }

    std::size_t size() const { return bytes_.size() + referenced_; }
    // Bytes held in the queue's own buffer (referenced bodies belong to their messages).
    std::size_t buffered_bytes() const { return bytes_.size(); }
    bool empty() const { return bytes_.empty() && refs_.empty(); }

    void clear() {
        bytes_.clear();
        refs_.clear();
        referenced_ = 0;
        paced_ = foreign_ = 0;
    }

    // Where the queue ends now: a message whose writing fails half-way is taken back to here,
    // so the output never holds a partial frame.
    struct Mark {
        std::size_t bytes, refs, referenced;
    };
    Mark mark() const { return {bytes_.size(), refs_.size(), referenced_}; }
    void rollback(const Mark& m) {
        bytes_.truncate(m.bytes);
        refs_.erase(refs_.begin() + static_cast<std::ptrdiff_t>(m.refs), refs_.end());
        referenced_ = m.referenced;
    }
    std::size_t bytes_since(const Mark& m) const { return size() - (m.bytes + m.referenced); }

    // Bytes of deliveries from queues (which stop at the high-water mark by themselves) and of
    // direct reply-to deliveries (caused by other connections); the rest answers this
    // connection's own input.
    void add_paced(std::size_t n) { paced_ += n; }
    void add_foreign(std::size_t n) { foreign_ += n; }
    std::size_t paced() const { return paced_; }
    std::size_t foreign() const { return foreign_; }

    // Calls f(std::span<const std::byte>) for each piece, in order.
    template <class F>
    void for_each_piece(F&& f) const {
        std::size_t at = 0;
        for (const auto& r : refs_) {
            if (r.offset > at) f(bytes_.span().subspan(at, r.offset - at));
            f(r.chunk);
            at = r.offset;
        }
        if (bytes_.size() > at) f(bytes_.span().subspan(at));
    }

    // Releases buffer capacity after a burst (keeps steady-state allocations at zero).
    void trim(std::size_t keep) { bytes_.shrink_to(keep); }

private:
    struct BodyRef {
        std::size_t offset;  // where in bytes_ the chunk goes
        MessageRef message;  // keeps the body alive until written
        std::span<const std::byte> chunk;
    };
    protocol::ByteBuffer bytes_;
    std::vector<BodyRef> refs_;
    std::size_t referenced_ = 0;
    std::size_t paced_ = 0;
    std::size_t foreign_ = 0;
};

}  // namespace warren::broker
