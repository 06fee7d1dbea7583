// The bindings one exchange holds, keyed by RabbitMQ's binding identity (destination, routing
// key, arguments), with a per-destination chain for queue deletion. Each exchange type keeps its
// own routing index (hash map, trie, match lists) of BindingSet ids next to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "exchanges/exchange.hpp"

namespace warren::exchanges {

using BindingId = std::uint32_t;
inline constexpr BindingId no_binding = ~BindingId{0};

// RabbitMQ sorts binding arguments by key before storing or comparing a binding
// (rabbit_binding:binding_action calls rabbit_misc:sort_field_table, a stable lists:keysort),
// so the same arguments in another order name the same binding.
protocol::FieldTable canonical_arguments(const protocol::FieldTable& arguments);

class BindingSet {
public:
    struct Slot {
        Binding binding;       // arguments in canonical (sorted) order
        std::string identity;  // canonical arguments, encoded: compared byte for byte
        std::size_t hash = 0;
        BindingId prev_for_destination = no_binding;
        BindingId next_for_destination = no_binding;
        std::uint32_t owner = 0;  // the exchange's own index: the trie node of a topic binding
        std::uint32_t pos = 0;    // position in the owner's DestinationList
        bool live = false;
    };

    // Adds the binding unless an identical one exists. Returns its id and whether it is new.
    std::pair<BindingId, bool> insert(const Destination& destination, std::string_view routing_key,
                                      const protocol::FieldTable& arguments);
    BindingId find(const Destination& destination, std::string_view routing_key,
                   const protocol::FieldTable& arguments) const;
    void erase(BindingId id);

    Slot& operator[](BindingId id) { return slots_[id]; }
    const Slot& operator[](BindingId id) const { return slots_[id]; }

    std::size_t size() const { return size_; }
    bool has_destination(const Destination& destination) const { return chains_.contains(destination); }
    // Replaces `out` with the ids bound to `destination` (a copy: the caller erases them).
    void ids_for(const Destination& destination, std::vector<BindingId>& out) const;

    template <class F>
    void for_each(F&& f) const {
        for (const Slot& s : slots_)
            if (s.live) f(s.binding);
    }

private:
    struct Chain {
        BindingId head = no_binding;
        std::size_t count = 0;
    };

    BindingId find_encoded(const Destination& destination, std::string_view routing_key, std::string_view identity,
                           std::size_t hash) const;

    std::vector<Slot> slots_;
    std::vector<BindingId> free_;
    std::size_t size_ = 0;
    std::unordered_multimap<std::size_t, BindingId> by_hash_;
    std::unordered_map<Destination, Chain, DestinationHash> chains_;
};

// The destinations at one routing point (a direct key, a trie node, the fanout list), in a vector
// so that route() appends them in one pass. Removal swaps with the last entry; each slot's `pos`
// tracks where its entry sits, so unbinding is O(1) however many bindings share the point.
class DestinationList {
public:
    void add(BindingSet& set, BindingId id) {
        set[id].pos = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back(Entry{set[id].binding.destination, id});
    }
    void remove(BindingSet& set, BindingId id) {
        std::uint32_t pos = set[id].pos;
        if (pos + 1 != entries_.size()) {
            entries_[pos] = entries_.back();
            set[entries_[pos].id].pos = pos;
        }
        entries_.pop_back();
    }
    void append_to(std::vector<Destination>& out) const {
        for (const Entry& e : entries_) out.push_back(e.destination);
    }
    bool empty() const { return entries_.empty(); }
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        Destination destination;
        BindingId id;
    };
    std::vector<Entry> entries_;
};

}  // namespace warren::exchanges
