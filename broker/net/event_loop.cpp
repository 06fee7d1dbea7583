// See event_loop.hpp.
#include "broker/net/event_loop.hpp"

#include <sys/prctl.h>

#include <ctime>

#include "broker/log.hpp"
#include "broker/net/transport.hpp"
#include "broker/scope_guard.hpp"

namespace warren::broker::net {

namespace {
TurnPacer::Settings pacer_settings(const Config& config) {
    TurnPacer::Settings s;
    s.interval = std::chrono::microseconds(config.input_batching_us);
    return s;
}
}  // namespace

EventLoop::EventLoop(asio::io_context& io, Broker& broker)
    : io_(io), broker_(broker), timer_(io), pacer_(pacer_settings(broker.config())) {
    broker_.on_work_pending = [this] { schedule_turn_end(); };
    // The kernel lets a sleeping thread oversleep by its timer slack (50 us by default): the
    // pacing pauses are about that long, so the slack is cut to a few microseconds.
    if (broker.config().input_batching_us > 0) prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0);
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
    pace();
}

// The pause blocks the loop on purpose, for at most input_batching_us: the sockets fill
// meanwhile, and the next turn reads and answers many clients' frames with a system call each
// where it would otherwise have woken for every frame. Timers are late by the pause at most.
void EventLoop::pace() {
    const auto& input = broker_.input();
    auto pause = pacer_.turn_ended(std::chrono::steady_clock::now(), input.bytes - bytes_at_last_turn_, input.frames,
                                   broker_.take_credit_freed());
    bytes_at_last_turn_ = input.bytes;
    if (pause <= Duration::zero()) return;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(pause).count();
    timespec ts{static_cast<std::time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    nanosleep(&ts, nullptr);
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
