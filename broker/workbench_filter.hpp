// What the dead-letter workbench reads off a message's headers: where it died first and why
// (x-first-death-reason, x-first-death-queue), where it came from (x-death's latest entry:
// exchange and routing keys) and an application header such as `error.cause`; and the filter
// that selects messages by them. Reads the encoded headers in place, without copying them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/message.hpp"

namespace warren::broker::workbench {

// The header the health counts group by unless told otherwise.
inline constexpr std::string_view default_error_header = "error.cause";

struct DeathLabels {
    std::optional<std::string> reason;        // x-first-death-reason
    std::optional<std::string> origin_queue;  // x-first-death-queue
    std::optional<std::string> header;        // the chosen header, rendered as text
};
DeathLabels death_labels(const Message& message, std::string_view header);

// Where the latest dead-lettering took the message from: x-death's first entry (the most
// recent death), its exchange and the first of its routing keys. nullopt without x-death.
struct Origin {
    std::string exchange;
    std::string routing_key;
};
std::optional<Origin> death_origin(const Message& message);

// A field value as text, for a header grouped or matched by value: strings as they are,
// integers and booleans in decimal; nullopt for tables, arrays and the rest.
std::optional<std::string> field_text(const protocol::FieldRef& value);

// Every condition set must hold; an empty filter matches every message.
struct MessageFilter {
    std::optional<std::string> reason;        // x-first-death-reason equals
    std::optional<std::string> origin_queue;  // x-first-death-queue equals
    std::optional<std::string> header;        // this header...
    std::optional<std::string> header_value;  // ...has this value (as field_text renders it); unset: is present
    bool empty() const { return !reason && !origin_queue && !header; }
    bool matches(const Message& message) const;
};

}  // namespace warren::broker::workbench
