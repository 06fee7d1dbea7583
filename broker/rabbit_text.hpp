// Helpers that render values the way RabbitMQ's reply texts do: resource names
// ("queue 'q' in vhost '/'"), field types by RabbitMQ's names ("signedint", "longstr"),
// and values as Erlang prints them.
#pragma once

#include <string>
#include <string_view>

#include "protocol/field_table.hpp"

namespace warren::broker {

// "queue 'q' in vhost '/'", "exchange 'x' in vhost '/'"
std::string resource_name(std::string_view kind, std::string_view name, std::string_view vhost);

// RabbitMQ's type name for a field type letter: 'I' -> "signedint", 'S' -> "longstr", ...
inline std::string_view rabbit_type_name(char type) { return protocol::field_type_name(type); }

// A field value as Erlang's ~p/~ts would show it inside RabbitMQ's texts (strings without
// quotes, integers in decimal, booleans as true/false).
std::string rabbit_value_text(const protocol::FieldValue& value);

// RabbitMQ's type_class: the integer types compare as one class, strings as another.
std::string_view rabbit_type_class(char type);

}  // namespace warren::broker
