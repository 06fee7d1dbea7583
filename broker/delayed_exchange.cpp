// See delayed_exchange.hpp. Holding and releasing; routing and storing a held message are the
// vhost's (VHost::hold_routed, VHost::release_delayed), as for any publish.
#include "broker/delayed_exchange.hpp"

#include <fmt/format.h>

#include "broker/broker.hpp"
#include "broker/held_checkpoint.hpp"
#include "broker/log.hpp"
#include "broker/rabbit_text.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

using protocol::AmqpError;
using protocol::ReplyCode;

namespace {
// Messages released per exchange per loop turn: a million deadlines falling in the same
// millisecond go out over many turns, with other work between them.
constexpr std::size_t release_budget = 512;
// A held message is read back alone, in deadline order, not in the order of the log.
constexpr std::size_t random_read_ahead = 4096;
}  // namespace

std::variant<ExchangeTypeChoice, AmqpError> resolve_exchange_type(std::string_view type,
                                                                  const protocol::FieldTable& arguments,
                                                                  std::string_view resource) {
    // rabbit_exchange:check_type/1 says "unknown" for a name that is not an Erlang atom and
    // "invalid" for one that is (as '' is). Without RabbitMQ's atom table, Warren says "invalid"
    // for the empty name only.
    auto unknown = [](std::string_view name) {
        return protocol::amqp_error(ReplyCode::CommandInvalid,
                                    fmt::format("{} exchange type '{}'", name.empty() ? "invalid" : "unknown", name));
    };
    if (type == delayed_message_type) {
        // rabbit_exchange_type_delayed_message:validate/1, in its words.
        const protocol::FieldValue* v = arguments.find(args::delayed_type);
        const std::string* name = v ? v->as_string() : nullptr;
        const auto* bytes = v ? v->get_if<protocol::ByteArray>() : nullptr;
        std::string_view underlying = name ? std::string_view(*name) : bytes ? std::string_view(bytes->bytes) : "";
        if ((name || bytes) && underlying == delayed_message_type)
            return protocol::amqp_error(ReplyCode::PreconditionFailed,
                                        "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'");
        if (!name && !bytes)
            return protocol::amqp_error(ReplyCode::PreconditionFailed,
                                        "Invalid argument, 'x-delayed-type' must be an existing exchange type");
        auto router = exchanges::parse_exchange_type(underlying);
        if (!router) return unknown(underlying);
        return ExchangeTypeChoice{*router, DelayedMode::PluginType};
    }
    auto router = exchanges::parse_exchange_type(type);
    if (!router) return unknown(type);
    ExchangeTypeChoice choice{*router, DelayedMode::None};
    if (const protocol::FieldValue* v = arguments.find(args::delayed_exchange)) {
        const bool* on = v->get_if<bool>();
        if (!on)
            return protocol::amqp_error(ReplyCode::PreconditionFailed,
                                        fmt::format("invalid type '{}' for arg '{}' in {}", rabbit_type_name(v->type()),
                                                    args::delayed_exchange, resource));
        if (*on) choice.delayed = DelayedMode::Argument;
    }
    return choice;
}

// ---- ExchangeEntry (here, where DelayedExchange is complete) ---------------------------------

ExchangeEntry::ExchangeEntry() = default;
ExchangeEntry::~ExchangeEntry() = default;

std::string_view ExchangeEntry::type_name() const {
    return plugin_delayed_type ? delayed_message_type : exchanges::exchange_type_name(type);
}

std::size_t ExchangeEntry::messages_delayed() const {
    return delayed ? delayed->messages_delayed() : 0;
}

// ---- DelayedExchange ----------------------------------------------------------------------------

DelayedExchange::DelayedExchange(VHost& vhost, ExchangeEntry& exchange)
    : vhost_(vhost), exchange_(exchange), held_(vhost.broker().timers(), &pager_, [this] { on_due(); }) {}

bool DelayedExchange::is_stored(const Message& m) const {
    return stores(m) && m.store_location();
}

void DelayedExchange::hold(MessageRef message, std::uint64_t seq, TimePoint at) {
    VHostStorage* storage = vhost_.storage();
    held_.hold(QueuedMessage(std::move(message), seq), at, storage != nullptr);
    if (storage) storage->want_page_out(*this);
}

void DelayedExchange::restore(std::uint64_t location, std::uint64_t seq, TimePoint at) {
    held_.restore(location, seq, 0, at, TimePoint{});
    next_seq_ = std::max(next_seq_, seq + 1);
}

void DelayedExchange::on_due() {
    const TimePoint now = vhost_.broker().now();
    VHostStorage* storage = vhost_.storage();
    for (std::size_t n = 0; n < release_budget; ++n) {
        TimePoint deadline{};
        std::optional<QueuedMessage> due = held_.pop_due(now, &deadline);
        if (!due) break;
        vhost_.broker().note_release(deadline);
        MessageRef m = std::move(due->message);
        if (storage && is_stored(*m)) {
            // Settled here; the queues it reaches store it again, each as it would a publish.
            storage->settled(m->store_location(), stored_id_);
        }
        vhost_.release_delayed(exchange_, std::move(m));
    }
    held_.rearm();
}

void DelayedExchange::page_out(bool everything) {
    held_.page_out(vhost_.broker().now(), vhost_.broker().memory_pressure(), everything);
}

void DelayedExchange::forget_stored() {
    VHostStorage* storage = vhost_.storage();
    held_.drain([&](const DelayedMessages::View& v) {
        if (!storage) return;
        // A stored message, or a record written for it alone under memory pressure.
        if (v.message ? is_stored(*v.message) : true) storage->forget(v.location);
    });
}

void DelayedExchange::shut_down() {
    held_.shut_down();
    if (VHostStorage* s = vhost_.storage()) s->forget_exchange(*this);
}

void DelayedExchange::checkpoint(std::vector<store::RecoveredEntry>& out, TimePoint now, std::int64_t now_ms) const {
    if (!stored_id_) return;
    held_.for_each([&](const DelayedMessages::View& v) {
        auto e = held_checkpoint_entry(v, stored_id_, v.message && is_stored(*v.message));
        if (!e) return;
        e->deadline_ms = wall_ms(v.at, now, now_ms);  // an exchange's deadline is its release
        out.push_back(*e);
    });
}

MessageRef DelayedExchange::ExchangePager::load(std::uint64_t location, bool transient) {
    VHostStorage* storage = x_.vhost_.storage();
    if (!storage) return {};
    MessageRef m = storage->load(location, random_read_ahead);
    if (transient) {
        storage->forget(location);
        if (m) m->set_store_location(0);
    } else if (!m) {
        storage->settled(location, x_.stored_id_);
    }
    return m;
}

bool DelayedExchange::ExchangePager::can_page_out(const Message& m) const {
    return x_.is_stored(m) && x_.vhost_.storage()->is_written(m.store_location());
}

void DelayedExchange::ExchangePager::write_transient(std::span<Message* const> messages,
                                                     std::vector<std::uint64_t>& locations) {
    if (VHostStorage* storage = x_.vhost_.storage()) storage->write_transient(messages, locations);
}

}  // namespace warren::broker
