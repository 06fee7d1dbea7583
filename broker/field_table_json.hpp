// AMQP field tables as JSON and back, as RabbitMQ's definitions and HTTP API convert them
// (rabbit_misc:amqp_table/1 and to_amqp_table/1): a JSON integer becomes a signed 64-bit 'l',
// a string a longstr, a float a double, a list an array, an object a table.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "protocol/field_table.hpp"

namespace warren::broker {

nlohmann::json field_table_to_json(const protocol::FieldTable& table);
// nullopt when `j` is not an object (`error` says which value could not be converted).
std::optional<protocol::FieldTable> field_table_from_json(const nlohmann::json& j, std::string& error);

}  // namespace warren::broker
