// See event_loop.hpp.
#include "broker/net/event_loop.hpp"

#include "broker/log.hpp"
#include "broker/net/transport.hpp"
#include "broker/scope_guard.hpp"

namespace warren::broker::net {

EventLoop::EventLoop(asio::io_context& io, Broker& broker) : io_(io), broker_(broker), timer_(io) {
    broker_.on_work_pending = [this] { schedule_turn_end(); };
}

void EventLoop::schedule_turn_end() {
    if (turn_end_scheduled_) return;
    turn_end_scheduled_ = true;
    asio::post(io_, [this] { turn_end(); });
}

void EventLoop::want_flush(std::shared_ptr<Transport> connection) {
    flush_.push_back(std::move(connection));
    // Output added by this turn's own broker work (deliveries) is flushed by this turn: another
    // turn would only find nothing to do, at the price of a handler and a poll of the sockets.
    if (!collecting_output_) schedule_turn_end();
}

void EventLoop::turn_end() {
    turn_end_scheduled_ = false;
    Broker::TimeScope scope(broker_);
    {
        FlagGuard collecting(collecting_output_);
        try {
            broker_.run_pending();
        } catch (const std::exception& e) {
            // Not tied to one connection (a timer, a queue's dispatch): log it and keep serving.
            log::error("internal error in the broker's deferred work: {}", e.what());
        }
        // Storage before sockets: nothing goes out that promises what is not written yet.
        try {
            broker_.end_turn_storage();
        } catch (const std::exception& e) {
            log::error("internal error while writing to storage: {}", e.what());
        }
    }
    flushing_.swap(flush_);
    for (auto& c : flushing_) c->flush();
    flushing_.clear();
    arm_timer();
}

void EventLoop::arm_timer() {
    auto next = broker_.timers().next_deadline();
    if (!next) return;
    if (timer_armed_ && timer_at_ <= *next) return;
    timer_armed_ = true;
    timer_at_ = *next;
    timer_.expires_at(*next);
    timer_.async_wait([this](const asio::error_code& ec) {
        if (ec == asio::error::operation_aborted) return;
        timer_armed_ = false;
        turn_end();
    });
}

}  // namespace warren::broker::net
