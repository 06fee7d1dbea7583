// basic.publish: content assembly (method, header, body frames), routing, mandatory returns,
// publisher confirms and transactions (routed at publish, enqueued at commit, as RabbitMQ).
#include <cstring>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/channel_errors.hpp"
#include "broker/connection.hpp"
#include "broker/delay_header.hpp"
#include "broker/scope_guard.hpp"
#include "broker/server_texts.hpp"
#include "broker/durability.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
constexpr std::string_view reply_to_queue = "amq.rabbitmq.reply-to";
constexpr std::string_view reply_to_prefix = "amq.rabbitmq.reply-to.";

// RabbitMQ's largest timer value (?MAX_EXPIRY_TIMER), the largest expiration it accepts.
constexpr std::uint64_t max_expiry_timer = 4294967295ull;

// Why rabbit_basic:parse_expiration/1 refuses an expiration, in its words.
std::string expiration_error(std::string_view text) {
    std::size_t i = 0;
    bool negative = false;
    if (i < text.size() && text[i] == '-') {
        negative = true;
        ++i;
    }
    const std::size_t digits = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == digits) return "no_integer";
    if (i < text.size()) return fmt::format("{{leftover_string,\"{}\"}}", text.substr(i));
    if (negative) return fmt::format("{{value_negative,-{}}}", text.substr(digits));
    return fmt::format("{{value_too_large,{}}}", text);
}

// The message with its reply_to property replaced (direct reply-to).
MessageRef with_reply_to(const Message& m, std::string_view reply_to) {
    BasicProperties props = m.decoded_properties();
    props.reply_to = reply_to;
    return copy_with_properties(m, props, m.exchange(), m.routing_key());
}
}  // namespace

Status Channel::on_basic_publish(const BasicPublish& m) {
    if (m.immediate) return amqp_error(ReplyCode::NotImplemented, "immediate=true");
    // The exchange is checked once the content is complete, as RabbitMQ does.
    pending_exchange_.assign(m.exchange.view());
    pending_routing_key_.assign(m.routing_key.view());
    pending_mandatory_ = m.mandatory;
    expect_content(BasicPublish::id);
    return std::nullopt;
}

void Channel::expect_content(MethodId method) {
    content_method_ = method;
    content_state_ = ContentState::ExpectHeader;
    deferred_error_.reset();
}

// The content is read to its end but not kept; the error is reported once it is complete, as
// RabbitMQ reports errors after assembling the whole message (so a frame error in the body
// still comes first). The body is never buffered.
Status Channel::discard_content(std::uint64_t body_size, AmqpError error) {
    deferred_error_ = std::move(error);
    pending_message_.reset();
    discard_remaining_ = body_size;
    content_state_ = ContentState::DiscardBody;
    if (body_size == 0) return finish_discard();
    return std::nullopt;
}

Status Channel::finish_discard() {
    content_state_ = ContentState::Idle;
    Status error = std::move(deferred_error_);
    deferred_error_.reset();
    return error;
}

Status Channel::on_header_frame(std::span<const std::byte> payload) {
    // As rabbit_command_assembler: errors during a content name its method (60/40).
    if (content_state_ == ContentState::Idle)
        return amqp_error(ReplyCode::UnexpectedFrame, "expected method frame, got non method frame instead");
    if (content_state_ != ContentState::ExpectHeader)
        return amqp_error(ReplyCode::UnexpectedFrame, "expected content body, got non content body frame instead",
                          content_method_);
    Reader r(payload);
    std::uint16_t class_id = r.u16();
    std::uint16_t weight = r.u16();
    std::uint64_t body_size = r.u64();
    if (!r.ok())
        return amqp_error(ReplyCode::FrameError, fmt::format("type 2, all octets = {}: content header too short",
                                                             erlang_binary(payload)));
    // RabbitMQ matches a content header only with weight 0; any other is "not a header".
    if (weight != 0)
        return amqp_error(ReplyCode::UnexpectedFrame,
                          "expected content header for class 60, got non content header frame instead",
                          content_method_);
    if (class_id != class_id::basic)
        return amqp_error(ReplyCode::UnexpectedFrame,
                          fmt::format("expected content header for class 60, got one for class {} instead", class_id),
                          content_method_);
    // A content method only a server sends (basic.deliver, get-ok, return): RabbitMQ assembles
    // its content, then refuses the method.
    if (!(content_method_ == BasicPublish::id))
        return discard_content(body_size, texts::unimplemented_method(content_method_));
    const std::uint64_t max = connection_.broker().config().max_message_size;
    if (body_size > max)
        return discard_content(body_size, errors::with_method(errors::precondition(fmt::format(
                                                                  "message size {} is larger than configured max size {}",
                                                                  body_size, max)),
                                                              BasicPublish::id));
    pending_message_ = Message::create(pending_exchange_, pending_routing_key_, r.rest(), body_size);
    if (!pending_message_) {
        content_state_ = ContentState::Idle;
        return amqp_error(ReplyCode::SyntaxError, "malformed content header properties", BasicPublish::id);
    }
    if (pending_message_->has_property(property_flag::expiration) &&
        (!pending_message_->expiration_ms() || *pending_message_->expiration_ms() > max_expiry_timer)) {
        // A present but unparseable expiration is refused, as RabbitMQ does.
        std::string value(pending_message_->decoded_properties().expiration);
        return discard_content(
            body_size,
            errors::with_method(
                errors::precondition(fmt::format("invalid expiration '{}': {}", value, expiration_error(value))),
                BasicPublish::id));
    }
    pending_received_ = 0;
    if (body_size == 0) return complete_publish();
    content_state_ = ContentState::ExpectBody;
    return std::nullopt;
}

Status Channel::on_body_frame(std::span<const std::byte> payload) {
    if (content_state_ == ContentState::Idle)
        return amqp_error(ReplyCode::UnexpectedFrame, "expected method frame, got non method frame instead");
    if (content_state_ == ContentState::ExpectHeader)
        return amqp_error(ReplyCode::UnexpectedFrame,
                          "expected content header for class 60, got non content header frame instead",
                          content_method_);
    // RabbitMQ 3.10 does not notice an over-long body until the next method frame; current
    // RabbitMQ refuses it at once with this text.
    const std::uint64_t remaining =
        content_state_ == ContentState::DiscardBody ? discard_remaining_ : pending_message_->body_size() - pending_received_;
    if (payload.size() > remaining)
        return amqp_error(ReplyCode::FrameError, "content body frame exceeds remaining content size",
                          content_method_);
    if (content_state_ == ContentState::DiscardBody) {
        discard_remaining_ -= payload.size();
        return discard_remaining_ == 0 ? finish_discard() : std::nullopt;
    }
    if (!payload.empty()) std::memcpy(pending_message_->body_data() + pending_received_, payload.data(), payload.size());
    return body_written(payload.size());
}

std::span<std::byte> Channel::body_write_space() {
    if (content_state_ != ContentState::ExpectBody) return {};
    return {pending_message_->body_data() + pending_received_,
            static_cast<std::size_t>(pending_message_->body_size() - pending_received_)};
}

Status Channel::body_written(std::size_t n) {
    pending_received_ += n;
    if (pending_received_ == pending_message_->body_size()) return complete_publish();
    return std::nullopt;
}

Status Channel::complete_publish() {
    content_state_ = ContentState::Idle;
    MessageRef message = std::move(pending_message_);
    connection_.note_publish();
    Status status = publish(message);
    // A drain point: what enqueueing dead-lettered (overflow, TTL 0 with no consumer) is routed now.
    connection_.broker().drain_dead_letters();
    return status;
}

Status Channel::publish(MessageRef message) {
    ExchangeEntry* x = nullptr;
    if (Status s = prepare_publish(pending_exchange_, message, x)) return s;
    // rabbit_channel:check_user_id_header/2, after the exchange's checks: a user_id must be the
    // authenticated user's, unless the user has the impersonator tag.
    if (message->has_property(property_flag::user_id)) {
        std::string_view user_id = message->decoded_properties().user_id;
        if (user_id != connection_.user() && !is_impersonator())
            return errors::with_method(errors::precondition(fmt::format(
                                   "user_id property set to '{}' but authenticated user was '{}'", user_id,
                                   connection_.user())),
                               BasicPublish::id);
    }
    if (x->delaying && message->has_headers()) {
        // The plugin routes a message whose x-delay it cannot read, or that is beyond its
        // largest timer, at once, as if it had none; Warren refuses it, naming the header.
        DelayHeader delay = read_delay_header(message->decoded_properties().headers);
        if (delay.is_invalid())
            return errors::with_method(
                errors::precondition(fmt::format("invalid '{}' header for {}: {}", x_delay_header,
                                                 resource_name("exchange", x->name, vhost().name()), delay.problem)),
                BasicPublish::id);
    }
    if (tx_mode_) {
        // Routed now, enqueued at commit (rabbit_channel keeps the routed delivery in its tx).
        TxPublish held{{}, {}, {}, pending_mandatory_, is_reply_route(*x, *message)};
        held.message = held.reply_to ? message : vhost().route_names(*x, message, held.queues, held.held);
        tx_publishes_.push_back(std::move(held));
        return std::nullopt;
    }
    bool routed = false;
    bool rejected = false;
    bool stored = false;
    if (is_reply_route(*x, *message)) {
        routed = deliver_to_reply_consumer(message);
    } else {
        PublishResult result = vhost().publish(*x, message);
        routed = result.routed;
        rejected = result.rejected;
        stored = result.stored;
    }
    if (!routed && pending_mandatory_) send_return(ReplyCode::NoRoute, "NO_ROUTE", message);
    if (confirm_mode_) confirm(next_publish_seq_++, !rejected, stored ? vhost().durability()->ticket(Durability::Need::Messages) : 0);
    // Statistics: plain counters (rates come from the sampler).
    Stats& vs = vhost().stats();
    stats_.add(Stat::publish);
    vs.add(Stat::publish);
    connection_.broker().message_sizes().observe(message->body_size());
    if (!routed) {
        const Stat lost = pending_mandatory_ ? Stat::return_unroutable : Stat::drop_unroutable;
        stats_.add(lost);
        vs.add(lost);
    }
    if (confirm_mode_) {
        stats_.add(Stat::confirm);
        vs.add(Stat::confirm);
    }
    return std::nullopt;
}

Status Channel::prepare_publish(const std::string& exchange_name, MessageRef& message, ExchangeEntry*& x) {
    VHost& vh = vhost();
    // rabbit_channel's order: write on the exchange, the exchange, internal, the topic key.
    // The grant of the last exchange is checked here, inline: the publish path's whole cost.
    if (publish_granted_epoch_ != connection_.broker().auth_epoch() || publish_granted_exchange_ != exchange_name)
        if (Status s = check_publish_access(exchange_name)) return errors::with_method(std::move(*s), BasicPublish::id);
    if (cached_exchange_version_ != vh.topology_version() || cached_exchange_name_ != exchange_name ||
        !cached_exchange_) {
        cached_exchange_ = vh.find_exchange(exchange_name);
        cached_exchange_name_ = exchange_name;
        cached_exchange_version_ = vh.topology_version();
    }
    x = cached_exchange_;
    if (!x) return errors::with_method(errors::no_exchange(exchange_name, vh.name()), BasicPublish::id);
    if (x->internal)
        return AmqpError{ReplyCode::AccessRefused,
                         fmt::format("ACCESS_REFUSED - cannot publish to internal {}",
                                     resource_name("exchange", exchange_name, vh.name())),
                         BasicPublish::id};
    if (x->type == exchanges::ExchangeType::Topic)
        if (Status s = check_topic_access(Permission::Write, *x, message->routing_key()))
            return errors::with_method(std::move(*s), BasicPublish::id);
    // Direct reply-to: a request naming the pseudo-queue gets this channel's reply address.
    if (message->has_property(property_flag::reply_to) &&
        message->decoded_properties().reply_to == reply_to_queue) {
        if (!reply_consumer_)
            return errors::with_method(errors::precondition("fast reply consumer does not exist"), BasicPublish::id);
        message = with_reply_to(*message, reply_to_name_);
    }
    return std::nullopt;
}

bool Channel::is_impersonator() const {
    const User* u = connection_.broker().auth().find_user(connection_.user());
    return u && u->has_tag("impersonator");
}

bool Channel::is_reply_route(const ExchangeEntry& x, const Message& message) const {
    return &x == &vhost().default_exchange() && message.routing_key().starts_with(reply_to_prefix);
}

bool Channel::deliver_to_reply_consumer(const MessageRef& message) {
    Channel* target = connection_.broker().find_reply_to(message->routing_key());
    return target && target->deliver_reply(message);
}

void Channel::send_return(ReplyCode code, std::string_view text, const MessageRef& message) {
    BasicReturn r;
    r.reply_code = static_cast<std::uint16_t>(code);
    r.reply_text = text;
    r.exchange = message->exchange();
    r.routing_key = message->routing_key();
    write_method_frame(connection_.out().bytes(), id_, r);
    connection_.send_content(id_, message, message->properties());
}

// ---- publisher confirms ---------------------------------------------------------------------

void Channel::confirm(std::uint64_t seq, bool ack, std::uint64_t ticket) {
    if (ack && ticket) {
        // A run of immediate acks never spans a stored publish.
        flush_confirms();
        awaiting_store_.push_back({seq, ticket});
        if (ticket != waiting_on_ticket_) {
            waiting_on_ticket_ = ticket;
            vhost().durability()->when_stored(ticket, [this, alive = life_.watch(), ticket](bool ok) {
                if (!alive.expired()) on_stored(ticket, ok);
            });
        }
        return;
    }
    if (ack) {
        if (confirm_pending_first_ == 0) confirm_pending_first_ = seq;
        confirm_pending_last_ = seq;
        return;
    }
    flush_confirms();
    // RabbitMQ's basic.nack record defaults requeue to true, and it sends it so.
    connection_.send_method(id_, BasicNack{seq, false, true});
}

void Channel::flush_confirms() {
    if (confirm_pending_first_ == 0) return;
    const std::uint64_t first = confirm_pending_first_, last = confirm_pending_last_;
    confirm_pending_first_ = 0;
    if (awaiting_store_.empty() || awaiting_store_.front().seq > last) {
        connection_.send_method(id_, BasicAck{last, last > first});
        return;
    }
    // A stored publish below these still waits: `multiple` would confirm it too early.
    for (std::uint64_t s = first; s <= last; ++s) connection_.send_method(id_, BasicAck{s, false});
}

// Storage settled `ticket`: the publishes that waited for it are confirmed (or, if storing
// failed, nacked). One multiple ack covers them when nothing older still waits.
void Channel::on_stored(std::uint64_t ticket, bool ok) {
    if (closed_down_) return;
    flush_confirms();
    std::uint64_t highest = 0;
    while (!awaiting_store_.empty() && awaiting_store_.front().ticket <= ticket) {
        const std::uint64_t seq = awaiting_store_.front().seq;
        awaiting_store_.pop_front();
        if (ok)
            highest = seq;
        else
            connection_.send_method(id_, BasicNack{seq, false, true});
    }
    if (highest) connection_.send_method(id_, BasicAck{highest, true});
}

Status Channel::on_confirm_select(const ConfirmSelect& m) {
    if (tx_mode_) return errors::precondition("cannot switch from tx to confirm mode");
    confirm_mode_ = true;
    if (!m.nowait) connection_.send_method(id_, ConfirmSelectOk{});
    return std::nullopt;
}

// ---- transactions ---------------------------------------------------------------------------

Status Channel::on_tx_select(const TxSelect&) {
    if (confirm_mode_) return errors::precondition("cannot switch from confirm to tx mode");
    tx_mode_ = true;
    connection_.send_method(id_, TxSelectOk{});
    return std::nullopt;
}

Status Channel::on_tx_commit(const TxCommit&) {
    if (!tx_mode_) return errors::precondition("channel is not transactional");
    // What the commit writes to the message log (messages, acks) is stored before commit-ok goes.
    VHostStorage* storage = vhost().storage();
    const std::uint64_t writes_before = storage ? storage->writes() : 0;
    ScopeExit hold([&] {
        if (storage && storage->writes() != writes_before)
            connection_.hold_output_until(vhost().durability()->ticket());
    });
    // Publishes first, then acks and rejects in order, as rabbit_channel's tx.commit. Nothing
    // here can fail: every check was made when the method came, so no settle is ever left
    // behind. Each op leaves its list once applied, so an exception cannot apply one twice
    // (close_down requeues the settles still listed).
    std::size_t done = 0;
    {
        ScopeExit forget([&] { tx_publishes_.erase(tx_publishes_.begin(), tx_publishes_.begin() + done); });
        for (; done < tx_publishes_.size(); ++done) commit_publish(tx_publishes_[done]);
    }
    done = 0;
    {
        ScopeExit forget([&] { tx_settles_.erase(tx_settles_.begin(), tx_settles_.begin() + done); });
        for (; done < tx_settles_.size(); ++done) {
            TxSettle& op = tx_settles_[done];
            for (auto& e : op.entries) {
                --tx_held_;
                release_credit(e);
            }
            settle(op.entries, op.kind == TxSettle::Kind::Ack, op.requeue, op.why);
        }
    }
    connection_.send_method(id_, TxCommitOk{});
    return std::nullopt;
}

// A publish held by the transaction: to the queues it was routed to that still exist (RabbitMQ
// looks them up by name at commit), returned if mandatory and none is left.
void Channel::commit_publish(TxPublish& p) {
    bool routed = false;
    if (p.reply_to) {
        routed = deliver_to_reply_consumer(p.message);
    } else {
        std::vector<Queue*>& targets = commit_scratch_;
        targets.clear();
        for (const std::string& name : p.queues)
            if (Queue* q = vhost().find_queue(name)) targets.push_back(q);
        routed = vhost().enqueue_routed(p.message, targets).routed;
        std::vector<ExchangeEntry*> holders;
        for (const std::string& name : p.held)
            if (ExchangeEntry* x = vhost().find_exchange(name); x && x->delayed) holders.push_back(x);
        vhost().hold_routed(p.message, holders);
    }
    if (!routed && p.mandatory) send_return(ReplyCode::NoRoute, "NO_ROUTE", p.message);
}

Status Channel::on_tx_rollback(const TxRollback&) {
    if (!tx_mode_) return errors::precondition("channel is not transactional");
    // Publishes are dropped; settled deliveries go back to the ledger, unacknowledged.
    for (auto& op : tx_settles_) {
        for (auto& e : op.entries) {
            e.live = true;  // its credit was never released (see collect)
            ++unacked_live_;
            --tx_held_;
            auto it = std::lower_bound(unacked_.begin(), unacked_.end(), e.tag,
                                       [](const Unacked& u, std::uint64_t t) { return u.tag < t; });
            if (it != unacked_.end() && it->tag == e.tag)
                *it = std::move(e);
            else
                unacked_.insert(it, std::move(e));
        }
    }
    tx_settles_.clear();
    tx_publishes_.clear();
    connection_.send_method(id_, TxRollbackOk{});
    return std::nullopt;
}

}  // namespace warren::broker
