// Exchange types by name, as exchange.declare gives them, and the factory the VHost calls.
#include "exchanges/exchange.hpp"

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
    return std::nullopt;
}

std::string_view exchange_type_name(ExchangeType type) {
    switch (type) {
    case ExchangeType::Direct: return "direct";
    case ExchangeType::Fanout: return "fanout";
    case ExchangeType::Topic: return "topic";
    case ExchangeType::Headers: return "headers";
    }
    return "unknown";
}

std::unique_ptr<Exchange> make_exchange(ExchangeType type) {
    switch (type) {
    case ExchangeType::Direct: return std::make_unique<DirectExchange>();
    case ExchangeType::Fanout: return std::make_unique<FanoutExchange>();
    case ExchangeType::Topic: return std::make_unique<TopicExchange>();
    case ExchangeType::Headers: return std::make_unique<HeadersExchange>();
    }
    return nullptr;
}

}  // namespace warren::exchanges
