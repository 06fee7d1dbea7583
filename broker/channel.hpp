// One AMQP channel: its consumers, its ledger of unacknowledged deliveries, content assembly
// for publishes, publisher confirms and transactions. Owned by its Connection. Handlers are
// on_<class>_<method>; each returns a Status (an AmqpError on failure, which the connection
// turns into channel.close or connection.close by the code's class).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "broker/auth.hpp"
#include "broker/consumer.hpp"
#include "broker/life_token.hpp"
#include "broker/message.hpp"
#include "broker/queue.hpp"
#include "broker/stats.hpp"
#include "broker/timer_queue.hpp"
#include "protocol/methods.hpp"
#include "protocol/reply_code.hpp"

namespace warren::broker {

class Connection;
class VHost;
struct ExchangeEntry;

using Status = std::optional<protocol::AmqpError>;

class Channel {
public:
    Channel(Connection& connection, std::uint16_t id);
    ~Channel();
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    std::uint16_t id() const { return id_; }
    Connection& connection() const { return connection_; }

    // ---- frames from the connection
    Status on_method_frame(protocol::MethodId method, std::span<const std::byte> args);
    Status on_header_frame(std::span<const std::byte> payload);
    Status on_body_frame(std::span<const std::byte> payload);
    bool expects_content() const { return content_state_ != ContentState::Idle; }
    bool expects_body() const {
        return content_state_ == ContentState::ExpectBody || content_state_ == ContentState::DiscardBody;
    }
    // Body bytes still expected by the content being read.
    std::uint64_t body_remaining() const {
        if (content_state_ == ContentState::DiscardBody) return discard_remaining_;
        if (content_state_ == ContentState::ExpectBody) return pending_message_->body_size() - pending_received_;
        return 0;
    }
    // Where the rest of the body goes, for reading it from the socket without a copy (empty
    // unless a message body is being received); then body_written() with the count.
    std::span<std::byte> body_write_space();
    Status body_written(std::size_t n);
    // The message whose body body_write_space() points into (empty when none): a read into it
    // keeps it alive, and body_written() is called only if it is still the one being received.
    const MessageRef& body_message() const { return pending_message_; }
    // The method whose content is being read (basic.publish, or a server-only method a client sent).
    protocol::MethodId content_method() const { return content_method_; }

    // ---- closing
    // We close the channel (a soft error): channel.close is sent; frames are dropped until close-ok.
    void begin_close(const protocol::AmqpError& error);
    bool is_closing() const { return closing_; }
    // Releases everything: unacked messages go back to their queues, consumers are cancelled.
    // Idempotent; the destructor calls it too.
    void close_down();

    // ---- delivery (called by queues)
    bool can_deliver(const Consumer& consumer) const;
    // Delivers `message` (moved from only on success) and returns true; if delivering throws,
    // returns false with the message intact and this connection closing (see channel.cpp).
    // `stream_offset`: a stream queue's delivery, which carries the x-stream-offset header.
    bool try_deliver(Consumer& consumer, Queue& queue, QueuedMessage& message,
                     const std::uint64_t* stream_offset = nullptr);
    // The queue was deleted: the consumer goes, with basic.cancel if the client asked for it.
    void on_queue_deleted(Consumer& consumer);
    // A reply for this channel's direct reply-to consumer.
    bool deliver_reply(const MessageRef& message);

    // End of an input batch: send the publisher confirms that built up.
    void flush_confirms();
    bool has_pending_confirms() const { return confirm_pending_first_ != 0; }
    // The connection's output drained below its high-water mark: queues may deliver again.
    void on_output_drained();

    std::size_t unacked_count() const { return unacked_live_; }
    std::size_t consumer_count() const { return consumers_.size(); }
    Consumer* find_consumer(std::string_view tag);
    // The unsettled deliveries from one queue, in delivery-tag order (the dead-letter
    // workbench lists them): f(delivery tag, message, consumer tag or "" for basic.get,
    // delivered at); f returns false to stop.
    void for_each_unacked(
        QueueId queue,
        const std::function<bool(std::uint64_t, const QueuedMessage&, std::string_view, TimePoint)>& f) const {
        for (const Unacked& u : unacked_)
            if (u.live && u.queue == queue && u.message.message &&
                !f(u.tag, u.message, u.consumer ? std::string_view(u.consumer->tag) : std::string_view(),
                   u.delivered_at))
                return;
    }

    // ---- for the management API (read only)
    Stats& stats() { return stats_; }
    const Stats& stats() const { return stats_; }
    const std::map<std::string, std::unique_ptr<Consumer>, std::less<>>& consumers() const { return consumers_; }
    std::uint16_t prefetch_count() const { return prefetch_count_; }
    std::uint16_t global_prefetch_count() const { return global_prefetch_count_; }
    bool is_confirm_mode() const { return confirm_mode_; }
    bool is_tx_mode() const { return tx_mode_; }
    std::size_t pending_confirm_count() const { return awaiting_store_.size(); }

    // ---- handlers (dispatched from channel_dispatch.cpp)
    Status on_channel_flow(const protocol::ChannelFlow& m);
    Status on_channel_close(const protocol::ChannelClose& m);
    Status on_exchange_declare(const protocol::ExchangeDeclare& m);
    Status on_exchange_delete(const protocol::ExchangeDelete& m);
    Status on_exchange_bind(const protocol::ExchangeBind& m);
    Status on_exchange_unbind(const protocol::ExchangeUnbind& m);
    Status on_queue_declare(const protocol::QueueDeclare& m);
    Status on_queue_bind(const protocol::QueueBind& m);
    Status on_queue_unbind(const protocol::QueueUnbind& m);
    Status on_queue_purge(const protocol::QueuePurge& m);
    Status on_queue_delete(const protocol::QueueDelete& m);
    Status on_basic_qos(const protocol::BasicQos& m);
    Status on_basic_consume(const protocol::BasicConsume& m);
    Status on_basic_cancel(const protocol::BasicCancel& m);
    Status on_basic_publish(const protocol::BasicPublish& m);
    Status on_basic_get(const protocol::BasicGet& m);
    Status on_basic_ack(const protocol::BasicAck& m);
    Status on_basic_reject(const protocol::BasicReject& m);
    Status on_basic_nack(const protocol::BasicNack& m);
    Status on_basic_recover_async(const protocol::BasicRecoverAsync& m);
    Status on_basic_recover(const protocol::BasicRecover& m);
    Status on_tx_select(const protocol::TxSelect& m);
    Status on_tx_commit(const protocol::TxCommit& m);
    Status on_tx_rollback(const protocol::TxRollback& m);
    Status on_confirm_select(const protocol::ConfirmSelect& m);
    Status on_access_request(const protocol::AccessRequest& m);
    Status on_server_content_method(protocol::MethodId method);

private:
    friend struct ChannelDispatch;

    struct Unacked {
        Unacked() = default;
        Unacked(std::uint64_t t, QueueId q, QueuedMessage&& m, Consumer* c, bool l, TimePoint at, bool s = false)
            : tag(t), queue(q), message(std::move(m)), consumer(c), live(l), stored(s), delivered_at(at) {}
        std::uint64_t tag = 0;
        QueueId queue = 0;
        QueuedMessage message;
        Consumer* consumer = nullptr;  // nullptr for basic.get, or once the consumer is gone
        bool live = true;              // false once settled (a tombstone until popped)
        bool stored = false;           // in the message log for its queue (settled there if the queue goes)
        TimePoint delivered_at{};      // for the consumer timeout
    };

    // DiscardBody: a content that will be refused once complete (too large, or for a method
    // only a server sends) is read to its end without being kept.
    enum class ContentState { Idle, ExpectHeader, ExpectBody, DiscardBody };

    // A publish held until tx.commit, routed when it came (as RabbitMQ): the names of the
    // queues it reached then; commit enqueues it to those that still exist.
    struct TxPublish {
        MessageRef message;
        std::vector<std::string> queues;
        std::vector<std::string> held;  // delayed exchanges that hold it
        bool mandatory = false;
        bool reply_to = false;  // to a direct reply-to consumer, looked up at commit
    };
    // An ack, nack or reject held until tx.commit.
    struct TxSettle {
        enum class Kind { Ack, Reject } kind;
        std::vector<Unacked> entries;
        bool requeue = false;
        ReturnReason why = ReturnReason::Rejected;  // basic.reject or basic.nack
    };

    VHost& vhost() const;

    // permissions (channel_access.cpp): RabbitMQ's checks, each answered from a small cache of
    // what was granted (dropped whenever any permission changes), so the publish path matches
    // no pattern per message.
    enum class ResourceKind { Exchange, Queue };
    Status check_access(Permission permission, ResourceKind kind, std::string_view name);
    // Write (publish) or read (bind) on a routing key of a topic exchange; other types pass.
    Status check_topic_access(Permission permission, const ExchangeEntry& exchange, std::string_view routing_key);
    Status check_binding_access(ResourceKind kind, std::string_view destination, std::string_view source,
                                std::string_view routing_key);
    // basic.publish's write check, with a one-entry cache in front of check_access.
    Status check_publish_access(const std::string& exchange_name);

    Status check_exclusive(const Queue& queue) const;
    // Resolves the empty-name shortcut, checks `permission` on the queue, finds it and checks
    // exclusive access.
    Status find_queue_for(std::string_view name, Queue*& out, Permission permission);
    Status resolve_queue_name(std::string_view name, std::string& out) const;
    struct QueueBinding {
        std::string queue_name;
        std::string routing_key;
        ExchangeEntry* source = nullptr;
    };
    Status resolve_queue_binding(std::string_view queue, std::string_view exchange, std::string_view key,
                                 QueueBinding& out);

    // publish pipeline
    void expect_content(protocol::MethodId method);
    Status discard_content(std::uint64_t body_size, protocol::AmqpError error);
    Status finish_discard();
    Status complete_publish();
    Status publish(MessageRef message);
    // basic.publish's checks (exchange, internal, direct reply-to consumer), made when the
    // content is complete, in a transaction too; rewrites a direct reply-to request.
    Status prepare_publish(const std::string& exchange_name, MessageRef& message, ExchangeEntry*& x);
    bool is_reply_route(const ExchangeEntry& x, const Message& message) const;
    bool is_impersonator() const;
    bool deliver_to_reply_consumer(const MessageRef& message);
    void commit_publish(TxPublish& publish);
    // A publish's confirm: ack or nack now, or (stored) once storage ticket `ticket` settles.
    void confirm(std::uint64_t seq, bool ack, std::uint64_t ticket = 0);
    void on_stored(std::uint64_t ticket, bool ok);
    void send_return(protocol::ReplyCode code, std::string_view text, const MessageRef& message);
    // Content header and body of a delivery or get-ok; a redelivery carries x-delivery-count.
    void send_message_content(const QueuedMessage& message, bool always_count);

    // All or nothing: the frames and the ledger entry, or (if anything throws) neither.
    void deliver(Consumer& consumer, Queue& queue, QueuedMessage& message, const std::uint64_t* stream_offset);
    // basic.consume on a stream queue: its checks, and where the consumer starts.
    Status check_stream_consume(const protocol::BasicConsume& m, Queue& q, std::optional<std::uint64_t>& start);

    // unacked ledger
    Status collect(std::uint64_t tag, bool multiple, protocol::MethodId method, std::vector<Unacked>& out);
    void settle(std::vector<Unacked>& entries, bool ack, bool requeue, ReturnReason why = ReturnReason::Rejected);
    // basic.ack, nack and reject: collect, then settle now or at commit in a transaction.
    Status settle_tags(std::uint64_t tag, bool multiple, protocol::MethodId method, bool ack, bool requeue);
    void requeue_all_unacked();  // basic.recover
    void requeue_entry(Unacked&& entry, ReturnReason why = ReturnReason::ChannelClosed);
    // The queue of a stored delivery is gone: let the message log forget it.
    void forget_stored(const Unacked& entry);
    void pop_settled_front();
    void release_credit(Unacked& entry);
    Queue* queue_for(QueueId id);

    // consumer timeout (channel_timeout.cpp)
    void arm_consumer_timeout();
    void on_consumer_timeout();
    void time_out_consumer(Consumer& consumer);
    void remove_consumer(Consumer& consumer, bool queue_is_going);

    Connection& connection_;
    std::uint16_t id_;
    bool closing_ = false;
    bool closed_down_ = false;
    bool flow_active_ = true;  // channel.flow from the client

    // content assembly
    ContentState content_state_ = ContentState::Idle;
    protocol::MethodId content_method_{};
    std::uint64_t discard_remaining_ = 0;
    Status deferred_error_;
    std::string pending_exchange_;
    std::string pending_routing_key_;
    bool pending_mandatory_ = false;
    MessageRef pending_message_;
    std::uint64_t pending_received_ = 0;

    // consumers, by tag
    std::map<std::string, std::unique_ptr<Consumer>, std::less<>> consumers_;
    std::uint16_t prefetch_count_ = 0;         // for consumers created from now on (global=false)
    std::uint16_t global_prefetch_count_ = 0;  // channel-wide (global=true)

    // deliveries not yet acknowledged, ordered by tag
    std::deque<Unacked> unacked_;
    std::size_t unacked_live_ = 0;
    std::size_t tx_held_ = 0;  // acked in a transaction not yet committed: still holding credit
    std::uint64_t next_delivery_tag_ = 1;
    std::vector<Unacked> settle_scratch_;  // reused: no allocation per ack
    std::vector<Queue*> freed_scratch_;

    // publisher confirms: seqs [confirm_pending_first_, next_publish_seq_) await a basic.ack
    bool confirm_mode_ = false;
    std::uint64_t next_publish_seq_ = 1;
    std::uint64_t confirm_pending_first_ = 0;  // 0: nothing pending
    std::uint64_t confirm_pending_last_ = 0;
    // Stored publishes waiting for their ticket, in seq order (tickets never decrease). Confirms
    // may go out of order, as RabbitMQ's do: a transient message's is not held behind them.
    struct StoredConfirm {
        std::uint64_t seq;
        std::uint64_t ticket;
    };
    std::deque<StoredConfirm> awaiting_store_;
    std::uint64_t waiting_on_ticket_ = 0;  // the newest ticket this channel asked to hear about
    LifeToken life_;

    // transactions: publishes and settles held until commit (publishes are applied first)
    bool tx_mode_ = false;
    std::vector<TxPublish> tx_publishes_;
    std::vector<TxSettle> tx_settles_;
    std::vector<Queue*> commit_scratch_;

    // The last exchange this channel published to (a lookup cache, valid for one topology version).
    std::string cached_exchange_name_;
    ExchangeEntry* cached_exchange_ = nullptr;
    std::uint64_t cached_exchange_version_ = ~std::uint64_t{0};

    // The queue of the last settled delivery (a lookup cache, like the exchange's).
    QueueId cached_queue_id_ = 0;
    Queue* cached_queue_ = nullptr;
    std::uint64_t cached_queue_version_ = ~std::uint64_t{0};

    // Granted permissions, valid while the broker's auth epoch is access_epoch_.
    struct Granted {
        Permission permission;
        ResourceKind kind;
        std::string name;
    };
    std::vector<Granted> granted_;
    std::uint64_t access_epoch_ = 0;
    std::string publish_granted_exchange_;  // write on it granted in publish_granted_epoch_
    std::uint64_t publish_granted_epoch_ = 0;
    std::string topic_granted_exchange_;  // the last topic write granted: exchange and key
    std::string topic_granted_key_;
    std::uint64_t topic_granted_epoch_ = 0;

    // The last queue this channel declared: an empty queue name in later methods means it.
    std::string most_recent_queue_;

    TimerId consumer_timeout_timer_ = 0;

    // direct reply-to
    std::string reply_to_name_;  // "amq.rabbitmq.reply-to.…" once a reply consumer exists
    Consumer* reply_consumer_ = nullptr;

    Stats stats_;
};

}  // namespace warren::broker
