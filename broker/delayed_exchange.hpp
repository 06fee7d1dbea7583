// A delayed exchange: the x-delayed-message type of rabbitmq-delayed-message-exchange (routing as
// its x-delayed-type argument names), or any exchange declared with x-delayed-exchange = true
// (LavinMQ). A message that reaches it with a positive x-delay header waits here, then is routed
// by the exchange's bindings as they are when its delay ends. Waiting messages are stored like a
// durable queue's (persistent messages in a durable exchange, under a stored id of its own), so
// that they survive a restart with their deadlines; paged out, each costs a 24-byte entry.
#pragma once

#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/delayed_messages.hpp"
#include "broker/exchange_entry.hpp"
#include "protocol/field_table.hpp"
#include "protocol/reply_code.hpp"
#include "store/message_log.hpp"

namespace warren::broker {

class VHost;

namespace args {
inline constexpr std::string_view delayed_type = "x-delayed-type";
inline constexpr std::string_view delayed_exchange = "x-delayed-exchange";
}  // namespace args
inline constexpr std::string_view delayed_message_type = "x-delayed-message";

enum class DelayedMode : std::uint8_t { None, Argument, PluginType };

struct ExchangeTypeChoice {
    exchanges::ExchangeType router = exchanges::ExchangeType::Direct;
    DelayedMode delayed = DelayedMode::None;
};

// exchange.declare's type and arguments for a new exchange, checked as RabbitMQ with the plugin
// checks them (rabbit_exchange_type_delayed_message:validate/1), and x-delayed-exchange. Also
// used to rebuild stored exchanges at start-up. `resource` is "exchange 'x' in vhost '/'".
std::variant<ExchangeTypeChoice, protocol::AmqpError> resolve_exchange_type(std::string_view type,
                                                                            const protocol::FieldTable& arguments,
                                                                            std::string_view resource);

class DelayedExchange {
public:
    DelayedExchange(VHost& vhost, ExchangeEntry& exchange);
    DelayedExchange(const DelayedExchange&) = delete;
    DelayedExchange& operator=(const DelayedExchange&) = delete;

    // The exchange's id in its vhost's message log (0: nothing is stored). Allocated as a
    // queue's is, from the same sequence, and never reused.
    std::uint32_t stored_id() const { return stored_id_; }
    void set_stored_id(std::uint32_t id) { stored_id_ = id; }
    std::size_t messages_delayed() const { return held_.size(); }
    std::size_t messages_in_memory() const { return held_.in_memory(); }
    // Whether this exchange's copy of `message` is in the message log.
    bool is_stored(const Message& message) const;
    bool stores(const Message& message) const { return stored_id_ && message.is_persistent(); }

    // The seq a held message gets (its place in the record's queue list, and the tie-break for
    // equal deadlines).
    std::uint64_t take_seq() { return next_seq_++; }
    // Holds `message` (the vhost has written it if it is stored) until `at`.
    void hold(MessageRef message, std::uint64_t seq, TimePoint at);
    // Recovery: a stored message held until `at` (passed: released at once, in deadline order).
    void restore(std::uint64_t location, std::uint64_t seq, TimePoint at);

    // End of turn: what arrived leaves memory once written (see DelayedMessages::page_out).
    void page_out(bool everything = false);
    bool page_out_wanted() const { return page_out_wanted_; }
    void set_page_out_wanted(bool w) { page_out_wanted_ = w; }
    // The exchange is deleted: its messages go with it (as the plugin's can no longer route).
    void forget_stored();
    // The timer off, before the exchange goes away.
    void shut_down();
    // A clean shutdown: this exchange's stored messages as the checkpoint keeps them.
    void checkpoint(std::vector<store::RecoveredEntry>& out, TimePoint now, std::int64_t now_ms) const;

private:
    void on_due();

    class ExchangePager final : public Pager {
    public:
        explicit ExchangePager(DelayedExchange& x) : x_(x) {}
        MessageRef load(std::uint64_t location, bool transient) override;
        bool can_page_out(const Message& message) const override;
        void write_transient(std::span<Message* const> messages, std::vector<std::uint64_t>& locations) override;

    private:
        DelayedExchange& x_;
    };

    VHost& vhost_;
    ExchangeEntry& exchange_;
    std::uint32_t stored_id_ = 0;
    std::uint64_t next_seq_ = 1;
    bool page_out_wanted_ = false;
    ExchangePager pager_{*this};
    DelayedMessages held_;
};

}  // namespace warren::broker
