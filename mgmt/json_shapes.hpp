// The JSON RabbitMQ's management plugin (3.10) gives for each kind of object, written from the
// broker's snapshots: the same field names and JSON types (a number is never a string; checked
// against recorded answers by test_management_shapes.py). Erlang-runtime internals
// (garbage_collection, reductions, backing_queue_status) have no meaning here and are left out.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "broker/broker_view.hpp"
#include "broker/vhost.hpp"
#include "mgmt/json_out.hpp"
#include "protocol/field_table.hpp"

namespace warren::mgmt {

using json = nlohmann::json;

// The node name the API reports ("warren@host").
const std::string& node_name();

// Field tables: AMQP values as JSON values, and JSON back as RabbitMQ types it
// (rabbit_mgmt_format:to_amqp_table): strings longstr, integers long, numbers double,
// booleans bool, objects table, arrays array, null void.
json table_json(const protocol::FieldTable& table);
// Nothing if `value` is not an object.
std::optional<protocol::FieldTable> table_from_json(const json& value);

// "2026-12-06T06:20:55.602+00:00", RabbitMQ's idle_since format.
std::string format_time_ms(std::int64_t unix_ms);

json rate(double per_second);

// Each object's fields (written between JsonOut::begin() and end(), so callers may add more).
void write_message_stats(JsonOut& w, const broker::StatsSnapshot& s, std::initializer_list<broker::Stat> counters,
                         bool with_deliver_get);
void write_queue(JsonOut& w, const broker::QueueSnapshot& q);
void write_exchange(JsonOut& w, const broker::ExchangeSnapshot& x);
void write_binding(JsonOut& w, const broker::BindingSnapshot& b);
// `single`: the answer for one connection, where RabbitMQ gives "" for the TLS fields (null in lists).
void write_connection(JsonOut& w, const broker::ConnectionSnapshot& c, bool single = false);
void write_channel(JsonOut& w, const broker::ChannelSnapshot& ch);
void write_consumer(JsonOut& w, const broker::ConsumerSnapshot& c);
void write_vhost(JsonOut& w, const std::string& name, const broker::VHostSettings& settings,
                 const broker::StatsSnapshot& s);

// One whole object as JSON text.
template <class F>
std::string object_text(F&& write) {
    std::string out;
    JsonOut w(out);
    w.begin();
    write(w);
    w.end();
    return out;
}

}  // namespace warren::mgmt
