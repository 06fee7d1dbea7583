// Changes through the API, with RabbitMQ's answers: PUT and DELETE of queues and exchanges,
// purge, get, publish, bindings, closing a connection, and importing definitions. Each goes
// through the same VHost methods as the AMQP methods do; a durable change is answered once it
// is stored, as a durable declare-ok is.
#include <fmt/format.h>

#include <cstring>

#include "broker/base64.hpp"
#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/log.hpp"
#include "broker/message.hpp"
#include "broker/queue_args.hpp"
#include "broker/vhost.hpp"
#include "mgmt/api.hpp"
#include "mgmt/api_call.hpp"
#include "mgmt/erlang_hash.hpp"
#include "mgmt/message_json.hpp"
#include "protocol/basic_properties.hpp"
#include "protocol/reply_code.hpp"

namespace warren::mgmt {

using namespace protocol;

namespace {

bool flag(const json& body, const char* key, bool fallback) {
    auto it = body.find(key);
    if (it == body.end()) return fallback;
    if (it->is_boolean()) return it->get<bool>();
    if (it->is_string()) return *it == "true";
    return fallback;
}

std::string text_of(bool b) {
    return b ? "true" : "false";
}

std::string resource(std::string_view kind, std::string_view name, std::string_view vhost) {
    return fmt::format("{} '{}' in vhost '{}'", kind, name, vhost);
}

std::string inequivalent(std::string_view arg, const std::string& res, const std::string& received,
                         const std::string& current) {
    return fmt::format("inequivalent arg '{}' for {}: received '{}' but current is '{}'", arg, res, received, current);
}

}  // namespace

// RabbitMQ's API does these changes over an AMQP channel as the user, so its permission checks
// apply; a refusal is 401 not_authorised "Access refused." (recorded from 3.10), the AMQP text
// going to the log.
bool Api::permits(Call& call, const broker::VHost& vh, broker::Permission p, bool is_exchange, std::string_view name) {
    const std::string_view subject = is_exchange && name.empty() ? "amq.default" : name;
    const broker::Permissions* perms = broker_.auth().find_permissions(call.user.name, vh.name());
    if (perms && perms->of(p).matches(subject)) return true;
    log::info("management API: access to {} refused for user '{}'",
              resource(is_exchange ? "exchange" : "queue", subject, vh.name()), call.user.name);
    call.error(401, "not_authorised", "Access refused.");
    return false;
}

void Api::put_queue(Call& call, broker::VHost& vh, const std::string& name) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (!permits(call, vh, broker::Permission::Configure, false, name)) return;
    if (name.empty() || name.size() > 255) return call.bad_request("queue name must be 1 to 255 bytes");
    if (name.starts_with("amq."))
        return call.error(403, "access_refused", fmt::format("queue name '{}' contains reserved prefix 'amq.*'", name));
    const bool durable = flag(*body, "durable", true);
    const bool auto_delete = flag(*body, "auto_delete", false);
    FieldTable arguments;
    if (auto it = body->find("arguments"); it != body->end() && !it->is_null()) {
        auto t = table_from_json(*it);
        if (!t) return call.bad_request("arguments must be an object");
        arguments = std::move(*t);
    }
    const std::string res = resource("queue", name, vh.name());
    if (broker::Queue* q = vh.find_queue(name)) {
        if (q->exclusive_owner()) return call.error(400, "bad_request", "queue is exclusive to another connection");
        if (q->flags().durable != durable)
            return call.bad_request(inequivalent("durable", res, text_of(durable), text_of(q->flags().durable)));
        if (q->flags().auto_delete != auto_delete)
            return call.bad_request(
                inequivalent("auto_delete", res, text_of(auto_delete), text_of(q->flags().auto_delete)));
        if (auto detail = broker::check_args_equivalence(q->raw_args(), arguments, res))
            return call.bad_request(*detail);
        return call.reply(204);
    }
    broker::QueueArgsResult parsed = broker::parse_queue_args(arguments, res);
    if (!parsed.args) return call.bad_request(parsed.error);
    // rabbit_quorum_queue's and rabbit_stream_queue's checks, with queue.declare's texts.
    if (parsed.args->type != broker::QueueType::Classic) {
        if (auto_delete) return call.bad_request(fmt::format("invalid property 'auto-delete' for {}", res));
        if (!durable) return call.bad_request(fmt::format("invalid property 'non-durable' for {}", res));
    }
    vh.add_queue(name, broker::QueueFlags{durable, false, auto_delete}, *parsed.args, arguments, 0);
    answer_change(call, 201, durable);
}

void Api::delete_queue(Call& call, broker::VHost& vh, const std::string& name) {
    broker::Queue* q = vh.find_queue(name);
    if (!q) return call.not_found();
    if (!permits(call, vh, broker::Permission::Configure, false, name)) return;
    // As queue.delete: a stream counts as empty, messages waiting for a retry count.
    if (call.target.param("if-empty") == std::optional<std::string>("true") && !q->stream() &&
        q->message_count() + q->messages_delayed() > 0)
        return call.bad_request(fmt::format("{} not empty", resource("queue", name, vh.name())));
    if (call.target.param("if-unused") == std::optional<std::string>("true") && q->consumer_count() > 0)
        return call.bad_request(fmt::format("{} in use", resource("queue", name, vh.name())));
    const bool durable = q->flags().durable;
    vh.delete_queue(*q);
    broker_.drain_dead_letters();
    answer_change(call, 204, durable);
}

void Api::purge_queue(Call& call, broker::VHost& vh, const std::string& name) {
    broker::Queue* q = vh.find_queue(name);
    if (!q) return call.not_found();
    if (!permits(call, vh, broker::Permission::Read, false, name)) return;
    // A stream is read, never emptied (queue.purge gets 540 NOT_IMPLEMENTED).
    if (q->stream())
        return call.bad_request(
            fmt::format("queue.purge not supported by stream queues {}", resource("queue", name, vh.name())));
    q->purge();
    answer_change(call, 204, q->flags().durable);
}

void Api::get_messages(Call& call, broker::VHost& vh, const std::string& name) {
    auto body = call.body_json();
    if (!body) return;
    broker::Queue* q = vh.find_queue(name);
    if (!q) return call.not_found();
    if (!body->is_object()) return call.bad_request("not_json");
    if (!permits(call, vh, broker::Permission::Read, false, name)) return;
    // A stream has no message to take (basic.get gets 540 NOT_IMPLEMENTED).
    if (q->stream())
        return call.bad_request(
            fmt::format("basic.get not supported by stream queues {}", resource("queue", name, vh.name())));
    const std::string ackmode = body->value("ackmode", std::string());
    const bool requeue = ackmode == "ack_requeue_true" || ackmode == "reject_requeue_true";
    if (ackmode != "ack_requeue_true" && ackmode != "ack_requeue_false" && ackmode != "reject_requeue_true" &&
        ackmode != "reject_requeue_false")
        return call.bad_request(
            "ackmode must be ack_requeue_true, ack_requeue_false, reject_requeue_true or "
            "reject_requeue_false");
    const std::string encoding = body->value("encoding", std::string("auto"));
    if (encoding != "auto" && encoding != "base64") return call.bad_request("encoding must be auto or base64");
    std::uint64_t count = 1;
    if (auto it = body->find("count"); it != body->end()) {
        if (!it->is_number_unsigned() && !(it->is_string() && !it->get<std::string>().empty()))
            return call.bad_request("count must be a number");
        count = it->is_number_unsigned() ? it->get<std::uint64_t>() : std::stoull(it->get<std::string>());
    }
    std::optional<std::uint64_t> truncate;
    if (auto it = body->find("truncate"); it != body->end() && it->is_number_unsigned())
        truncate = it->get<std::uint64_t>();
    // A page of messages at most: the API never walks a whole queue on the loop.
    count = std::min<std::uint64_t>(count, 1000);

    std::vector<broker::QueuedMessage> taken;
    json out = json::array();
    while (taken.size() < count) {
        auto m = q->take_one();
        if (!m) break;
        const broker::Message& msg = *m->message;
        std::span<const std::byte> payload = msg.body();
        const std::uint64_t bytes = payload.size();
        if (truncate && payload.size() > *truncate) payload = payload.first(*truncate);
        Payload shown = encode_payload(payload, encoding, "base64");
        json j{{"payload_bytes", bytes},
               {"redelivered", m->redelivered()},
               {"exchange", std::string(msg.exchange())},
               {"routing_key", std::string(msg.routing_key())},
               {"message_count", q->message_count()},
               {"properties", properties_json(msg.decoded_properties())},
               {"payload", std::move(shown.text)},
               {"payload_encoding", std::move(shown.encoding)}};
        out.push_back(std::move(j));
        q->stats().add(broker::Stat::get);
        vh.stats().add(broker::Stat::get);
        if (m->redelivered()) q->stats().add(broker::Stat::redeliver);
        taken.push_back(std::move(*m));
    }
    if (taken.empty()) q->stats().add(broker::Stat::get_empty);
    // All taken first, then settled: a requeued message goes back to its place at the head and
    // must not be taken twice.
    for (auto& m : taken) {
        if (requeue) {
            q->requeue(std::move(m));
        } else if (ackmode == "ack_requeue_false") {
            q->on_delivered(m, true);
            q->stats().add(broker::Stat::ack);
        } else {
            q->on_delivered(m, false);
            q->dead_letter(std::move(m), broker::DeadLetterReason::Rejected);
        }
    }
    broker_.drain_dead_letters();
    call.reply_json(out);
}

void Api::put_exchange(Call& call, broker::VHost& vh, const std::string& name) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (name.empty() || name == "amq.default" || name.starts_with("amq."))
        return call.error(403, "access_refused",
                          fmt::format("exchange name '{}' contains reserved prefix 'amq.*'", name));
    if (!permits(call, vh, broker::Permission::Configure, true, name)) return;
    const std::string type_name = body->value("type", std::string());
    auto type = exchanges::parse_exchange_type(type_name);
    if (!type) return call.bad_request(fmt::format("unknown exchange type '{}'", type_name));
    const bool durable = flag(*body, "durable", true);
    const bool auto_delete = flag(*body, "auto_delete", false);
    const bool internal = flag(*body, "internal", false);
    FieldTable arguments;
    if (auto it = body->find("arguments"); it != body->end() && !it->is_null()) {
        auto t = table_from_json(*it);
        if (!t) return call.bad_request("arguments must be an object");
        arguments = std::move(*t);
    }
    const std::string res = resource("exchange", name, vh.name());
    if (broker::ExchangeEntry* x = vh.find_exchange(name)) {
        if (x->type != *type)
            return call.bad_request(
                inequivalent("type", res, type_name, std::string(exchanges::exchange_type_name(x->type))));
        if (x->durable != durable)
            return call.bad_request(inequivalent("durable", res, text_of(durable), text_of(x->durable)));
        if (x->auto_delete != auto_delete)
            return call.bad_request(inequivalent("auto_delete", res, text_of(auto_delete), text_of(x->auto_delete)));
        if (x->internal != internal)
            return call.bad_request(inequivalent("internal", res, text_of(internal), text_of(x->internal)));
        return call.reply(204);
    }
    // exchange.declare's check of the type's arguments (x-consistent-hash: hash-header, hash-property).
    if (auto invalid = exchanges::validate_exchange_arguments(*type, arguments)) return call.bad_request(*invalid);
    vh.add_exchange(name, *type, durable, auto_delete, internal, std::move(arguments));
    answer_change(call, 201, durable);
}

void Api::delete_exchange(Call& call, broker::VHost& vh, const std::string& name) {
    if (name.empty() || name == "amq.default" || name.starts_with("amq."))
        return call.error(403, "access_refused", fmt::format("operation not permitted on the default exchange"));
    broker::ExchangeEntry* x = vh.find_exchange(name);
    if (!x) return call.not_found();
    if (!permits(call, vh, broker::Permission::Configure, true, name)) return;
    if (call.target.param("if-unused") == std::optional<std::string>("true") &&
        (x->router->binding_count() > 0 || x->bound_as_destination > 0))
        return call.bad_request(fmt::format("{} in use", resource("exchange", name, vh.name())));
    const bool durable = x->durable;
    vh.delete_exchange(*x);
    answer_change(call, 204, durable);
}

void Api::publish(Call& call, broker::VHost& vh, const std::string& name) {
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    if (!permits(call, vh, broker::Permission::Write, true, name == "amq.default" ? std::string() : name)) return;
    broker::ExchangeEntry* x = vh.find_exchange(name == "amq.default" ? std::string() : name);
    if (!x) return call.not_found();
    const std::string routing_key = body->value("routing_key", std::string());
    const std::string encoding = body->value("payload_encoding", std::string("string"));
    auto payload_it = body->find("payload");
    if (payload_it == body->end() || !payload_it->is_string()) return call.bad_request("payload missing");
    std::string payload = payload_it->get<std::string>();
    if (encoding == "base64") {
        auto bytes = broker::base64_decode(payload);
        if (!bytes) return call.bad_request("payload is not base64");
        payload.assign(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    } else if (encoding != "string") {
        return call.bad_request("payload_encoding must be string or base64");
    }
    if (payload.size() > broker_.config().max_message_size) return call.bad_request("message too large");
    // Properties, as basic.publish would carry them.
    BasicProperties props;
    std::vector<std::string> keep;  // the views in props point into these
    keep.reserve(16);
    ByteBuffer header_bytes;
    if (auto it = body->find("properties"); it != body->end() && it->is_object()) {
        using namespace property_flag;
        auto str = [&](const char* key, std::string_view& slot, std::uint16_t f) -> bool {
            auto v = it->find(key);
            if (v == it->end()) return true;
            if (!v->is_string()) return false;
            keep.push_back(v->get<std::string>());
            slot = keep.back();
            props.set_flag(f);
            return true;
        };
        bool ok = str("content_type", props.content_type, content_type) &&
                  str("content_encoding", props.content_encoding, content_encoding) &&
                  str("correlation_id", props.correlation_id, correlation_id) &&
                  str("reply_to", props.reply_to, reply_to) && str("expiration", props.expiration, expiration) &&
                  str("message_id", props.message_id, message_id) && str("type", props.type, type) &&
                  str("user_id", props.user_id, user_id) && str("app_id", props.app_id, app_id) &&
                  str("cluster_id", props.cluster_id, cluster_id);
        if (!ok) return call.bad_request("a property has the wrong type");
        if (auto v = it->find("delivery_mode"); v != it->end()) {
            if (!v->is_number_unsigned() || v->get<std::uint64_t>() > 255) return call.bad_request("bad delivery_mode");
            props.delivery_mode = static_cast<std::uint8_t>(v->get<std::uint64_t>());
            props.set_flag(delivery_mode);
        }
        if (auto v = it->find("priority"); v != it->end()) {
            if (!v->is_number_unsigned() || v->get<std::uint64_t>() > 255) return call.bad_request("bad priority");
            props.priority = static_cast<std::uint8_t>(v->get<std::uint64_t>());
            props.set_flag(priority);
        }
        if (auto v = it->find("timestamp"); v != it->end()) {
            if (!v->is_number_unsigned()) return call.bad_request("bad timestamp");
            props.timestamp = v->get<std::uint64_t>();
            props.set_flag(timestamp);
        }
        if (auto v = it->find("headers"); v != it->end() && !v->empty()) {
            auto t = table_from_json(*v);
            if (!t) return call.bad_request("headers must be an object");
            header_bytes = encode_table_body(*t);
            props.headers = TableView::trusted(header_bytes.span());
            props.set_flag(headers);
        }
    }
    ByteBuffer encoded;
    encode_properties(encoded, props);
    broker::MessageRef message = broker::Message::create(x->name, routing_key, encoded.span(), payload.size());
    if (!message) return call.bad_request("invalid properties");
    if (!payload.empty()) std::memcpy(message->body_data(), payload.data(), payload.size());
    broker::PublishResult result = vh.publish(*x, message);
    vh.stats().add(broker::Stat::publish);
    if (!result.routed) vh.stats().add(broker::Stat::drop_unroutable);
    broker_.drain_dead_letters();
    call.reply_json(json{{"routed", result.routed}});
}

void Api::post_binding(Call& call) {
    // /api/bindings/{vhost}/e/{source}/{q|e}/{destination}
    const auto& s = call.seg();
    if (s[3] != "e" || (s[5] != "q" && s[5] != "e")) return call.not_found();
    broker::VHost* vh = broker_.find_vhost(s[2]);
    if (!vh) return call.error(404, "not_found", "vhost_not_found");
    auto body = call.body_json();
    if (!body) return;
    if (!body->is_object()) return call.bad_request("not_json");
    broker::ExchangeEntry* source = vh->find_exchange(s[4]);
    if (!source) return call.not_found();
    if (source == &vh->default_exchange())
        return call.error(403, "access_refused", "operation not permitted on the default exchange");
    exchanges::Destination destination;
    bool durable = source->durable;
    if (s[5] == "q") {
        broker::Queue* q = vh->find_queue(s[6]);
        if (!q) return call.not_found();
        destination = q->as_destination();
        durable = durable && q->flags().durable;
    } else {
        broker::ExchangeEntry* d = vh->find_exchange(s[6]);
        if (!d) return call.not_found();
        destination = d->as_destination();
        durable = durable && d->durable;
    }
    const std::string key = body->value("routing_key", std::string());
    FieldTable arguments;
    if (auto it = body->find("arguments"); it != body->end() && !it->is_null()) {
        auto t = table_from_json(*it);
        if (!t) return call.bad_request("arguments must be an object");
        arguments = std::move(*t);
    }
    if (auto problem = source->router->validate_binding(arguments)) return call.bad_request(*problem);
    if (auto problem = source->router->validate_binding_key(key)) return call.bad_request(*problem);
    // queue.bind and exchange.bind: write on the destination, read on the source.
    if (!permits(call, *vh, broker::Permission::Write, s[5] == "e", s[6]) ||
        !permits(call, *vh, broker::Permission::Read, true, s[4]))
        return;
    vh->bind(*source, destination, key, arguments);
    answer_change(call, 201, durable);
}

void Api::delete_binding(Call& call) {
    const auto& s = call.seg();
    if (s[3] != "e" || (s[5] != "q" && s[5] != "e")) return call.not_found();
    broker::VHost* vh = broker_.find_vhost(s[2]);
    if (!vh) return call.not_found();
    for (const auto& b : view_.bindings_from(s[2], s[4])) {
        if (b.destination != s[6] || b.to_exchange != (s[5] == "e") ||
            properties_key(b.routing_key, b.arguments) != s[7])
            continue;
        broker::ExchangeEntry* source = vh->find_exchange(s[4]);
        exchanges::Destination destination;
        if (b.to_exchange) {
            broker::ExchangeEntry* d = vh->find_exchange(s[6]);
            if (!d || !source) return call.not_found();
            destination = d->as_destination();
        } else {
            broker::Queue* q = vh->find_queue(s[6]);
            if (!q || !source) return call.not_found();
            destination = q->as_destination();
        }
        if (!permits(call, *vh, broker::Permission::Write, b.to_exchange, s[6]) ||
            !permits(call, *vh, broker::Permission::Read, true, s[4]))
            return;
        vh->unbind(*source, destination, b.routing_key, b.arguments);
        return call.reply(204);
    }
    call.not_found();
}

void Api::delete_connection(Call& call, std::uint64_t id) {
    broker::Connection* c = broker_.find_connection(id);
    if (!c) return call.not_found();
    // A management user may close its own connections only.
    if (!allows(call.user.tags, Need::Administrator) && c->user() != call.user.name)
        return call.error(401, "not_authorised", "Not administrator user");
    std::string reason = "Closed via management plugin";
    if (const std::string* r = call.request.header("x-reason")) reason = *r;
    c->close_with_error(amqp_error(ReplyCode::ConnectionForced, fmt::format("CONNECTION_FORCED - {}", reason)));
    call.reply(204);
}

}  // namespace warren::mgmt
