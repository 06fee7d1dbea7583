// queue.declare, bind, unbind, purge and delete, with RabbitMQ's checks and texts
// (rabbit_channel:handle_method/3, rabbit_amqqueue:assert_equivalence/5).
#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/channel_errors.hpp"
#include "broker/connection.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
// RabbitMQ's rabbit_stream_queue:stat/1 reports no consumers for a stream, whatever it has.
std::size_t declared_consumer_count(const Queue& q) { return q.stream() ? 0 : q.consumer_count(); }
}  // namespace

Status Channel::check_exclusive(const Queue& queue) const {
    if (queue.exclusive_owner() != 0 && queue.exclusive_owner() != connection_.id())
        return errors::resource_locked(queue.name(), vhost().name());
    return std::nullopt;
}

Status Channel::resolve_queue_name(std::string_view name, std::string& out) const {
    if (!name.empty()) {
        out = name;
        return std::nullopt;
    }
    if (most_recent_queue_.empty()) return amqp_error(ReplyCode::NotFound, "no previously declared queue");
    out = most_recent_queue_;
    return std::nullopt;
}

Status Channel::find_queue_for(std::string_view name, Queue*& out, Permission permission) {
    std::string resolved;
    if (Status s = resolve_queue_name(name, resolved)) return s;
    if (Status s = check_access(permission, ResourceKind::Queue, resolved)) return s;
    out = vhost().find_queue(resolved);
    if (!out) return errors::no_queue(resolved, vhost().name());
    return check_exclusive(*out);
}

Status Channel::on_queue_declare(const QueueDeclare& m) {
    VHost& vh = vhost();
    std::string name(m.queue.view());
    if (m.passive) {
        // The direct reply-to pseudo-queue, and the reply addresses it hands out, exist for a
        // passive declare as a queue with one consumer (RabbitMQ does the same).
        if (name == "amq.rabbitmq.reply-to" ||
            (name.starts_with("amq.rabbitmq.reply-to.") && connection_.broker().find_reply_to(name))) {
            if (!m.nowait) connection_.send_method(id_, QueueDeclareOk{name, 0, 1});
            return std::nullopt;
        }
        // No empty-name shortcut here: RabbitMQ looks up '' itself (404 no queue '').
        Queue* q = vh.find_queue(name);
        if (!q) return errors::no_queue(name, vh.name());
        if (Status s = check_exclusive(*q)) return s;
        most_recent_queue_ = q->name();
        ++connection_.broker().churn().queues_declared;
        if (!m.nowait)
            connection_.send_method(id_, QueueDeclareOk{q->name(), static_cast<std::uint32_t>(q->message_count()),
                                                        static_cast<std::uint32_t>(declared_consumer_count(*q))});
        return std::nullopt;
    }
    if (name.empty())
        name = connection_.broker().generate_name("amq.gen-");
    else if (name.starts_with("amq."))
        return errors::reserved_name("queue", name);

    if (Status s = check_access(Permission::Configure, ResourceKind::Queue, name)) return s;
    const std::string resource = resource_name("queue", name, vh.name());
    FieldTable arguments = m.arguments.to_table();
    const std::uint64_t owner = m.exclusive ? connection_.id() : 0;
    Queue* q = vh.find_queue(name);
    if (q) {
        if (Status s = check_exclusive(*q)) return s;
        if (q->exclusive_owner() != owner) return errors::resource_locked(name, vh.name());
        if (q->flags().durable != m.durable)
            return errors::inequivalent("durable", resource, errors::bool_text(m.durable),
                                        errors::bool_text(q->flags().durable));
        if (q->flags().auto_delete != m.auto_delete)
            return errors::inequivalent("auto_delete", resource, errors::bool_text(m.auto_delete),
                                        errors::bool_text(q->flags().auto_delete));
        if (auto detail = check_args_equivalence(q->raw_args(), arguments, resource))
            return errors::precondition(*detail);
        q->touch();
    } else {
        if (auto limit = limit_reached(vh.limits().max_queues, vh.queues().size()))
            return errors::precondition(
                fmt::format("cannot declare queue '{}': queue limit in vhost '{}' ({}) is reached", name, vh.name(), *limit));
        // A dead-letter exchange: read on the queue and write on the exchange, as dead-lettering
        // will publish there on the declarer's behalf.
        if (const FieldValue* dlx = arguments.find("x-dead-letter-exchange"); dlx && dlx->as_string()) {
            if (Status s = check_access(Permission::Read, ResourceKind::Queue, name)) return s;
            if (Status s = check_access(Permission::Write, ResourceKind::Exchange, *dlx->as_string())) return s;
        }
        QueueArgsResult parsed = parse_queue_args(arguments, resource);
        if (!parsed.args) return errors::precondition(parsed.error);
        // rabbit_quorum_queue:declare/2's checks, in its order.
        if (parsed.args->type == QueueType::Stream && m.queue.view().empty())
            return errors::precondition("Cannot declare a server-named queue for type rabbit_stream_queue");
        if (parsed.args->type != QueueType::Classic) {
            if (m.auto_delete) return errors::precondition(fmt::format("invalid property 'auto-delete' for {}", resource));
            if (m.exclusive)
                return errors::precondition(fmt::format("invalid property 'exclusive-owner' for {}", resource));
            if (!m.durable) return errors::precondition(fmt::format("invalid property 'non-durable' for {}", resource));
        }
        QueueFlags flags{m.durable, m.exclusive, m.auto_delete};
        q = &vh.add_queue(name, flags, std::move(*parsed.args), std::move(arguments), owner);
        if (m.exclusive) connection_.add_exclusive_queue(q->id());
    }
    most_recent_queue_ = name;
    ++connection_.broker().churn().queues_declared;
    if (!m.nowait)
        connection_.send_method(id_, QueueDeclareOk{q->name(), static_cast<std::uint32_t>(q->message_count()),
                                                    static_cast<std::uint32_t>(declared_consumer_count(*q))});
    return std::nullopt;
}

// What queue.bind and queue.unbind share: the empty-name shortcuts (an empty queue means the
// channel's last declared queue, and with an empty key too, that queue's name is the key) and
// the source exchange, which must exist and may not be the default exchange.
Status Channel::resolve_queue_binding(std::string_view queue, std::string_view exchange, std::string_view key,
                                      QueueBinding& out) {
    if (Status s = resolve_queue_name(queue, out.queue_name)) return s;
    out.routing_key.assign(key);
    if (queue.empty() && key.empty()) out.routing_key = out.queue_name;
    if (Status s = check_binding_access(ResourceKind::Queue, out.queue_name, exchange, out.routing_key)) return s;
    if (exchange.empty()) return errors::default_exchange_refused();
    out.source = vhost().find_exchange(exchange);
    if (!out.source) return errors::no_exchange(exchange, vhost().name());
    return std::nullopt;
}

Status Channel::on_queue_bind(const QueueBind& m) {
    QueueBinding b;
    if (Status s = resolve_queue_binding(m.queue.view(), m.exchange.view(), m.routing_key.view(), b)) return s;
    Queue* q = vhost().find_queue(b.queue_name);
    if (!q) return errors::no_queue(b.queue_name, vhost().name());
    if (Status s = check_exclusive(*q)) return s;
    FieldTable arguments = m.arguments.to_table();
    if (auto invalid = b.source->router->validate_binding(arguments)) return errors::precondition(*invalid);
    if (auto invalid = b.source->router->validate_binding_key(b.routing_key))
        return errors::precondition(*invalid);
    vhost().bind(*b.source, q->as_destination(), b.routing_key, arguments);
    if (!m.nowait) connection_.send_method(id_, QueueBindOk{});
    return std::nullopt;
}

Status Channel::on_queue_unbind(const QueueUnbind& m) {
    QueueBinding b;
    if (Status s = resolve_queue_binding(m.queue.view(), m.exchange.view(), m.routing_key.view(), b)) return s;
    // As RabbitMQ 3.10: unbinding a missing queue succeeds, and so does unbinding another
    // connection's exclusive queue.
    if (Queue* q = vhost().find_queue(b.queue_name))
        vhost().unbind(*b.source, q->as_destination(), b.routing_key, m.arguments.to_table());
    connection_.send_method(id_, QueueUnbindOk{});
    return std::nullopt;
}

Status Channel::on_queue_purge(const QueuePurge& m) {
    Queue* q = nullptr;
    if (Status s = find_queue_for(m.queue.view(), q, Permission::Read)) return s;
    if (q->stream())
        return amqp_error(ReplyCode::NotImplemented, fmt::format("queue.purge not supported by stream queues {}",
                                                                 resource_name("queue", q->name(), vhost().name())));
    std::size_t purged = q->purge();
    if (!m.nowait) connection_.send_method(id_, QueuePurgeOk{static_cast<std::uint32_t>(purged)});
    return std::nullopt;
}

Status Channel::on_queue_delete(const QueueDelete& m) {
    VHost& vh = vhost();
    std::string name;
    if (Status s = resolve_queue_name(m.queue.view(), name)) return s;
    if (Status s = check_access(Permission::Configure, ResourceKind::Queue, name)) return s;
    std::size_t count = 0;
    // Deleting a queue that does not exist succeeds, as in RabbitMQ.
    if (Queue* q = vh.find_queue(name)) {
        if (Status s = check_exclusive(*q)) return s;
        const bool q_is_stream = q->stream() != nullptr;
        if (m.if_unused && q->consumer_count() > 0)
            return errors::precondition(fmt::format("{} in use", resource_name("queue", name, vh.name())));
        // A stream counts as empty here, and its delete-ok says 0, as RabbitMQ's.
        if (m.if_empty && !q->stream() && q->message_count() + q->messages_delayed() > 0)
            return errors::precondition(fmt::format("{} not empty", resource_name("queue", name, vh.name())));
        count = vh.delete_queue(*q);
        if (q_is_stream) count = 0;
    }
    if (!m.nowait) connection_.send_method(id_, QueueDeleteOk{static_cast<std::uint32_t>(count)});
    return std::nullopt;
}

}  // namespace warren::broker
