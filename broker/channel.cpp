// The channel's lifecycle, method dispatch, closing, and deliveries to its consumers.
#include "broker/channel.hpp"

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/log.hpp"
#include "broker/server_texts.hpp"
#include "broker/stream.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using namespace protocol;

Channel::Channel(Connection& connection, std::uint16_t id) : connection_(connection), id_(id) {
    ++connection_.broker().churn().channels_opened;
}

Channel::~Channel() {
    close_down();
    ++connection_.broker().churn().channels_closed;
}

VHost& Channel::vhost() const {
    return *connection_.vhost();
}

// ---- dispatch -------------------------------------------------------------------------------

// Maps each decoded method to its handler; methods a server never receives fall through to
// RabbitMQ's "unimplemented method" (503 COMMAND_INVALID).
struct ChannelDispatch {
    Channel& c;
    template <class M>
    Status operator()(const M& m) const {
        using T = std::decay_t<M>;
        if constexpr (std::is_same_v<T, ChannelFlow>)
            return c.on_channel_flow(m);
        else if constexpr (std::is_same_v<T, ChannelClose>)
            return c.on_channel_close(m);
        else if constexpr (std::is_same_v<T, ExchangeDeclare>)
            return c.on_exchange_declare(m);
        else if constexpr (std::is_same_v<T, ExchangeDelete>)
            return c.on_exchange_delete(m);
        else if constexpr (std::is_same_v<T, ExchangeBind>)
            return c.on_exchange_bind(m);
        else if constexpr (std::is_same_v<T, ExchangeUnbind>)
            return c.on_exchange_unbind(m);
        else if constexpr (std::is_same_v<T, QueueDeclare>)
            return c.on_queue_declare(m);
        else if constexpr (std::is_same_v<T, QueueBind>)
            return c.on_queue_bind(m);
        else if constexpr (std::is_same_v<T, QueueUnbind>)
            return c.on_queue_unbind(m);
        else if constexpr (std::is_same_v<T, QueuePurge>)
            return c.on_queue_purge(m);
        else if constexpr (std::is_same_v<T, QueueDelete>)
            return c.on_queue_delete(m);
        else if constexpr (std::is_same_v<T, BasicQos>)
            return c.on_basic_qos(m);
        else if constexpr (std::is_same_v<T, BasicConsume>)
            return c.on_basic_consume(m);
        else if constexpr (std::is_same_v<T, BasicCancel>)
            return c.on_basic_cancel(m);
        else if constexpr (std::is_same_v<T, BasicPublish>)
            return c.on_basic_publish(m);
        else if constexpr (std::is_same_v<T, BasicGet>)
            return c.on_basic_get(m);
        else if constexpr (std::is_same_v<T, BasicAck>)
            return c.on_basic_ack(m);
        else if constexpr (std::is_same_v<T, BasicReject>)
            return c.on_basic_reject(m);
        else if constexpr (std::is_same_v<T, BasicNack>)
            return c.on_basic_nack(m);
        else if constexpr (std::is_same_v<T, BasicRecoverAsync>)
            return c.on_basic_recover_async(m);
        else if constexpr (std::is_same_v<T, BasicRecover>)
            return c.on_basic_recover(m);
        else if constexpr (std::is_same_v<T, TxSelect>)
            return c.on_tx_select(m);
        else if constexpr (std::is_same_v<T, TxCommit>)
            return c.on_tx_commit(m);
        else if constexpr (std::is_same_v<T, TxRollback>)
            return c.on_tx_rollback(m);
        else if constexpr (std::is_same_v<T, ConfirmSelect>)
            return c.on_confirm_select(m);
        else if constexpr (std::is_same_v<T, AccessRequest>)
            return c.on_access_request(m);
        else if constexpr (T::has_content)
            return c.on_server_content_method(T::id);
        else
            return texts::unimplemented_method(T::id);
    }
};

Status Channel::on_method_frame(MethodId method, std::span<const std::byte> args) {
    Reader r(args);
    Status status;
    bool status_is_frame_level = false;
    bool known = visit_method(method, r, [&](const auto& m) {
        if (r.bad_utf8()) {
            status = texts::malformed_utf8();
            status_is_frame_level = true;
            return;
        }
        if (!r.ok() || !r.at_end()) {
            status = texts::malformed_method(method, args);
            return;
        }
        status = ChannelDispatch{*this}(m);
    });
    // A drain point: what the method dead-lettered (reject, nack, recover, get, commit) is
    // routed now, before the next frame, with no container of this channel being walked.
    connection_.broker().drain_dead_letters();
    if (!known) return texts::unknown_method(method);
    if (status && status->method == MethodId{} && !status_is_frame_level) status->method = method;
    return status;
}

// access.request is obsolete in 0-9-1; RabbitMQ still grants ticket 1, and so do we.
Status Channel::on_access_request(const AccessRequest&) {
    connection_.send_method(id_, AccessRequestOk{1});
    return std::nullopt;
}

// basic.deliver, get-ok or return from a client: RabbitMQ reads its content, then refuses it.
Status Channel::on_server_content_method(MethodId method) {
    expect_content(method);
    return std::nullopt;
}

// ---- closing --------------------------------------------------------------------------------

Status Channel::on_channel_flow(const ChannelFlow& m) {
    // The spec's channel.flow: the client asks us to pause or resume deliveries.
    flow_active_ = m.active;
    connection_.send_method(id_, ChannelFlowOk{m.active});
    if (flow_active_) on_output_drained();
    return std::nullopt;
}

Status Channel::on_channel_close(const ChannelClose&) {
    close_down();
    connection_.send_method(id_, ChannelCloseOk{});
    return std::nullopt;
}

void Channel::begin_close(const AmqpError& error) {
    // Confirms of the publishes before the failing method go out before channel.close, as
    // RabbitMQ sends them; nothing may follow the close on this channel.
    flush_confirms();
    log::peer(log::Level::Info, connection_.peer().address, "channel {} on connection {} closed by the broker: {}", id_,
              connection_.peer().address, log::escaped(error.text, 512));
    const std::string text = wire_reply_text(error.text);
    connection_.send_method(
        id_, ChannelClose{static_cast<std::uint16_t>(error.code), text, error.method.class_id, error.method.method_id});
    close_down();
    closing_ = true;
}

void Channel::close_down() {
    if (closed_down_) return;
    closed_down_ = true;
    if (consumer_timeout_timer_) connection_.broker().timers().cancel(consumer_timeout_timer_);
    consumer_timeout_timer_ = 0;
    content_state_ = ContentState::Idle;
    pending_message_.reset();
    if (!connection_.vhost()) return;
    // Unacked deliveries go back to their queues first, in tag order (each to its position).
    for (auto& entry : unacked_)
        if (entry.live) requeue_entry(std::move(entry));
    unacked_.clear();
    unacked_live_ = 0;
    for (auto& op : tx_settles_)
        for (auto& entry : op.entries) requeue_entry(std::move(entry));
    tx_settles_.clear();
    tx_publishes_.clear();
    tx_held_ = 0;
    // Then the consumers go (an auto-delete queue may go with its last consumer).
    while (!consumers_.empty()) remove_consumer(*consumers_.begin()->second, false);
    if (!reply_to_name_.empty()) connection_.broker().unregister_reply_to(reply_to_name_);
    reply_to_name_.clear();
    // A drain point: requeued messages past their TTL or delivery limit are dead-lettered now.
    connection_.broker().drain_dead_letters();
}

// ---- delivery -------------------------------------------------------------------------------

bool Channel::can_deliver(const Consumer& consumer) const {
    if (closed_down_ || !flow_active_ || !connection_.is_writable()) return false;
    if (consumer.no_ack) return true;
    if (consumer.prefetch && consumer.unacked >= consumer.prefetch) return false;
    if (global_prefetch_count_ && unacked_live_ + tx_held_ >= global_prefetch_count_) return false;
    return true;
}

namespace {

// Quorum-queue semantics on every queue (DECISIONS.md): a redelivered message carries
// x-delivery-count, the number of times it was returned to the queue. RabbitMQ's quorum queues
// also put it (0) on the first basic.get of a message, though not on its first basic.deliver.
// The message's properties with one header set (the rest as published).
// Every delivery from a stream goes through here (x-stream-offset), once per reader: when the
// key is new to the headers, which is the usual case, its entry is appended to the table's
// bytes as they are, without decoding the table into a FieldTable and encoding it again.
ByteBuffer properties_with_header(const Message& m, std::string_view key, std::int64_t value) {
    BasicProperties props = m.decoded_properties();
    ByteBuffer header_bytes;
    if (!props.has(property_flag::headers) || !props.headers.find(key)) {
        Writer w(header_bytes);
        if (props.has(property_flag::headers)) w.bytes(props.headers.bytes());
        w.shortstr(key);
        w.u8(static_cast<std::uint8_t>(field_type::int64));
        w.u64(static_cast<std::uint64_t>(value));
    } else {
        FieldTable headers = props.headers.to_table();
        headers.set(std::string(key), value);
        header_bytes = encode_table_body(headers);
    }
    props.headers = TableView::trusted(header_bytes.span());
    props.set_flag(property_flag::headers);
    ByteBuffer out;
    encode_properties(out, props);
    return out;
}

ByteBuffer properties_with_delivery_count(const Message& m, std::uint32_t count) {
    return properties_with_header(m, "x-delivery-count", std::int64_t{count});
}

}  // namespace

bool Channel::try_deliver(Consumer& consumer, Queue& queue, QueuedMessage& message,
                          const std::uint64_t* stream_offset) {
    try {
        deliver(consumer, queue, message, stream_offset);
        return true;
    } catch (const std::exception& e) {
        // The connection boundary for deliveries, as TcpConnection's is for input: a bug or
        // exhausted memory closes only this connection (541), later, since its queue is in the
        // middle of dispatching; the message stays with the queue.
        log::peer(log::Level::Error, connection_.peer().address,
                  "internal error delivering to connection {}: {}; closing it", connection_.peer().address, e.what());
        connection_.close_soon("internal error", AmqpError{ReplyCode::InternalError, "INTERNAL_ERROR", {}});
        return false;
    }
}

void Channel::deliver(Consumer& consumer, Queue& queue, QueuedMessage& message, const std::uint64_t* stream_offset) {
    OutputQueue& out = connection_.out();
    const OutputQueue::Mark mark = out.mark();
    const std::uint64_t tag = next_delivery_tag_;
    try {
        const Message& m = *message.message;
        BasicDeliver deliver;
        deliver.consumer_tag = consumer.tag;
        deliver.delivery_tag = tag;
        deliver.redelivered = message.redelivered();
        deliver.exchange = m.exchange();
        deliver.routing_key = m.routing_key();
        write_method_frame(out.bytes(), id_, deliver);
        if (stream_offset) {
            ByteBuffer props = properties_with_header(m, "x-stream-offset", static_cast<std::int64_t>(*stream_offset));
            connection_.send_content(id_, message.message, props.span());
        } else {
            send_message_content(message, false);
        }
        // The message moves to the ledger last: if anything before throws, it is still the caller's.
        if (!consumer.no_ack)
            unacked_.emplace_back(tag, queue.id(), std::move(message), &consumer, true, connection_.broker().now(),
                                  queue.is_stored(m));
    } catch (...) {
        out.rollback(mark);
        throw;
    }
    const QueuedMessage& sent = consumer.no_ack ? message : unacked_.back().message;
    queue.on_delivered(sent, consumer.no_ack);
    if (stream_offset) queue.stream()->on_delivered(consumer, *stream_offset, tag);
    out.add_paced(out.bytes_since(mark));
    ++next_delivery_tag_;
    {
        // Statistics: plain counters (rates come from the sampler).
        Stats& vs = connection_.vhost()->stats();
        const Stat kind = consumer.no_ack ? Stat::deliver_no_ack : Stat::deliver;
        stats_.add(kind);
        queue.stats().add(kind);
        vs.add(kind);
        if (sent.redelivered()) {
            stats_.add(Stat::redeliver);
            queue.stats().add(Stat::redeliver);
            vs.add(Stat::redeliver);
        }
    }
    if (!consumer.no_ack) {
        queue.add_unacked();
        ++consumer.unacked;
        ++unacked_live_;
        if (!consumer_timeout_timer_) arm_consumer_timeout();
    }
}

void Channel::send_message_content(const QueuedMessage& message, bool always_count) {
    if (message.delivery_count() > 0 || always_count) {
        ByteBuffer props = properties_with_delivery_count(*message.message, message.delivery_count());
        connection_.send_content(id_, message.message, props.span());
    } else {
        connection_.send_content(id_, message.message, message.message->properties());
    }
}

bool Channel::deliver_reply(const MessageRef& message) {
    if (!reply_consumer_ || closed_down_) return false;
    // Caused by another connection's publish: neither prefetch nor this connection's reading
    // bounds it, so past connection_output_limit the connection is closed and the reply
    // dropped (the publisher gets it back if it was mandatory), as if the requester were gone.
    if (!connection_.accepts_foreign_output()) return false;
    OutputQueue& out = connection_.out();
    const OutputQueue::Mark mark = out.mark();
    BasicDeliver deliver;
    deliver.consumer_tag = reply_consumer_->tag;
    deliver.delivery_tag = next_delivery_tag_;
    deliver.exchange = message->exchange();
    deliver.routing_key = message->routing_key();
    try {
        write_method_frame(out.bytes(), id_, deliver);
        connection_.send_content(id_, message, message->properties());
    } catch (const std::exception& e) {
        // This connection's failure, not the publisher's: as in try_deliver.
        out.rollback(mark);
        log::peer(log::Level::Error, connection_.peer().address,
                  "internal error delivering to connection {}: {}; closing it", connection_.peer().address, e.what());
        connection_.close_soon("internal error", AmqpError{ReplyCode::InternalError, "INTERNAL_ERROR", {}});
        return false;
    }
    ++next_delivery_tag_;
    out.add_foreign(out.bytes_since(mark));
    return true;
}

void Channel::on_queue_deleted(Consumer& consumer) {
    if (connection_.client_has_capability("consumer_cancel_notify"))
        connection_.send_method(id_, BasicCancel{consumer.tag, true});
    remove_consumer(consumer, true);
}

void Channel::on_output_drained() {
    for (auto& [tag, c] : consumers_)
        if (c->queue) c->queue->mark_dirty();
}

Consumer* Channel::find_consumer(std::string_view tag) {
    auto it = consumers_.find(tag);
    return it == consumers_.end() ? nullptr : it->second.get();
}

void Channel::remove_consumer(Consumer& consumer, bool queue_is_going) {
    for (auto& entry : unacked_)
        if (entry.consumer == &consumer) entry.consumer = nullptr;
    for (auto& op : tx_settles_)
        for (auto& entry : op.entries)
            if (entry.consumer == &consumer) entry.consumer = nullptr;
    if (&consumer == reply_consumer_) {
        reply_consumer_ = nullptr;
        if (!reply_to_name_.empty()) connection_.broker().unregister_reply_to(reply_to_name_);
        reply_to_name_.clear();
    }
    Queue* queue = consumer.queue;
    std::string tag = consumer.tag;
    if (queue) queue->remove_consumer(consumer);
    consumers_.erase(tag);  // `consumer` is gone from here on
    // An auto-delete queue goes with its last consumer (unless it is being deleted already).
    if (queue && !queue_is_going && queue->flags().auto_delete && queue->consumer_count() == 0 &&
        queue->has_had_consumers())
        queue->vhost().delete_queue(*queue);
}

}  // namespace warren::broker
