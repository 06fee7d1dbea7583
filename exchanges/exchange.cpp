// Exchange types by name, as exchange.declare gives them, and the factory the VHost calls.
#include "exchanges/exchange.hpp"

#include "exchanges/consistent_hash_exchange.hpp"
#include "exchanges/direct_exchange.hpp"
#include "exchanges/fanout_exchange.hpp"
#include "exchanges/headers_exchange.hpp"
#include "exchanges/topic_exchange.hpp"

namespace warren::exchanges {

// Case-sensitive, as RabbitMQ's registry lookup is: "Direct" is not a type.
std::optional<ExchangeType> parse_exchange_type(std::string_view name) {
    if (name == "direct") return ExchangeType::Direct;
    if (name == "fanout") return ExchangeType::Fanout;
    if (name == "topic") return ExchangeType::Topic;
    if (name == "headers") return ExchangeType::Headers;
    if (name == "x-consistent-hash") return ExchangeType::ConsistentHash;
    return std::nullopt;
}

std::string_view exchange_type_name(ExchangeType type) {
    switch (type) {
    case ExchangeType::Direct: return "direct";
    case ExchangeType::Fanout: return "fanout";
    case ExchangeType::Topic: return "topic";
    case ExchangeType::Headers: return "headers";
    case ExchangeType::ConsistentHash: return "x-consistent-hash";
    }
    return "unknown";
}

std::optional<std::string> validate_exchange_arguments(ExchangeType type, const protocol::FieldTable& arguments) {
    if (type == ExchangeType::ConsistentHash) return validate_consistent_hash_arguments(arguments);
    return std::nullopt;
}

std::unique_ptr<Exchange> make_exchange(ExchangeType type, const protocol::FieldTable& arguments) {
    switch (type) {
    case ExchangeType::Direct: return std::make_unique<DirectExchange>();
    case ExchangeType::Fanout: return std::make_unique<FanoutExchange>();
    case ExchangeType::Topic: return std::make_unique<TopicExchange>();
    case ExchangeType::Headers: return std::make_unique<HeadersExchange>();
    case ExchangeType::ConsistentHash:
        return std::make_unique<ConsistentHashExchange>(consistent_hash_source(arguments));
    }
    return nullptr;
}

}  // namespace warren::exchanges
