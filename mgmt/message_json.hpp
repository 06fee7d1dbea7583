// A message's properties and body as the management API shows them: the properties object of
// RabbitMQ's "get messages" answer (headers as JSON values), and a payload as text or encoded.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "mgmt/json_shapes.hpp"
#include "protocol/basic_properties.hpp"

namespace warren::mgmt {

// The properties set, by RabbitMQ's names; none is [] (as RabbitMQ shows an empty proplist).
json properties_json(const protocol::BasicProperties& p);

// The payload: "auto" gives text when it is UTF-8 and else `fallback` ("base64" or "hex");
// "base64" and "hex" always encode. `encoding` is the one used ("string", "base64" or "hex").
struct Payload {
    std::string text;
    std::string encoding;
};
Payload encode_payload(std::span<const std::byte> bytes, std::string_view wanted, std::string_view fallback);

}  // namespace warren::mgmt
