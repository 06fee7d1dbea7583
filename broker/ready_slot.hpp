// One entry of a queue's ready messages (ReadyMessages): a message in memory (holding a
// reference to it), a message paged out (where it is in the message log, its size and
// priority), or a tombstone left where one was taken from the middle. 32 bytes.
#pragma once

#include <cassert>
#include <cstdint>

#include "broker/queued_message.hpp"

namespace warren::broker {

// What recovery hands a queue: a message that is on disk only.
struct PagedMessage {
    std::uint64_t location = 0;
    std::uint64_t seq = 0;
    TimePoint expires_at{};
    TimePoint hold_until{};  // waiting out a retry backoff until then (TimePoint{}: ready)
    std::uint32_t body_size = 0;
    std::uint16_t delivery_count = 0;
    std::uint8_t priority = 0;
    TimePoint arrived_at{};  // when it was stored (its queue's arrival index); TimePoint{}: unknown
};

class ReadySlot {
public:
    enum Kind : std::uint8_t { Tombstone, InMemory, Paged };

    explicit ReadySlot(QueuedMessage&& m)
        : word_(reinterpret_cast<std::uintptr_t>(m.message.release())),
          expires_at_(m.expires_at),
          packed_(m.seq() | std::uint64_t{m.delivery_count()} << QueuedMessage::seq_bits),
          kind_(InMemory) {}
    explicit ReadySlot(const PagedMessage& p)
        : word_(p.location),
          expires_at_(p.expires_at),
          packed_((p.seq & QueuedMessage::seq_mask) | std::uint64_t{p.delivery_count} << QueuedMessage::seq_bits),
          body_size_(p.body_size),
          priority_(p.priority),
          kind_(Paged) {}
    ReadySlot(ReadySlot&& o) noexcept { steal(o); }
    ReadySlot& operator=(ReadySlot&& o) noexcept {
        if (this != &o) {
            drop();
            steal(o);
        }
        return *this;
    }
    ~ReadySlot() { drop(); }

    Kind kind() const { return kind_; }
    std::uint64_t seq() const { return packed_ & QueuedMessage::seq_mask; }
    std::uint16_t delivery_count() const { return static_cast<std::uint16_t>(packed_ >> QueuedMessage::seq_bits); }
    TimePoint expires_at() const { return expires_at_; }
    Message* message() const { return kind_ == InMemory ? reinterpret_cast<Message*>(word_) : nullptr; }
    std::uint64_t location() const { return kind_ == InMemory ? message()->store_location() : word_; }
    std::uint64_t body_size() const { return kind_ == InMemory ? message()->body_size() : body_size_; }
    // Paged out under memory pressure: a record of its own that no queue event refers to.
    bool is_transient() const { return transient_; }

    // In memory -> the message, leaving a tombstone.
    QueuedMessage take() {
        assert(kind_ == InMemory);
        QueuedMessage m(MessageRef(message()), seq(), expires_at_,
                        static_cast<std::uint16_t>(packed_ >> QueuedMessage::seq_bits));
        kind_ = Tombstone;
        word_ = 0;
        return m;
    }
    void bury() {
        drop();
        kind_ = Tombstone;
    }
    // Paged -> in memory, with the message read back.
    void fill(MessageRef m) {
        assert(kind_ == Paged);
        word_ = reinterpret_cast<std::uintptr_t>(m.release());
        kind_ = InMemory;
        transient_ = false;
    }
    // In memory -> paged: only where it is stored stays here (its own record, or the record of
    // a transient message written for this slot alone).
    void page_out(std::uint64_t transient_location = 0) {
        Message* m = message();
        body_size_ = static_cast<std::uint32_t>(m->body_size());
        priority_ = m->priority();
        word_ = transient_location ? transient_location : m->store_location();
        transient_ = transient_location != 0;
        kind_ = Paged;
        MessageRef(m).reset();  // releases our reference
    }

private:
    void drop() {
        if (kind_ == InMemory) MessageRef(message()).reset();
        word_ = 0;
    }
    void steal(ReadySlot& o) {
        word_ = o.word_;
        expires_at_ = o.expires_at_;
        packed_ = o.packed_;
        body_size_ = o.body_size_;
        priority_ = o.priority_;
        transient_ = o.transient_;
        kind_ = o.kind_;
        o.kind_ = Tombstone;
        o.word_ = 0;
    }

    std::uint64_t word_ = 0;  // the Message* when in memory, the location when paged
    TimePoint expires_at_{};
    std::uint64_t packed_ = 0;    // seq | delivery count << 48, as QueuedMessage
    std::uint32_t body_size_ = 0;  // when paged
    std::uint8_t priority_ = 0;    // when paged
    Kind kind_ = Tombstone;
    bool transient_ = false;
};


static_assert(sizeof(ReadySlot) == 32, "the per-message cost of a ready message");

}  // namespace warren::broker
