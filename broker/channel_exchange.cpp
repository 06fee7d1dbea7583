// exchange.declare, delete, bind and unbind, with RabbitMQ's checks and texts
// (rabbit_channel:handle_method/3 and rabbit_exchange:assert_equivalence/6).
#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/channel_errors.hpp"
#include "broker/connection.hpp"
#include "broker/delayed_exchange.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using namespace protocol;
using exchanges::DestinationKind;

namespace {

bool has_reserved_prefix(std::string_view name) { return name.starts_with("amq."); }

// The alternate-exchange argument is the only exchange argument RabbitMQ compares.
std::optional<std::string> alternate_exchange_of(const FieldTable& args) {
    const FieldValue* v = args.find(args::alternate_exchange);
    if (v && v->as_string()) return *v->as_string();
    return std::nullopt;
}

}  // namespace

Status Channel::on_exchange_declare(const ExchangeDeclare& m) {
    VHost& vh = vhost();
    std::string_view name = m.exchange.view();
    if (name.empty()) return errors::default_exchange_refused();
    if (m.passive) {
        if (!vh.find_exchange(name)) return errors::no_exchange(name, vh.name());
        if (!m.nowait) connection_.send_method(id_, ExchangeDeclareOk{});
        return std::nullopt;
    }
    // rabbit_exchange:check_type/1 first; x-delayed-message is a type (the plugin registers it),
    // whose arguments are checked only when the exchange is created, as the plugin's validate/1.
    const std::string_view type_name = m.type.view();
    if (type_name != delayed_message_type && !exchanges::parse_exchange_type(type_name)) {
        // rabbit_exchange:check_type/1 says "unknown" for a name that is not an Erlang atom and
        // "invalid" for one that is (as '' and common words like 'foo' happen to be). Without
        // RabbitMQ's atom table, Warren says "invalid" for the empty name only.
        std::string_view word = m.type.empty() ? "invalid" : "unknown";
        return amqp_error(ReplyCode::CommandInvalid, fmt::format("{} exchange type '{}'", word, type_name));
    }
    if (Status s = check_access(Permission::Configure, ResourceKind::Exchange, name)) return s;
    FieldTable arguments = m.arguments.to_table();
    ExchangeEntry* x = vh.find_exchange(name);
    std::string resource = resource_name("exchange", name, vh.name());
    if (!x) {
        if (has_reserved_prefix(name)) return errors::reserved_name("exchange", name);
        if (const FieldValue* ae = arguments.find(args::alternate_exchange); ae && !ae->as_string())
            return errors::precondition(fmt::format("invalid type '{}' for arg '{}' in {}",
                                                    rabbit_type_name(ae->type()), args::alternate_exchange, resource));
        // An alternate exchange: read on this one and write on that one, as a publish would need.
        if (auto ae = alternate_exchange_of(arguments)) {
            if (Status s = check_access(Permission::Read, ResourceKind::Exchange, name)) return s;
            if (Status s = check_access(Permission::Write, ResourceKind::Exchange, *ae)) return s;
        }
        auto resolved = resolve_exchange_type(type_name, arguments, resource);
        if (auto* error = std::get_if<AmqpError>(&resolved)) return *error;
        const auto& choice = std::get<ExchangeTypeChoice>(resolved);
        if (auto invalid = exchanges::validate_exchange_arguments(choice.router, arguments))
            return errors::precondition(*invalid);
        vh.add_exchange(std::string(name), choice.router, m.durable, m.auto_delete, m.internal, std::move(arguments),
                        choice.delayed);
    } else {
        if (x->type_name() != type_name)
            return errors::inequivalent("type", resource, type_name, x->type_name());
        if (x->durable != m.durable)
            return errors::inequivalent("durable", resource, errors::bool_text(m.durable), errors::bool_text(x->durable));
        if (x->auto_delete != m.auto_delete)
            return errors::inequivalent("auto_delete", resource, errors::bool_text(m.auto_delete),
                                        errors::bool_text(x->auto_delete));
        if (x->internal != m.internal)
            return errors::inequivalent("internal", resource, errors::bool_text(m.internal),
                                        errors::bool_text(x->internal));
        auto describe = [](const FieldTable& t, std::string_view key) -> std::string {
            const FieldValue* v = t.find(key);
            if (!v) return "none";
            return fmt::format("the value '{}' of type '{}'", rabbit_value_text(*v), rabbit_type_name(v->type()));
        };
        // The declared arguments are compared, not what a policy adds (rabbit_exchange's
        // equivalence check reads the arguments only).
        auto requested_ae = alternate_exchange_of(arguments);
        if (requested_ae != alternate_exchange_of(x->arguments))
            return errors::precondition(fmt::format("inequivalent arg 'alternate-exchange' for {}: received {} but current is {}",
                                                    resource, describe(arguments, args::alternate_exchange),
                                                    describe(x->arguments, args::alternate_exchange)));
        // LavinMQ's x-delayed-exchange changes what the exchange does, so it must match (the
        // plugin's x-delayed-type is not compared: a redeclare keeps the type it has, as there).
        if (!x->plugin_delayed_type) {
            const FieldValue* v = arguments.find(args::delayed_exchange);
            const bool requested = v && v->get_if<bool>() && *v->get_if<bool>();
            if (requested != x->declared_delayed)
                return errors::precondition(fmt::format("inequivalent arg '{}' for {}: received {} but current is {}",
                                                        args::delayed_exchange, resource,
                                                        describe(arguments, args::delayed_exchange),
                                                        describe(x->arguments, args::delayed_exchange)));
        }
    }
    if (!m.nowait) connection_.send_method(id_, ExchangeDeclareOk{});
    return std::nullopt;
}

Status Channel::on_exchange_delete(const ExchangeDelete& m) {
    VHost& vh = vhost();
    std::string_view name = m.exchange.view();
    if (name.empty()) return errors::default_exchange_refused();
    if (has_reserved_prefix(name))
        return amqp_error(ReplyCode::AccessRefused,
                          fmt::format("deletion of system {} not allowed", resource_name("exchange", name, vh.name())));
    if (Status s = check_access(Permission::Configure, ResourceKind::Exchange, name)) return s;
    if (ExchangeEntry* x = vh.find_exchange(name)) {
        if (m.if_unused && x->router->binding_count() > 0)
            return errors::precondition(fmt::format("{} in use", resource_name("exchange", name, vh.name())));
        vh.delete_exchange(*x);
    }
    if (!m.nowait) connection_.send_method(id_, ExchangeDeleteOk{});
    return std::nullopt;
}

// rabbit_channel:binding_action/10: write on the destination, then (neither end being the
// default exchange) read on the source, and read on the key if the source is a topic exchange.
Status Channel::check_binding_access(ResourceKind kind, std::string_view destination, std::string_view source,
                                     std::string_view routing_key) {
    if (Status s = check_access(Permission::Write, kind, destination)) return s;
    if ((kind == ResourceKind::Exchange && destination.empty()) || source.empty())
        return errors::default_exchange_refused();
    if (Status s = check_access(Permission::Read, ResourceKind::Exchange, source)) return s;
    if (ExchangeEntry* x = vhost().find_exchange(source))
        if (Status s = check_topic_access(Permission::Read, *x, routing_key)) return s;
    return std::nullopt;
}

Status Channel::on_exchange_bind(const ExchangeBind& m) {
    VHost& vh = vhost();
    if (Status s = check_binding_access(ResourceKind::Exchange, m.destination.view(), m.source.view(),
                                        m.routing_key.view()))
        return s;
    ExchangeEntry* source = vh.find_exchange(m.source.view());
    if (!source) return errors::no_exchange(m.source.view(), vh.name());
    ExchangeEntry* destination = vh.find_exchange(m.destination.view());
    if (!destination) return errors::no_exchange(m.destination.view(), vh.name());
    FieldTable arguments = m.arguments.to_table();
    if (auto invalid = source->router->validate_binding(arguments)) return errors::precondition(*invalid);
    if (auto invalid = source->router->validate_binding_key(m.routing_key.view()))
        return errors::precondition(*invalid);
    vh.bind(*source, destination->as_destination(), m.routing_key.view(), arguments);
    if (!m.nowait) connection_.send_method(id_, ExchangeBindOk{});
    return std::nullopt;
}

Status Channel::on_exchange_unbind(const ExchangeUnbind& m) {
    VHost& vh = vhost();
    if (Status s = check_binding_access(ResourceKind::Exchange, m.destination.view(), m.source.view(),
                                        m.routing_key.view()))
        return s;
    ExchangeEntry* source = vh.find_exchange(m.source.view());
    if (!source) return errors::no_exchange(m.source.view(), vh.name());
    ExchangeEntry* destination = vh.find_exchange(m.destination.view());
    if (!destination) return errors::no_exchange(m.destination.view(), vh.name());
    vh.unbind(*source, destination->as_destination(), m.routing_key.view(), m.arguments.to_table());
    if (!m.nowait) connection_.send_method(id_, ExchangeUnbindOk{});
    return std::nullopt;
}

}  // namespace warren::broker
