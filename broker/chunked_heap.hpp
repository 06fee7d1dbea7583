// A binary min-heap stored in fixed-size chunks instead of one vector: growing adds a chunk and
// never copies what is held. A vector-backed heap of ten million 24-byte entries copies 240 MB
// (and briefly holds both copies) each time it doubles, which stalls the event loop for tens of
// milliseconds; DelayedMessages keeps its deadline index here.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace warren::broker {

// `Before(a, b)`: a comes out of the heap before b.
template <class T, class Before>
class ChunkedHeap {
public:
    static constexpr std::size_t chunk_shift = 13;  // 8,192 entries a chunk (192 KiB of 24-byte entries)
    static constexpr std::size_t chunk_size = std::size_t{1} << chunk_shift;

    ChunkedHeap() = default;
    ChunkedHeap(ChunkedHeap&&) noexcept = default;
    ChunkedHeap& operator=(ChunkedHeap&&) noexcept = default;

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return chunks_.size() * chunk_size; }
    T& operator[](std::size_t i) { return chunks_[i >> chunk_shift][i & (chunk_size - 1)]; }
    const T& operator[](std::size_t i) const { return chunks_[i >> chunk_shift][i & (chunk_size - 1)]; }
    const T& front() const { return (*this)[0]; }

    // Room for `n` entries, so that push() cannot throw until then.
    void reserve(std::size_t n) {
        if (n <= capacity()) return;
        chunks_.reserve((n + chunk_size - 1) >> chunk_shift);
        while (capacity() < n) chunks_.push_back(std::unique_ptr<T[]>(new T[chunk_size]));
    }

    void push(const T& value) {
        reserve(size_ + 1);
        std::size_t i = size_++;
        while (i > 0) {  // sift up
            const std::size_t parent = (i - 1) / 2;
            if (!Before{}(value, (*this)[parent])) break;
            (*this)[i] = (*this)[parent];
            i = parent;
        }
        (*this)[i] = value;
    }

    // Removes and returns the first entry; the heap must not be empty.
    T pop() {
        T top = (*this)[0];
        const T last = (*this)[--size_];
        if (size_ > 0) {
            std::size_t i = 0;
            for (;;) {  // sift down
                std::size_t child = 2 * i + 1;
                if (child >= size_) break;
                if (child + 1 < size_ && Before{}((*this)[child + 1], (*this)[child])) ++child;
                if (!Before{}((*this)[child], last)) break;
                (*this)[i] = (*this)[child];
                i = child;
            }
            (*this)[i] = last;
        }
        // Chunks past the one in use plus a spare go back, so that memory follows the count.
        const std::size_t in_use = (size_ + chunk_size - 1) >> chunk_shift;
        while (chunks_.size() > in_use + 1) chunks_.pop_back();
        return top;
    }

    void clear() {
        chunks_.clear();
        size_ = 0;
    }

private:
    std::vector<std::unique_ptr<T[]>> chunks_;
    std::size_t size_ = 0;
};

}  // namespace warren::broker
