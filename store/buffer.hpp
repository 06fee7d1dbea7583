// A growable byte buffer without zero-fill on growth: where the store assembles records before
// one write per file at flush, and where it reads file bytes. Capacity is kept across clear(),
// so steady-state appends do not allocate.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace warren::store {

class Buffer {
public:
    Buffer() = default;
    Buffer(Buffer&&) noexcept = default;
    Buffer& operator=(Buffer&&) noexcept = default;

    std::byte* data() { return data_.get(); }
    const std::byte* data() const { return data_.get(); }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    std::span<const std::byte> span() const { return {data_.get(), size_}; }

    void clear() { size_ = 0; }
    void resize(std::size_t n) {
        reserve(n);
        size_ = n;
    }

    // Returns `n` writable bytes at the end and grows size by n.
    std::byte* extend(std::size_t n) {
        reserve(size_ + n);
        std::byte* p = data_.get() + size_;
        size_ += n;
        return p;
    }

    void append(const void* p, std::size_t n) {
        if (n) std::memcpy(extend(n), p, n);
    }

    void reserve(std::size_t n) {
        if (n <= capacity_) return;
        std::size_t cap = capacity_ ? capacity_ : 4096;
        while (cap < n) cap *= 2;
        auto fresh = std::make_unique_for_overwrite<std::byte[]>(cap);
        if (size_) std::memcpy(fresh.get(), data_.get(), size_);
        data_ = std::move(fresh);
        capacity_ = cap;
    }

    // Releases memory beyond `keep` bytes of capacity when the buffer is empty (after a burst).
    void release_if_empty_above(std::size_t keep) {
        if (size_ == 0 && capacity_ > keep) {
            data_.reset();
            capacity_ = 0;
        }
    }

private:
    std::unique_ptr<std::byte[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace warren::store
