// The headers exchange: routes on the message's headers table against each binding's arguments,
// with RabbitMQ's x-match modes (all, any, all-with-x, any-with-x). Binding arguments are parsed
// once at bind time into a match list; route() reads the message's headers in place.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exchanges/binding_set.hpp"
#include "exchanges/exchange.hpp"
#include "protocol/byte_buffer.hpp"
#include "protocol/table_view.hpp"

namespace warren::exchanges {

class HeadersExchange final : public Exchange {
public:
    ExchangeType type() const override { return ExchangeType::Headers; }

    std::optional<std::string> validate_binding(const protocol::FieldTable& arguments) const override;

    bool bind(const Destination& destination, std::string_view routing_key,
              const protocol::FieldTable& arguments) override;
    bool unbind(const Destination& destination, std::string_view routing_key,
                const protocol::FieldTable& arguments) override;
    std::size_t remove_destination(const Destination& destination) override;

    // Not re-entrant: uses the exchange's scratch space (one event-loop thread, see STYLE §4).
    void route(const RoutingInput& input, std::vector<Destination>& out) const override;

    std::size_t binding_count() const override { return bindings_.size(); }
    bool has_binding_to(const Destination& destination) const override {
        return bindings_.has_destination(destination);
    }
    void for_each_binding(const std::function<void(const Binding&)>& f) const override { bindings_.for_each(f); }

private:
    struct MatchArg {
        std::string_view key;      // points into Entry::argument_bytes
        protocol::FieldRef value;  // likewise; type 'V' means "header present"
    };
    struct Entry {
        Destination destination;
        BindingId id = no_binding;
        bool any = false;                     // x-match any / any-with-x; otherwise all / all-with-x
        protocol::ByteBuffer argument_bytes;  // heap-owned, so moving the Entry keeps the views valid
        std::vector<MatchArg> args;           // what the mode compares, x- keys already dropped
    };
    struct Header {
        std::string_view key;
        protocol::FieldRef value;
        std::size_t index;  // wire position: among repeated keys the last one counts
    };

    bool matches(const Entry& entry) const;
    void remove(BindingId id);

    BindingSet bindings_;
    std::vector<Entry> entries_;  // entries_[bindings_[id].pos] is binding id's match list
    std::vector<BindingId> scratch_ids_;
    mutable std::vector<Header> headers_;  // the message's headers sorted by key, reused
};

}  // namespace warren::exchanges
