// The direct exchange: a message goes to every binding whose key equals its routing key.
// One hash lookup per publish, then the key's destinations are appended in one pass.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "exchanges/binding_set.hpp"
#include "exchanges/exchange.hpp"

namespace warren::exchanges {

class DirectExchange final : public Exchange {
public:
    ExchangeType type() const override { return ExchangeType::Direct; }

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
    // Transparent, so route() looks a string_view up without building a std::string.
    struct KeyHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    void remove(BindingId id);

    BindingSet bindings_;
    std::unordered_map<std::string, DestinationList, KeyHash, std::equal_to<>> by_key_;
    std::vector<BindingId> scratch_ids_;
};

}  // namespace warren::exchanges
