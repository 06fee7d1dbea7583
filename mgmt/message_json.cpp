// See message_json.hpp.
#include "mgmt/message_json.hpp"

#include <fmt/format.h>

#include "broker/base64.hpp"
#include "protocol/utf8.hpp"

namespace warren::mgmt {

json properties_json(const protocol::BasicProperties& p) {
    using namespace protocol::property_flag;
    json o = json::object();
    if (p.has(content_type)) o["content_type"] = std::string(p.content_type);
    if (p.has(content_encoding)) o["content_encoding"] = std::string(p.content_encoding);
    if (p.has(headers)) o["headers"] = table_json(p.headers.to_table());
    if (p.has(delivery_mode)) o["delivery_mode"] = p.delivery_mode;
    if (p.has(priority)) o["priority"] = p.priority;
    if (p.has(correlation_id)) o["correlation_id"] = std::string(p.correlation_id);
    if (p.has(reply_to)) o["reply_to"] = std::string(p.reply_to);
    if (p.has(expiration)) o["expiration"] = std::string(p.expiration);
    if (p.has(message_id)) o["message_id"] = std::string(p.message_id);
    if (p.has(timestamp)) o["timestamp"] = p.timestamp;
    if (p.has(type)) o["type"] = std::string(p.type);
    if (p.has(user_id)) o["user_id"] = std::string(p.user_id);
    if (p.has(app_id)) o["app_id"] = std::string(p.app_id);
    if (p.has(cluster_id)) o["cluster_id"] = std::string(p.cluster_id);
    // RabbitMQ shows no properties as an empty list (an Erlang proplist), not {}.
    if (o.empty()) return json::array();
    return o;
}

Payload encode_payload(std::span<const std::byte> bytes, std::string_view wanted, std::string_view fallback) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (wanted == "auto" && protocol::is_valid_utf8(text)) return {std::string(text), "string"};
    const std::string_view how = wanted == "auto" ? fallback : wanted;
    if (how == "base64") return {broker::base64_encode(bytes), "base64"};
    std::string hex;
    hex.reserve(bytes.size() * 2);
    for (std::byte b : bytes) fmt::format_to(std::back_inserter(hex), "{:02x}", static_cast<unsigned>(b));
    return {std::move(hex), "hex"};
}

}  // namespace warren::mgmt
