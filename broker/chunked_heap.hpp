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
    ChunkedHeap(ChunkedHeap&& o) noexcept : chunks_(std::move(o.chunks_)), size_(std::exchange(o.size_, 0)) {
        o.chunks_.clear();
    }
    ChunkedHeap& operator=(ChunkedHeap&& o) noexcept {
        if (this != &o) {
            clear();
            chunks_ = std::move(o.chunks_);
            size_ = std::exchange(o.size_, 0);
            o.chunks_.clear();
        }
        return *this;
    }
    ChunkedHeap(const ChunkedHeap&) = delete;
    ChunkedHeap& operator=(const ChunkedHeap&) = delete;
    ~ChunkedHeap() { clear(); }

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return chunks_.size() * chunk_size; }
    T& operator[](std::size_t i) { return at(chunks_.data(), i); }
    const T& operator[](std::size_t i) const { return at(chunks_.data(), i); }
    const T& front() const { return (*this)[0]; }

    // Room for `n` entries, so that push() cannot throw until then.
    void reserve(std::size_t n) {
        if (n <= capacity()) return;
        chunks_.reserve((n + chunk_size - 1) >> chunk_shift);
        while (capacity() < n) {
            T* chunk = new T[chunk_size];
            chunks_.push_back(chunk);  // cannot throw: room reserved above
        }
    }

    void push(const T& value) {
        reserve(size_ + 1);
        sift_up(chunks_.data(), size_++, value);
    }

    // Removes and returns the first entry; the heap must not be empty.
    T pop() {
        T* const* c = chunks_.data();  // read once: stores of T could otherwise alias it
        T top = at(c, 0);
        const T last = at(c, --size_);
        const std::size_t n = size_;
        if (n > 0) {
            // Floyd's way, as std::pop_heap: the hole goes down to a leaf by the earlier child
            // (one comparison a level), then the last entry moves up from there (rarely far).
            // Written as libstdc++'s __adjust_heap (right child, step back to the left one):
            // GCC makes the choice a conditional move, and it is a coin toss each level (the
            // other spelling measured 2.5 times slower on a million entries).
            std::size_t i = 0;
            while (2 * i + 2 < n) {
                std::size_t child = 2 * i + 2;
                if (Before{}(at(c, child - 1), at(c, child))) --child;
                at(c, i) = at(c, child);
                i = child;
            }
            if (2 * i + 1 < n) {  // a last node with one child
                at(c, i) = at(c, 2 * i + 1);
                i = 2 * i + 1;
            }
            sift_up(c, i, last);
        }
        // Chunks past the one in use and a spare go back, so that memory follows the count.
        const std::size_t in_use = (n + chunk_size - 1) >> chunk_shift;
        while (chunks_.size() > in_use + 1) free_last_chunk();
        return top;
    }

    void clear() {
        while (!chunks_.empty()) free_last_chunk();
        size_ = 0;
    }

private:
    static T& at(T* const* c, std::size_t i) { return c[i >> chunk_shift][i & (chunk_size - 1)]; }
    // Puts `value` in the hole at `i`, moving it up past the entries it comes before.
    static void sift_up(T* const* c, std::size_t i, const T& value) {
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!Before{}(value, at(c, parent))) break;
            at(c, i) = at(c, parent);
            i = parent;
        }
        at(c, i) = value;
    }
    void free_last_chunk() {
        delete[] chunks_.back();
        chunks_.pop_back();
    }

    std::vector<T*> chunks_;  // each `new T[chunk_size]`, owned
    std::size_t size_ = 0;
};

}  // namespace warren::broker
