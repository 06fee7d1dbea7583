// basic.qos, consume, cancel and get, with RabbitMQ's semantics: per-consumer prefetch
// (global=false, for consumers created afterwards) and channel-wide prefetch (global=true,
// applying at once to every consumer of the channel), exclusive consumers, consumer priorities
// (x-priority), and the direct reply-to pseudo-queue.
#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/channel_errors.hpp"
#include "broker/connection.hpp"
#include "broker/stream.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using namespace protocol;

namespace {
constexpr std::string_view reply_to_queue = "amq.rabbitmq.reply-to";
}

Status Channel::on_basic_qos(const BasicQos& m) {
    if (m.prefetch_size != 0)
        return amqp_error(ReplyCode::NotImplemented, fmt::format("prefetch_size!=0 ({})", m.prefetch_size));
    if (m.global)
        global_prefetch_count_ = m.prefetch_count;
    else
        prefetch_count_ = m.prefetch_count;
    connection_.send_method(id_, BasicQosOk{});
    on_output_drained();  // a raised limit may let queues deliver now
    return std::nullopt;
}

Status Channel::on_basic_consume(const BasicConsume& m) {
    std::string tag(m.consumer_tag.view());
    if (!tag.empty() && consumers_.contains(tag))
        return amqp_error(ReplyCode::NotAllowed, fmt::format("attempt to reuse consumer tag '{}'", tag));

    if (m.queue.view() == reply_to_queue) {
        // Direct reply-to: a pseudo-queue; replies are delivered straight to this consumer.
        if (!m.no_ack) return errors::precondition("reply consumer cannot acknowledge");
        if (reply_consumer_) return errors::precondition("reply consumer already set");
        if (tag.empty()) tag = connection_.broker().generate_name("amq.ctag-");
        auto consumer = std::make_unique<Consumer>();
        consumer->tag = tag;
        consumer->channel = this;
        consumer->no_ack = true;
        reply_consumer_ = consumer.get();
        reply_to_name_ = connection_.broker().register_reply_to(*this);
        consumers_.emplace(tag, std::move(consumer));
        if (!m.nowait) connection_.send_method(id_, BasicConsumeOk{tag});
        return std::nullopt;
    }

    Queue* q = nullptr;
    if (Status s = find_queue_for(m.queue.view(), q, Permission::Read)) return s;
    std::optional<std::uint64_t> stream_start;
    if (q->stream()) {
        if (Status s = check_stream_consume(m, *q, stream_start)) return s;
    } else if (m.arguments.find(stream_args::group)) {
        return errors::precondition(fmt::format("invalid arg '{}' for {}: consumer groups read stream queues only",
                                                stream_args::group, resource_name("queue", q->name(), vhost().name())));
    }
    std::int32_t priority = 0;
    if (auto p = m.arguments.find("x-priority")) {
        auto value = p->as_integer();
        if (!value)
            return errors::precondition(fmt::format("invalid arg 'x-priority' for {}: \"expected integer, got {}\"",
                                                    resource_name("queue", q->name(), vhost().name()),
                                                    rabbit_type_name(p->type())));
        priority = static_cast<std::int32_t>(*value);
    }
    if (q->has_exclusive_consumer() || (m.exclusive && q->consumer_count() > 0))
        return amqp_error(ReplyCode::AccessRefused,
                          fmt::format("{} in exclusive use", resource_name("queue", q->name(), vhost().name())));
    if (tag.empty()) tag = connection_.broker().generate_name("amq.ctag-");

    auto consumer = std::make_unique<Consumer>();
    consumer->tag = tag;
    consumer->channel = this;
    consumer->queue = q;
    consumer->no_ack = m.no_ack;
    consumer->exclusive = m.exclusive;
    consumer->priority = priority;
    // RabbitMQ: basic.qos global=false limits the consumers created after it, each on its own.
    consumer->prefetch = prefetch_count_;
    consumer->serial = connection_.broker().next_id();
    if (stream_start) {
        consumer->stream_next = *stream_start;
        consumer->stream_filter = parse_stream_filter(m.arguments);
        if (auto name = m.arguments.find(stream_args::consumer_name); name && name->as_string())
            consumer->stream_name = *name->as_string();
        if (auto group = m.arguments.find(stream_args::group)) consumer->stream_group = *group->as_string();
    }
    Consumer& ref = *consumer;
    consumers_.emplace(tag, std::move(consumer));
    // consume-ok goes out before any delivery: deliveries wait for the end of the loop turn.
    if (!m.nowait) connection_.send_method(id_, BasicConsumeOk{tag});
    q->add_consumer(ref);
    return std::nullopt;
}

// rabbit_amqqueue:check_consume_arguments/3, then rabbit_stream_queue:consume/3, in their order.
// A consumer named by x-stream-consumer-name resumes after the offset the broker tracked for
// that name; x-stream-offset applies only when there is none (as Kafka's auto.offset.reset).
Status Channel::check_stream_consume(const BasicConsume& m, Queue& q, std::optional<std::uint64_t>& start) {
    const std::string resource = resource_name("queue", q.name(), vhost().name());
    if (m.arguments.find("x-priority"))
        return errors::precondition(
            fmt::format("invalid arg 'x-priority' for {} of queue type rabbit_stream_queue", resource));
    auto spec = parse_offset_spec(m.arguments.find(stream_args::offset), connection_.broker().clock().unix_ms());
    if (auto* error = std::get_if<std::string>(&spec))
        return errors::precondition(fmt::format("invalid arg '{}' for {}: {}", stream_args::offset, resource, *error));
    if (prefetch_count_ == 0)
        return errors::precondition(fmt::format("consumer prefetch count is not set for '{}'", resource));
    if (m.no_ack)
        return amqp_error(ReplyCode::NotImplemented,
                          fmt::format("automatic acknowledgement not supported by stream queues {}", resource));
    if (global_prefetch_count_)
        return amqp_error(ReplyCode::NotImplemented, fmt::format("{} does not support global qos", resource));
    Stream& stream = *q.stream();
    // A group member starts after the group's tracked offset; when it gets the partition, it
    // goes on from where the previous owner stopped (Stream::try_handover).
    std::optional<protocol::FieldRef> name = m.arguments.find(stream_args::consumer_name);
    if (auto group = m.arguments.find(stream_args::group)) {
        auto text = group->as_string();
        if (!text || text->empty() || text->size() > 255)
            return errors::precondition(
                fmt::format("invalid arg '{}' for {}: expected a group name (a string of 1 to "
                            "255 bytes), got {}",
                            stream_args::group, resource, rabbit_type_name(group->type())));
        if (name)
            return errors::precondition(
                fmt::format("invalid arg '{}' for {}: a group member's offset is tracked under "
                            "its group's name; omit {}",
                            stream_args::consumer_name, resource, stream_args::consumer_name));
        name = group;
    }
    if (name && name->as_string())
        if (auto tracked = stream.tracked_offset(std::string(*name->as_string()))) {
            start = std::max(*tracked + 1, stream.first_offset());
            return std::nullopt;
        }
    start = stream.resolve(std::get<OffsetSpec>(spec));
    return std::nullopt;
}

Status Channel::on_basic_cancel(const BasicCancel& m) {
    // Cancelling an unknown tag is not an error in RabbitMQ: cancel-ok all the same.
    if (Consumer* c = find_consumer(m.consumer_tag.view())) remove_consumer(*c, false);
    if (!m.nowait) connection_.send_method(id_, BasicCancelOk{m.consumer_tag});
    return std::nullopt;
}

Status Channel::on_basic_get(const BasicGet& m) {
    Queue* q = nullptr;
    if (Status s = find_queue_for(m.queue.view(), q, Permission::Read)) return s;
    if (q->stream())
        return amqp_error(ReplyCode::NotImplemented, fmt::format("basic.get not supported by stream queues {}",
                                                                 resource_name("queue", q->name(), vhost().name())));
    std::optional<QueuedMessage> taken = q->take_one();
    if (!taken) {
        stats_.add(Stat::get_empty);
        q->stats().add(Stat::get_empty);
        vhost().stats().add(Stat::get_empty);
        connection_.send_method(id_, BasicGetEmpty{});
        return std::nullopt;
    }
    const std::uint64_t tag = next_delivery_tag_;
    OutputQueue& out = connection_.out();
    const OutputQueue::Mark mark = out.mark();
    try {
        const Message& msg = *taken->message;
        BasicGetOk ok;
        ok.delivery_tag = tag;
        ok.redelivered = taken->redelivered();
        ok.exchange = msg.exchange();
        ok.routing_key = msg.routing_key();
        ok.message_count = static_cast<std::uint32_t>(q->message_count());
        write_method_frame(out.bytes(), id_, ok);
        send_message_content(*taken, q->args().type == QueueType::Quorum);
        if (!m.no_ack)
            unacked_.emplace_back(tag, q->id(), std::move(*taken), nullptr, true, connection_.broker().now(),
                                  q->is_stored(msg));
    } catch (...) {
        // All or nothing, as a delivery (Channel::deliver): the message goes back to its place.
        out.rollback(mark);
        q->put_back(std::move(*taken));
        throw;
    }
    const QueuedMessage& sent = m.no_ack ? *taken : unacked_.back().message;
    q->on_delivered(sent, m.no_ack);
    ++next_delivery_tag_;
    {
        Stats& vs = vhost().stats();
        const Stat kind = m.no_ack ? Stat::get_no_ack : Stat::get;
        stats_.add(kind);
        q->stats().add(kind);
        vs.add(kind);
        if (sent.redelivered()) {
            stats_.add(Stat::redeliver);
            q->stats().add(Stat::redeliver);
            vs.add(Stat::redeliver);
        }
    }
    if (!m.no_ack) {
        q->add_unacked();
        ++unacked_live_;
    }
    return std::nullopt;
}

}  // namespace warren::broker
