// A growable byte buffer without zero-fill on growth: the output side of the codec.
// Frames are appended here and written to the socket in one gathered write.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace warren::protocol {

class ByteBuffer {
public:
    ByteBuffer() = default;
    ByteBuffer(ByteBuffer&&) noexcept = default;
    ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

    std::byte* data() { return data_.get(); }
    const std::byte* data() const { return data_.get(); }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    std::span<const std::byte> span() const { return {data_.get(), size_}; }
    std::string_view view() const { return {reinterpret_cast<const char*>(data_.get()), size_}; }

    void clear() { size_ = 0; }

    // Releases memory beyond `keep` bytes of capacity (after a burst of large output).
    void shrink_to(std::size_t keep) {
        if (capacity_ > keep && size_ <= keep) {
            auto fresh = std::make_unique_for_overwrite<std::byte[]>(keep);
            if (size_) std::memcpy(fresh.get(), data_.get(), size_);
            data_ = std::move(fresh);
            capacity_ = keep;
        }
    }

    // Returns a pointer to `n` writable bytes at the end and grows size by n.
    std::byte* extend(std::size_t n) {
        reserve(size_ + n);
        std::byte* p = data_.get() + size_;
        size_ += n;
        return p;
    }

    void append(const void* p, std::size_t n) {
        if (n == 0) return;
        std::memcpy(extend(n), p, n);
    }
    void append(std::span<const std::byte> s) { append(s.data(), s.size()); }
    void append(std::string_view s) { append(s.data(), s.size()); }

    void reserve(std::size_t n) {
        if (n <= capacity_) return;
        std::size_t cap = capacity_ ? capacity_ : 256;
        while (cap < n) cap *= 2;
        auto fresh = std::make_unique_for_overwrite<std::byte[]>(cap);
        if (size_) std::memcpy(fresh.get(), data_.get(), size_);
        data_ = std::move(fresh);
        capacity_ = cap;
    }

    // Drops the first n bytes (used by the read side after frames are consumed).
    void consume_front(std::size_t n) {
        if (n >= size_) {
            size_ = 0;
            return;
        }
        std::memmove(data_.get(), data_.get() + n, size_ - n);
        size_ -= n;
    }

    void truncate(std::size_t n) {
        if (n < size_) size_ = n;
    }

private:
    std::unique_ptr<std::byte[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace warren::protocol
