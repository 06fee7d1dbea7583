// See stats.hpp.
#include "broker/stats.hpp"

namespace warren::broker {

std::string_view stat_name(Stat s) {
    static constexpr std::array<std::string_view, stat_count> names{"publish",
                                                                    "publish_in",
                                                                    "publish_out",
                                                                    "confirm",
                                                                    "return_unroutable",
                                                                    "drop_unroutable",
                                                                    "deliver",
                                                                    "deliver_no_ack",
                                                                    "get",
                                                                    "get_no_ack",
                                                                    "get_empty",
                                                                    "ack",
                                                                    "redeliver",
                                                                    "recv_oct",
                                                                    "send_oct",
                                                                    "recv_cnt",
                                                                    "send_cnt",
                                                                    "messages",
                                                                    "messages_ready",
                                                                    "messages_unacknowledged"};
    return names[static_cast<std::size_t>(s)];
}

void Stats::sample(TimePoint now) {
    if (!window_) {
        window_ = std::make_unique<Window>();
        window_->changed_at = now;
    }
    Window& w = *window_;
    if (w.samples > 0 && w.last != values_) w.changed_at = now;
    w.prev = w.last;
    w.prev_at = w.last_at;
    w.last = values_;
    w.last_at = now;
    if (w.samples < 2) ++w.samples;
}

double Stats::rate(Stat s) const {
    if (!window_ || window_->samples < 2) return 0.0;
    const Window& w = *window_;
    const double seconds = std::chrono::duration<double>(w.last_at - w.prev_at).count();
    if (seconds <= 0) return 0.0;
    const std::size_t i = index(s);
    // Gauges can fall: signed difference.
    const double delta = static_cast<double>(static_cast<std::int64_t>(w.last[i] - w.prev[i]));
    return delta / seconds;
}

}  // namespace warren::broker
