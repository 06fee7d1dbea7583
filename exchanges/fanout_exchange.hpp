// The fanout exchange: a message goes to every binding; routing keys, the binding's and the
// message's, play no part (rabbit_exchange_type_fanout). Bindings still differ by key and
// arguments, so one destination bound twice is listed twice; the caller de-duplicates.
#pragma once

#include "exchanges/binding_set.hpp"
#include "exchanges/exchange.hpp"

namespace warren::exchanges {

class FanoutExchange final : public Exchange {
public:
    ExchangeType type() const override { return ExchangeType::Fanout; }

    bool bind(const Destination& destination, std::string_view routing_key,
              const protocol::FieldTable& arguments) override;
    bool unbind(const Destination& destination, std::string_view routing_key,
                const protocol::FieldTable& arguments) override;
    std::size_t remove_destination(const Destination& destination) override;

    void route(const RoutingInput& input, std::vector<Destination>& out) const override;

    std::size_t binding_count() const override { return bindings_.size(); }
    bool has_binding_to(const Destination& destination) const override {
        return bindings_.has_destination(destination);
    }
    void for_each_binding(const std::function<void(const Binding&)>& f) const override { bindings_.for_each(f); }

private:
    void remove(BindingId id);

    BindingSet bindings_;
    DestinationList all_;
    std::vector<BindingId> scratch_ids_;
};

}  // namespace warren::exchanges
