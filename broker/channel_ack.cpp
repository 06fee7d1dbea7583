// basic.ack, nack, reject and recover, and the ledger of unacknowledged deliveries.
// Delivery tags only increase, so the ledger is a deque ordered by tag: a tag is found by
// binary search, and `multiple` settles a prefix. Settled entries stay as tombstones until
// they reach the front.
#include <algorithm>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/channel_errors.hpp"
#include "broker/connection.hpp"
#include "broker/stream.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::broker {

using namespace protocol;

Status Channel::collect(std::uint64_t tag, bool multiple, MethodId method, std::vector<Unacked>& out) {
    auto unknown = [&] {
        return AmqpError{ReplyCode::PreconditionFailed,
                         fmt::format("PRECONDITION_FAILED - unknown delivery tag {}", tag), method};
    };
    auto take = [&](Unacked& e) {
        e.live = false;
        if (global_prefetch_count_ && unacked_live_ + tx_held_ == global_prefetch_count_)
            connection_.broker().note_credit_freed();
        --unacked_live_;
        // In a transaction the prefetch credit comes back at commit, as in RabbitMQ.
        if (tx_mode_)
            ++tx_held_;
        else
            release_credit(e);
        out.push_back(std::move(e));
    };
    if (multiple && tag == 0) {
        for (auto& e : unacked_)
            if (e.live) take(e);
        pop_settled_front();
        return std::nullopt;
    }
    // Acks usually come in order: the oldest delivery first.
    auto it = !unacked_.empty() && unacked_.front().tag == tag
                  ? unacked_.begin()
                  : std::lower_bound(unacked_.begin(), unacked_.end(), tag,
                                     [](const Unacked& e, std::uint64_t t) { return e.tag < t; });
    if (it == unacked_.end() || it->tag != tag || !it->live) return unknown();
    if (multiple) {
        for (auto p = unacked_.begin(); p != std::next(it); ++p)
            if (p->live) take(*p);
    } else {
        take(*it);
    }
    pop_settled_front();
    return std::nullopt;
}

void Channel::release_credit(Unacked& e) {
    if (!e.consumer || !e.consumer->unacked) return;
    if (e.consumer->prefetch && e.consumer->unacked == e.consumer->prefetch) connection_.broker().note_credit_freed();
    --e.consumer->unacked;
}

void Channel::pop_settled_front() {
    while (!unacked_.empty() && !unacked_.front().live) unacked_.pop_front();
    if (unacked_live_ == 0) unacked_.clear();
}

// Acks mostly name the queue of the previous one: remember it while the topology is unchanged.
Queue* Channel::queue_for(QueueId id) {
    VHost& vh = vhost();
    if (id != cached_queue_id_ || cached_queue_version_ != vh.topology_version()) {
        cached_queue_ = vh.queue_by_id(id);
        cached_queue_id_ = id;
        cached_queue_version_ = vh.topology_version();
    }
    return cached_queue_;
}

void Channel::requeue_entry(Unacked&& entry, ReturnReason why) {
    if (!entry.message.message) return;  // already settled by a commit that threw half-way
    if (Queue* q = queue_for(entry.queue)) {
        q->remove_unacked();
        if (Stream* s = q->stream()) s->on_returned(*this, entry.tag);
        q->requeue(std::move(entry.message), why);
    }
    else
        forget_stored(entry);  // the queue is gone: so is the message, as in RabbitMQ
}

void Channel::forget_stored(const Unacked& entry) {
    if (!entry.stored || !entry.message.message) return;
    if (VHostStorage* s = vhost().storage()) s->forget(entry.message.message->store_location());
}

void Channel::settle(std::vector<Unacked>& entries, bool ack, bool requeue, ReturnReason why) {
    // Credit came back: the queues these deliveries came from may deliver again. With a
    // channel-wide limit, every queue this channel consumes from may.
    auto& freed = freed_scratch_;
    freed.clear();
    if (ack) {
        stats_.add(Stat::ack, entries.size());
        vhost().stats().add(Stat::ack, entries.size());
    }
    for (auto& e : entries) {
        Queue* q = queue_for(e.queue);
        if (q) q->remove_unacked();
        if (!q) {
            forget_stored(e);
        } else if (ack) {
            q->stats().add(Stat::ack);
            if (Stream* s = q->stream())
                s->on_acked(e.consumer, e.message.seq() - 1, *this, e.tag);  // credit only; the message stays
            else
                q->on_acked(e.message);
        } else if (requeue) {
            if (Stream* s = q->stream()) s->on_returned(*this, e.tag);
            q->requeue(std::move(e.message), why);
        } else {
            q->dead_letter(std::move(e.message), DeadLetterReason::Rejected);
        }
        if (e.consumer && e.consumer->queue && std::find(freed.begin(), freed.end(), e.consumer->queue) == freed.end())
            freed.push_back(e.consumer->queue);
    }
    entries.clear();
    if (global_prefetch_count_) {
        on_output_drained();
    } else {
        for (Queue* q : freed) q->mark_dirty();
    }
}

Status Channel::settle_tags(std::uint64_t tag, bool multiple, MethodId method, bool ack, bool requeue) {
    std::vector<Unacked>& entries = settle_scratch_;
    entries.clear();
    if (Status s = collect(tag, multiple, method, entries)) return s;
    if (!ack)
        for (const Unacked& e : entries)
            if (Queue* q = queue_for(e.queue); q && q->stream()) {
                // RabbitMQ closes the connection; what else was collected goes back first.
                std::string resource = resource_name("queue", q->name(), vhost().name());
                settle(entries, false, true);
                return AmqpError{ReplyCode::NotImplemented,
                                 fmt::format("NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream "
                                             "queues {}",
                                             resource),
                                 method};
            }
    // RabbitMQ 4.3 counts a reject as a failed delivery and a nack as a plain return.
    const ReturnReason why = method == BasicNack::id ? ReturnReason::Nacked : ReturnReason::Rejected;
    if (tx_mode_) {
        tx_settles_.push_back(
            TxSettle{ack ? TxSettle::Kind::Ack : TxSettle::Kind::Reject, std::move(entries), requeue, why});
        return std::nullopt;
    }
    settle(entries, ack, requeue, why);
    return std::nullopt;
}

Status Channel::on_basic_ack(const BasicAck& m) {
    return settle_tags(m.delivery_tag, m.multiple, BasicAck::id, true, false);
}

Status Channel::on_basic_nack(const BasicNack& m) {
    return settle_tags(m.delivery_tag, m.multiple, BasicNack::id, false, m.requeue);
}

Status Channel::on_basic_reject(const BasicReject& m) {
    return settle_tags(m.delivery_tag, false, BasicReject::id, false, m.requeue);
}

void Channel::requeue_all_unacked() {
    std::vector<Unacked> entries;
    collect(0, true, BasicRecover::id, entries);
    settle(entries, false, true, ReturnReason::Recovered);
}

Status Channel::on_basic_recover_async(const BasicRecoverAsync& m) {
    if (!m.requeue) return amqp_error(ReplyCode::NotImplemented, "requeue=false");
    requeue_all_unacked();
    return std::nullopt;
}

Status Channel::on_basic_recover(const BasicRecover& m) {
    if (!m.requeue) return amqp_error(ReplyCode::NotImplemented, "requeue=false");
    requeue_all_unacked();
    connection_.send_method(id_, BasicRecoverOk{});
    return std::nullopt;
}

}  // namespace warren::broker
