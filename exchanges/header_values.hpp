// Field values as RabbitMQ's Erlang code sees them: how the headers exchange compares a binding
// argument with a message header, and how a value prints in a 406 reply text (~tp).
#pragma once

#include <string>
#include <string_view>

#include "protocol/field_table.hpp"
#include "protocol/table_view.hpp"

namespace warren::exchanges {

// Whether a message header equals a binding argument, as RabbitMQ 4.x's headers exchange decides
// (rabbit_exchange_type_headers:match/2, `maps:get(K, Headers, undefined) =:= V`, with the
// headers from mc_amqpl:routing_headers/2). Type letters are dropped, so what compares is the
// Erlang term:
//   - every integer width is one integer: int8 1, uint32 1 and int64 1 are equal;
//   - timestamps compare as their integer value on both sides (RabbitMQ 4.x scales the
//     header's to milliseconds but not the binding's; Warren does not copy that quirk);
//   - float32 and float64 are one float, never equal to an integer (=:= is exact: 1 =/= 1.0);
//   - long string 'S' and byte array 'x' are one binary;
//   - booleans, decimals ({Scale, Value}) and void compare by value;
//   - tables and arrays compare as parsed Erlang lists, keeping each element's type and order.
// A void binding argument means "header present" and is handled by the caller, not here.
bool header_value_matches(const protocol::FieldRef& binding, const protocol::FieldRef& header);

// The value as Erlang's ~tp prints RabbitMQ's parsed term: <<"all">>, 5, true, undefined,
// {2,150}, [{<<"k">>,longstr,<<"v">>}]. Floats and non-ASCII binaries are best effort, and long
// values are not line-wrapped as io_lib_pretty would.
std::string erlang_term_text(const protocol::FieldValue& value);

}  // namespace warren::exchanges
