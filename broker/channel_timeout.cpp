// The consumer timeout (DECISIONS.md, as RabbitMQ 4.3): a delivery not acknowledged within
// consumer_timeout_ms cancels only the consumer that holds it; its unacknowledged messages go
// back to their queues and the client gets basic.cancel. A client that does not advertise
// consumer_cancel_notify cannot learn of the cancel, so its channel is closed with 406, as
// RabbitMQ 3.x closes every timed-out channel.
#include <algorithm>

#include "broker/broker.hpp"
#include "broker/channel.hpp"
#include "broker/channel_errors.hpp"
#include "broker/connection.hpp"
#include "broker/log.hpp"
#include "broker/vhost.hpp"

namespace warren::broker {

using namespace protocol;

void Channel::arm_consumer_timeout() {
    const std::uint64_t timeout_ms = connection_.broker().config().consumer_timeout_ms;
    if (timeout_ms == 0 || closed_down_) return;
    // The ledger is in delivery order: the first live consumer delivery is the oldest.
    for (const auto& e : unacked_) {
        if (!e.live || !e.consumer) continue;
        TimePoint deadline = e.delivered_at + std::chrono::milliseconds(timeout_ms);
        consumer_timeout_timer_ = connection_.broker().timers().schedule(deadline, [this] {
            consumer_timeout_timer_ = 0;
            on_consumer_timeout();
        });
        return;
    }
}

void Channel::on_consumer_timeout() {
    const std::uint64_t timeout_ms = connection_.broker().config().consumer_timeout_ms;
    const TimePoint now = connection_.broker().now();
    std::vector<Consumer*> stuck;
    for (const auto& e : unacked_) {
        if (!e.live || !e.consumer) continue;
        if (e.delivered_at + std::chrono::milliseconds(timeout_ms) > now) break;
        if (std::find(stuck.begin(), stuck.end(), e.consumer) == stuck.end()) stuck.push_back(e.consumer);
    }
    if (stuck.empty()) {
        arm_consumer_timeout();
        return;
    }
    if (!connection_.client_has_capability("consumer_cancel_notify")) {
        begin_close(amqp_error(ReplyCode::PreconditionFailed,
                               fmt::format("delivery acknowledgement on channel {} timed out. Timeout value used: {} "
                                           "ms. This timeout value can be configured, see consumers doc guide to "
                                           "learn more",
                                           id_, timeout_ms)));
        return;
    }
    for (Consumer* c : stuck) time_out_consumer(*c);
    arm_consumer_timeout();
}

void Channel::time_out_consumer(Consumer& consumer) {
    log::peer(log::Level::Warning, connection_.peer().address,
              "consumer '{}' on channel {} of connection {} timed out waiting for delivery acknowledgement; "
              "cancelled, its messages requeued",
              log::escaped(consumer.tag), id_, connection_.peer().address);
    for (auto& e : unacked_) {
        if (!e.live || e.consumer != &consumer) continue;
        e.live = false;
        --unacked_live_;
        release_credit(e);
        requeue_entry(std::move(e), ReturnReason::TimedOut);
    }
    pop_settled_front();
    connection_.send_method(id_, BasicCancel{consumer.tag, true});
    remove_consumer(consumer, false);
}

}  // namespace warren::broker
