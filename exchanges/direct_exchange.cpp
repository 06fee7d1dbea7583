// DirectExchange: exact routing-key match (rabbit_exchange_type_direct), keys in a hash map.
#include "exchanges/direct_exchange.hpp"

namespace warren::exchanges {

bool DirectExchange::bind(const Destination& destination, std::string_view routing_key,
                          const protocol::FieldTable& arguments) {
    auto [id, added] = bindings_.insert(destination, routing_key, arguments);
    if (!added) return false;
    auto it = by_key_.find(routing_key);
    if (it == by_key_.end()) it = by_key_.emplace(std::string(routing_key), DestinationList{}).first;
    it->second.add(bindings_, id);
    return true;
}

void DirectExchange::remove(BindingId id) {
    auto it = by_key_.find(std::string_view(bindings_[id].binding.routing_key));
    it->second.remove(bindings_, id);
    if (it->second.empty()) by_key_.erase(it);
    bindings_.erase(id);
}

bool DirectExchange::unbind(const Destination& destination, std::string_view routing_key,
                            const protocol::FieldTable& arguments) {
    BindingId id = bindings_.find(destination, routing_key, arguments);
    if (id == no_binding) return false;
    remove(id);
    return true;
}

std::size_t DirectExchange::remove_destination(const Destination& destination) {
    bindings_.ids_for(destination, scratch_ids_);
    for (BindingId id : scratch_ids_) remove(id);
    return scratch_ids_.size();
}

void DirectExchange::route(const RoutingInput& input, std::vector<Destination>& out) const {
    auto it = by_key_.find(input.routing_key);
    if (it != by_key_.end()) it->second.append_to(out);
}

}  // namespace warren::exchanges
