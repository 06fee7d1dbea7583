// See json_shapes.hpp.
#include "mgmt/json_shapes.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "mgmt/erlang_hash.hpp"

namespace warren::mgmt {

using broker::Stat;
using namespace protocol;

const std::string& node_name() {
    static const std::string name = [] {
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) != 0 || !host[0]) return std::string("warren@localhost");
        std::string h(host);
        if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
        return "warren@" + h;
    }();
    return name;
}

namespace {

json value_json(const FieldValue& v) {
    return std::visit(
        [](const auto& x) -> json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Void>)
                return nullptr;
            else if constexpr (std::is_same_v<T, bool>)
                return x;
            else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
                return static_cast<double>(x);
            else if constexpr (std::is_same_v<T, Decimal>) {
                double d = x.value;
                for (int i = 0; i < x.scale; ++i) d /= 10;
                return d;
            } else if constexpr (std::is_same_v<T, std::string>)
                return x;
            else if constexpr (std::is_same_v<T, ByteArray>)
                return x.bytes;
            else if constexpr (std::is_same_v<T, Timestamp>)
                return x.seconds;
            else if constexpr (std::is_same_v<T, FieldArray>) {
                json a = json::array();
                for (const FieldValue& item : x.items) a.push_back(value_json(item));
                return a;
            } else if constexpr (std::is_same_v<T, FieldTable>)
                return table_json(x);
            else
                return static_cast<std::int64_t>(x);
        },
        v.v);
}

std::optional<FieldValue> value_from_json(const json& v) {
    if (v.is_null()) return FieldValue{Void{}};
    if (v.is_boolean()) return FieldValue{v.get<bool>()};
    if (v.is_number_unsigned()) {
        auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        return FieldValue{static_cast<std::int64_t>(u)};
    }
    if (v.is_number_integer()) return FieldValue{v.get<std::int64_t>()};
    if (v.is_number_float()) return FieldValue{v.get<double>()};
    if (v.is_string()) return FieldValue{v.get<std::string>()};
    if (v.is_object()) {
        auto t = table_from_json(v);
        if (!t) return std::nullopt;
        return FieldValue{std::move(*t)};
    }
    if (v.is_array()) {
        FieldArray a;
        for (const json& item : v) {
            auto f = value_from_json(item);
            if (!f) return std::nullopt;
            a.items.push_back(std::move(*f));
        }
        return FieldValue{std::move(a)};
    }
    return std::nullopt;
}

}  // namespace

json table_json(const FieldTable& table) {
    json o = json::object();
    for (const auto& e : table.entries) o[e.key] = value_json(e.value);
    return o;
}

std::optional<FieldTable> table_from_json(const json& value) {
    if (!value.is_object()) return std::nullopt;
    FieldTable t;
    for (const auto& [k, v] : value.items()) {
        auto f = value_from_json(v);
        if (!f) return std::nullopt;
        t.set(k, std::move(*f));
    }
    return t;
}

std::string format_time_ms(std::int64_t unix_ms) {
    std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
}

json rate(double per_second) {
    return json{{"rate", per_second}};
}

void write_message_stats(JsonOut& w, const broker::StatsSnapshot& s, std::initializer_list<Stat> counters,
                         bool with_deliver_get) {
    w.object("message_stats");
    std::string details;
    for (Stat c : counters) {
        const std::string_view name = broker::stat_name(c);
        w.field(name, s[c]);
        details.assign(name);
        details += "_details";
        w.rate(details, s.rate_of(c));
    }
    if (with_deliver_get) {
        w.field("deliver_get", s[Stat::deliver] + s[Stat::deliver_no_ack] + s[Stat::get] + s[Stat::get_no_ack]);
        w.rate("deliver_get_details", s.rate_of(Stat::deliver) + s.rate_of(Stat::deliver_no_ack) +
                                          s.rate_of(Stat::get) + s.rate_of(Stat::get_no_ack));
    }
    w.close();
}

namespace {
void connection_details(JsonOut& w, std::string_view key, const std::string& name, const std::string& host,
                        std::uint16_t port) {
    w.object(key);
    w.field("name", name);
    w.field("peer_host", host);
    w.field("peer_port", static_cast<std::uint64_t>(port));
    w.close();
}
}  // namespace

void write_queue(JsonOut& w, const broker::QueueSnapshot& q) {
    const auto& s = q.stats;
    w.field("name", q.name);
    w.field("vhost", q.vhost);
    w.field("durable", q.durable);
    w.field("auto_delete", q.auto_delete);
    w.field("exclusive", q.exclusive);
    w.table("arguments", q.arguments);
    w.field("type", q.type);
    w.field("node", node_name());
    w.field("state", "running");
    // RabbitMQ: the policy's name, or null when none applies; the two definitions merged.
    w.string_or_null("policy", q.policy);
    w.string_or_null("operator_policy", q.operator_policy);
    w.raw("effective_policy_definition", q.effective_policy_definition);
    w.field("consumers", q.consumers);
    if (q.consumer_utilisation) {
        w.field("consumer_utilisation", *q.consumer_utilisation);
        w.field("consumer_capacity", *q.consumer_utilisation);
    } else {
        // RabbitMQ gives the integer 0 without consumers (clients read a number: not null).
        w.field("consumer_utilisation", 0);
        w.field("consumer_capacity", 0);
    }
    w.string_or_null("exclusive_consumer_tag", q.exclusive_consumer_tag);
    if (q.single_active_consumer_tag)
        w.field("single_active_consumer_tag", *q.single_active_consumer_tag);
    else
        w.null("single_active_consumer_tag");
    w.null("head_message_timestamp");
    w.field("memory", q.memory);
    w.field("messages", q.messages_ready + q.messages_unacknowledged);
    w.rate("messages_details", s.rate_of(Stat::messages));
    w.field("messages_ready", q.messages_ready);
    w.rate("messages_ready_details", s.rate_of(Stat::messages_ready));
    w.field("messages_unacknowledged", q.messages_unacknowledged);
    w.rate("messages_unacknowledged_details", s.rate_of(Stat::messages_unacknowledged));
    w.field("messages_ram", q.messages_ram + q.messages_unacknowledged);
    w.field("messages_ready_ram", q.messages_ram);
    w.field("messages_unacknowledged_ram", q.messages_unacknowledged);
    w.field("messages_persistent", 0);
    w.field("messages_paged_out", q.messages_ready - std::min(q.messages_ready, q.messages_ram));
    w.field("messages_delayed", q.messages_delayed);  // RabbitMQ 4.3's quorum queues: retry backoffs
    w.field("message_bytes", q.message_bytes_ready);
    w.field("message_bytes_ready", q.message_bytes_ready);
    w.field("message_bytes_unacknowledged", 0);
    w.field("message_bytes_ram", q.message_bytes_ready);
    w.field("message_bytes_persistent", 0);
    w.field("message_bytes_paged_out", 0);
    write_message_stats(w, s,
                        {Stat::publish, Stat::deliver, Stat::deliver_no_ack, Stat::get, Stat::get_no_ack,
                         Stat::get_empty, Stat::ack, Stat::redeliver},
                        true);
    w.field("idle_since", format_time_ms(q.idle_since_ms));
    if (!q.owner_connection.empty()) {
        std::string host;
        std::uint16_t port = 0;
        auto arrow = q.owner_connection.find(" -> ");
        broker::split_address(q.owner_connection.substr(0, arrow), host, port);
        connection_details(w, "owner_pid_details", q.owner_connection, host, port);
    }
}

void write_exchange(JsonOut& w, const broker::ExchangeSnapshot& x) {
    w.field("name", x.name);
    w.field("vhost", x.vhost);
    w.field("type", x.type);
    w.field("durable", x.durable);
    w.field("auto_delete", x.auto_delete);
    w.field("internal", x.internal);
    w.table("arguments", x.arguments);
    w.string_or_null("policy", x.policy);
    w.field("user_who_performed_action", "rmq-internal");
    write_message_stats(w, x.stats, {Stat::publish_in, Stat::publish_out}, false);
    // The delayed-message plugin's exchange info: messages waiting for their x-delay.
    if (x.messages_delayed) w.field("messages_delayed", *x.messages_delayed);
}

void write_binding(JsonOut& w, const broker::BindingSnapshot& b) {
    w.field("source", b.source);
    w.field("vhost", b.vhost);
    w.field("destination", b.destination);
    w.field("destination_type", b.to_exchange ? "exchange" : "queue");
    w.field("routing_key", b.routing_key);
    w.table("arguments", b.arguments);
    w.field("properties_key", properties_key(b.routing_key, b.arguments));
}

void write_connection(JsonOut& w, const broker::ConnectionSnapshot& c, bool single) {
    const auto& s = c.stats;
    w.field("name", c.name);
    w.field("node", node_name());
    w.field("type", "network");
    w.field("protocol", "AMQP 0-9-1");
    w.field("auth_mechanism", "PLAIN");
    w.field("user", c.user);
    w.field("user_who_performed_action", c.user);
    w.field("vhost", c.vhost);
    w.field("host", c.host);
    w.field("port", static_cast<std::uint64_t>(c.port));
    w.field("peer_host", c.peer_host);
    w.field("peer_port", static_cast<std::uint64_t>(c.peer_port));
    w.field("ssl", false);
    for (const char* k : {"peer_cert_issuer", "peer_cert_subject", "peer_cert_validity", "ssl_protocol",
                          "ssl_key_exchange", "ssl_cipher", "ssl_hash"}) {
        if (single)
            w.field(k, "");
        else
            w.null(k);
    }
    w.field("state", c.state);
    w.field("channels", static_cast<std::uint64_t>(c.channels));
    w.field("channel_max", static_cast<std::uint64_t>(c.channel_max));
    w.field("frame_max", static_cast<std::uint64_t>(c.frame_max));
    w.field("timeout", static_cast<std::uint64_t>(c.heartbeat));
    w.field("connected_at", c.connected_at_ms);
    w.table("client_properties", c.client_properties);
    if (const auto* v = c.client_properties.find("connection_name"); v && v->as_string())
        w.field("user_provided_name", *v->as_string());
    w.field("recv_oct", s[Stat::recv_oct]);
    w.rate("recv_oct_details", s.rate_of(Stat::recv_oct));
    w.field("send_oct", s[Stat::send_oct]);
    w.rate("send_oct_details", s.rate_of(Stat::send_oct));
    w.field("recv_cnt", s[Stat::recv_cnt]);
    w.field("send_cnt", s[Stat::send_cnt]);
    w.field("send_pend", 0);
}

void write_channel(JsonOut& w, const broker::ChannelSnapshot& ch) {
    w.field("name", ch.name);
    w.field("node", node_name());
    w.field("idle_since", format_time_ms(ch.idle_since_ms));
    w.field("number", static_cast<std::uint64_t>(ch.number));
    w.field("user", ch.user);
    w.field("user_who_performed_action", ch.user);
    w.field("vhost", ch.vhost);
    connection_details(w, "connection_details", ch.connection_name, ch.peer_host, ch.peer_port);
    w.field("state", ch.closing ? "closing" : "running");
    w.field("confirm", ch.confirm);
    w.field("transactional", ch.transactional);
    w.field("prefetch_count", static_cast<std::uint64_t>(ch.prefetch_count));
    w.field("global_prefetch_count", static_cast<std::uint64_t>(ch.global_prefetch_count));
    w.field("consumer_count", static_cast<std::uint64_t>(ch.consumers));
    w.field("messages_unacknowledged", static_cast<std::uint64_t>(ch.unacked));
    w.field("messages_unconfirmed", static_cast<std::uint64_t>(ch.unconfirmed));
    w.field("messages_uncommitted", 0);
    w.field("acks_uncommitted", 0);
    w.field("pending_raft_commands", 0);
    write_message_stats(
        w, ch.stats,
        {Stat::publish, Stat::confirm, Stat::return_unroutable, Stat::drop_unroutable, Stat::deliver,
         Stat::deliver_no_ack, Stat::get, Stat::get_no_ack, Stat::get_empty, Stat::ack, Stat::redeliver},
        true);
}

void write_consumer(JsonOut& w, const broker::ConsumerSnapshot& c) {
    w.field("consumer_tag", c.tag);
    w.object("queue");
    w.field("name", c.queue);
    w.field("vhost", c.vhost);
    w.close();
    w.object("channel_details");
    w.field("name", c.channel_name);
    w.field("connection_name", c.connection_name);
    w.field("node", node_name());
    w.field("number", static_cast<std::uint64_t>(c.channel_number));
    w.field("peer_host", c.peer_host);
    w.field("peer_port", static_cast<std::uint64_t>(c.peer_port));
    w.field("user", c.user);
    w.close();
    w.field("ack_required", c.ack_required);
    w.field("exclusive", c.exclusive);
    w.field("prefetch_count", static_cast<std::uint64_t>(c.prefetch_count));
    w.field("active", c.active);
    w.field("activity_status", c.active ? "up" : "waiting");
    w.object("arguments");
    if (c.has_priority) w.field("x-priority", static_cast<std::int64_t>(c.priority));
    w.close();
}

void write_vhost(JsonOut& w, const std::string& name, const broker::VHostSettings& settings,
                 const broker::StatsSnapshot& s) {
    // RabbitMQ's default vhost says what it is; Warren's is created without a description.
    const std::string description =
        settings.description.empty() && name == "/" ? "Default virtual host" : settings.description;
    auto tags = [&] {
        w.array("tags");
        for (const std::string& t : settings.tags) w.item(t);
        w.close();
    };
    w.field("name", name);
    w.field("description", description);
    tags();
    w.object("metadata");
    w.field("description", description);
    tags();
    w.close();
    w.field("default_queue_type", "classic");
    w.field("tracing", false);
    w.object("cluster_state");
    w.field(node_name(), "running");
    w.close();
    w.field("messages", s[Stat::messages]);
    w.rate("messages_details", s.rate_of(Stat::messages));
    w.field("messages_ready", s[Stat::messages_ready]);
    w.rate("messages_ready_details", s.rate_of(Stat::messages_ready));
    w.field("messages_unacknowledged", s[Stat::messages_unacknowledged]);
    w.rate("messages_unacknowledged_details", s.rate_of(Stat::messages_unacknowledged));
    w.field("recv_oct", s[Stat::recv_oct]);
    w.rate("recv_oct_details", s.rate_of(Stat::recv_oct));
    w.field("send_oct", s[Stat::send_oct]);
    w.rate("send_oct_details", s.rate_of(Stat::send_oct));
    write_message_stats(
        w, s,
        {Stat::publish, Stat::confirm, Stat::return_unroutable, Stat::drop_unroutable, Stat::deliver,
         Stat::deliver_no_ack, Stat::get, Stat::get_no_ack, Stat::get_empty, Stat::ack, Stat::redeliver},
        true);
}

}  // namespace warren::mgmt
