// FanoutExchange: every binding receives every message.
#include "exchanges/fanout_exchange.hpp"

namespace warren::exchanges {

bool FanoutExchange::bind(const Destination& destination, std::string_view routing_key,
                          const protocol::FieldTable& arguments) {
    auto [id, added] = bindings_.insert(destination, routing_key, arguments);
    if (added) all_.add(bindings_, id);
    return added;
}

void FanoutExchange::remove(BindingId id) {
    all_.remove(bindings_, id);
    bindings_.erase(id);
}

bool FanoutExchange::unbind(const Destination& destination, std::string_view routing_key,
                            const protocol::FieldTable& arguments) {
    BindingId id = bindings_.find(destination, routing_key, arguments);
    if (id == no_binding) return false;
    remove(id);
    return true;
}

std::size_t FanoutExchange::remove_destination(const Destination& destination) {
    bindings_.ids_for(destination, scratch_ids_);
    for (BindingId id : scratch_ids_) remove(id);
    return scratch_ids_.size();
}

void FanoutExchange::route(const RoutingInput& input, std::vector<Destination>& out) const {
    (void)input;
    all_.append_to(out);
}

}  // namespace warren::exchanges
