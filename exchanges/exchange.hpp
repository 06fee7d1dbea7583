// The routing interface shared by direct, fanout, topic and headers exchanges: a set of
// bindings and a route function. Exchange names, flags and exchange-to-exchange traversal
// live in the broker (VHost); an Exchange here only matches keys and headers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exchanges/destination.hpp"
#include "protocol/field_table.hpp"

namespace warren::exchanges {

enum class ExchangeType : std::uint8_t { Direct, Fanout, Topic, Headers, ConsistentHash };

std::optional<ExchangeType> parse_exchange_type(std::string_view name);  // "direct", "topic", ...
std::string_view exchange_type_name(ExchangeType type);

// A binding as RabbitMQ identifies it: destination, routing key and arguments together.
struct Binding {
    Destination destination;
    std::string routing_key;
    protocol::FieldTable arguments;
};

class Exchange {
public:
    virtual ~Exchange() = default;

    virtual ExchangeType type() const = 0;

    // RabbitMQ's bind-time check of the arguments (the headers exchange's x-match).
    // Returns the detail of a 406 PRECONDITION_FAILED, or nothing when the binding is valid.
    virtual std::optional<std::string> validate_binding(const protocol::FieldTable& arguments) const {
        (void)arguments;
        return std::nullopt;
    }

    // The bind-time check of the routing key (the consistent-hash exchange's weight): the detail
    // of a 406 PRECONDITION_FAILED, or nothing.
    virtual std::optional<std::string> validate_binding_key(std::string_view routing_key) const {
        (void)routing_key;
        return std::nullopt;
    }

    // Adds the binding; false if an identical binding (destination, key, arguments) exists.
    virtual bool bind(const Destination& destination, std::string_view routing_key,
                      const protocol::FieldTable& arguments) = 0;
    // Removes the identical binding; false if there was none.
    virtual bool unbind(const Destination& destination, std::string_view routing_key,
                        const protocol::FieldTable& arguments) = 0;
    // Removes every binding to this destination (it was deleted); returns how many went.
    virtual std::size_t remove_destination(const Destination& destination) = 0;

    // Appends the destinations the message routes to. May append a destination more than
    // once; the caller de-duplicates across the whole exchange graph.
    virtual void route(const RoutingInput& input, std::vector<Destination>& out) const = 0;

    virtual std::size_t binding_count() const = 0;
    virtual bool has_binding_to(const Destination& destination) const = 0;
    virtual void for_each_binding(const std::function<void(const Binding&)>& f) const = 0;
};

// The exchange type's check of exchange.declare's arguments: the detail of a 406, or nothing.
std::optional<std::string> validate_exchange_arguments(ExchangeType type, const protocol::FieldTable& arguments);

// `arguments` are the exchange's own (x-consistent-hash reads hash-header / hash-property).
std::unique_ptr<Exchange> make_exchange(ExchangeType type, const protocol::FieldTable& arguments = {});

}  // namespace warren::exchanges
