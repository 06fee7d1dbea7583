// The glue between the broker core and Asio: one io_context on one thread. It runs the
// broker's deferred work and flushes every connection's output once per loop turn, and keeps
// one OS timer armed at the broker's next deadline. Under a high frame rate it paces its turns
// (TurnPacer): a turn that read little is followed by a pause of at most input_batching_us.
#pragma once

#include <asio.hpp>

#include <memory>
#include <vector>

#include "broker/broker.hpp"
#include "broker/turn_pacer.hpp"

namespace warren::broker::net {

class Transport;

class EventLoop {
public:
    EventLoop(asio::io_context& io, Broker& broker);

    asio::io_context& io() { return io_; }
    Broker& broker() { return broker_; }

    // Ends the current loop turn soon: runs broker work, flushes output, re-arms the timer.
    void schedule_turn_end();
    // The connection has output; it is written at the end of this loop turn.
    void want_flush(std::shared_ptr<Transport> connection);

private:
    void turn_end();
    void arm_timer();
    void pace();

    asio::io_context& io_;
    Broker& broker_;
    asio::steady_timer timer_;
    TimePoint timer_at_{};
    bool timer_armed_ = false;
    bool turn_end_scheduled_ = false;
    bool collecting_output_ = false;  // turn_end() runs the broker's work: its output is flushed next
    std::vector<std::shared_ptr<Transport>> flush_;
    std::vector<std::shared_ptr<Transport>> flushing_;
    TurnPacer pacer_;
    std::uint64_t bytes_at_last_turn_ = 0;  // Broker::input().bytes when the last turn ended
};

}  // namespace warren::broker::net
