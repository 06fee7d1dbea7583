// ChunkedHeap: the same order as std::priority_queue across many chunks, growth that never
// moves an entry already held, and memory given back as it empties.
#include "broker/chunked_heap.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <queue>
#include <random>

using warren::broker::ChunkedHeap;

namespace {
struct Less {
    bool operator()(long a, long b) const { return a < b; }
};
using Heap = ChunkedHeap<long, Less>;
}  // namespace

TEST_CASE("a chunked heap pops in the order a priority queue does, across chunk boundaries", "[delayed]") {
    Heap heap;
    std::priority_queue<long, std::vector<long>, std::greater<long>> reference;
    std::mt19937 rng(11);
    // Grow past three chunks, shrink, grow again: pushes and pops interleaved.
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < 3 * Heap::chunk_size + 17; ++i) {
            const long v = static_cast<long>(rng() % 100'000);
            heap.push(v);
            reference.push(v);
            if (rng() % 4 == 0) {
                REQUIRE(heap.front() == reference.top());
                CHECK(heap.pop() == reference.top());
                reference.pop();
            }
        }
        while (heap.size() > Heap::chunk_size / 2) {
            REQUIRE(heap.pop() == reference.top());
            reference.pop();
        }
    }
    while (!heap.empty()) {
        REQUIRE(heap.pop() == reference.top());
        reference.pop();
    }
    CHECK(reference.empty());
}

TEST_CASE("a chunked heap grows without moving what it holds", "[delayed]") {
    // A vector doubles by copying everything it holds: ten million entries stalled the loop.
    Heap heap;
    heap.push(5);
    const long* first = &heap[0];
    for (long v = 10; v < static_cast<long>(4 * Heap::chunk_size); ++v) heap.push(v);
    CHECK(&heap[0] == first);
    CHECK(heap.capacity() == 4 * Heap::chunk_size);
}

TEST_CASE("a chunked heap gives chunks back as it empties, keeping one spare", "[delayed]") {
    Heap heap;
    for (long v = 0; v < static_cast<long>(5 * Heap::chunk_size); ++v) heap.push(v);
    CHECK(heap.capacity() == 5 * Heap::chunk_size);
    while (heap.size() > Heap::chunk_size) heap.pop();
    CHECK(heap.capacity() == 2 * Heap::chunk_size);
    while (!heap.empty()) heap.pop();
    CHECK(heap.capacity() <= 2 * Heap::chunk_size);
    heap.reserve(3);
    heap.push(1);
    CHECK(heap.pop() == 1);
}
