// BindingSet: binding identity and the per-destination chains behind remove_destination.
#include "exchanges/binding_set.hpp"

#include <algorithm>
#include <functional>

namespace warren::exchanges {

protocol::FieldTable canonical_arguments(const protocol::FieldTable& arguments) {
    protocol::FieldTable sorted = arguments;
    // Byte order of keys, as Erlang compares binaries; stable, so repeated keys keep their order.
    std::stable_sort(sorted.entries.begin(), sorted.entries.end(),
                     [](const protocol::FieldEntry& a, const protocol::FieldEntry& b) { return a.key < b.key; });
    return sorted;
}

namespace {

std::size_t identity_hash(const Destination& destination, std::string_view routing_key, std::string_view identity) {
    std::size_t h = DestinationHash{}(destination);
    auto mix = [&](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    mix(std::hash<std::string_view>{}(routing_key));
    mix(std::hash<std::string_view>{}(identity));
    return h;
}

}  // namespace

BindingId BindingSet::find_encoded(const Destination& destination, std::string_view routing_key,
                                   std::string_view identity, std::size_t hash) const {
    auto [it, end] = by_hash_.equal_range(hash);
    for (; it != end; ++it) {
        const Slot& s = slots_[it->second];
        if (s.binding.destination == destination && s.binding.routing_key == routing_key && s.identity == identity)
            return it->second;
    }
    return no_binding;
}

std::pair<BindingId, bool> BindingSet::insert(const Destination& destination, std::string_view routing_key,
                                              const protocol::FieldTable& arguments) {
    protocol::FieldTable canonical = canonical_arguments(arguments);
    std::string identity(protocol::encode_table_body(canonical).view());
    std::size_t hash = identity_hash(destination, routing_key, identity);
    if (BindingId existing = find_encoded(destination, routing_key, identity, hash); existing != no_binding)
        return {existing, false};

    BindingId id;
    if (!free_.empty()) {
        id = free_.back();
        free_.pop_back();
    } else {
        id = static_cast<BindingId>(slots_.size());
        slots_.emplace_back();
    }
    Slot& s = slots_[id];
    s.binding = Binding{destination, std::string(routing_key), std::move(canonical)};
    s.identity = std::move(identity);
    s.hash = hash;
    s.live = true;

    Chain& chain = chains_[destination];
    s.prev_for_destination = no_binding;
    s.next_for_destination = chain.head;
    if (chain.head != no_binding) slots_[chain.head].prev_for_destination = id;
    chain.head = id;
    ++chain.count;

    by_hash_.emplace(hash, id);
    ++size_;
    return {id, true};
}

BindingId BindingSet::find(const Destination& destination, std::string_view routing_key,
                           const protocol::FieldTable& arguments) const {
    std::string identity(protocol::encode_table_body(canonical_arguments(arguments)).view());
    return find_encoded(destination, routing_key, identity, identity_hash(destination, routing_key, identity));
}

void BindingSet::erase(BindingId id) {
    Slot& s = slots_[id];
    auto [it, end] = by_hash_.equal_range(s.hash);
    for (; it != end; ++it) {
        if (it->second == id) {
            by_hash_.erase(it);
            break;
        }
    }

    auto chain = chains_.find(s.binding.destination);
    if (s.prev_for_destination != no_binding)
        slots_[s.prev_for_destination].next_for_destination = s.next_for_destination;
    else
        chain->second.head = s.next_for_destination;
    if (s.next_for_destination != no_binding)
        slots_[s.next_for_destination].prev_for_destination = s.prev_for_destination;
    if (--chain->second.count == 0) chains_.erase(chain);

    s = Slot{};  // release the key and arguments now, not when the slot is reused
    free_.push_back(id);
    --size_;
}

void BindingSet::ids_for(const Destination& destination, std::vector<BindingId>& out) const {
    out.clear();
    auto chain = chains_.find(destination);
    if (chain == chains_.end()) return;
    out.reserve(chain->second.count);
    for (BindingId id = chain->second.head; id != no_binding; id = slots_[id].next_for_destination) out.push_back(id);
}

}  // namespace warren::exchanges
