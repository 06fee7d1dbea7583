// See dead_letter_health.hpp. Why a census rather than counts kept per message: a queue's
// contents change on paths that never read headers (delivery, expiry, purge) and after a
// restart its messages are on disk only, so exact running counts would mean parsing headers on
// every enqueue and dequeue of every queue, or a label stored per message. Instead each read
// walks a bounded stretch of the queue (cursor kept between reads) and publishes the counts when
// a pass ends: a queue shorter than the budget is counted exactly on every read, a longer one
// once per ceil(length / budget) reads. Age and rates need no walk: the oldest message's arrival
// comes from the queue's ArrivalIndex and the rates from depth samples kept here.
#include "broker/dead_letter_health.hpp"

namespace warren::broker::workbench {

namespace {
void count(LabelCounts& counts, const std::optional<std::string>& label) {
    ++counts[label ? *label : std::string()];
}

double per_second(double delta, Duration over) {
    const double s = std::chrono::duration<double>(over).count();
    return s > 0 ? delta / s : 0;
}
}  // namespace

QueueHealth HealthBook::read(const Queue& q, TimePoint now, const HealthOptions& o) {
    State& st = states_[q.id()];
    QueueHealth h;
    h.ready = q.message_count();
    h.arrivals = q.arrivals().arrivals();
    h.oldest_age = q.oldest_age(now);

    // Rates: against the oldest sample still inside the window.
    if (st.samples.empty() || now - st.samples.back().at >= o.sample_interval)
        st.samples.push_back({now, h.ready, h.arrivals});
    while (st.samples.size() > 2 && now - st.samples[1].at >= o.rate_window) st.samples.erase(st.samples.begin());
    const Sample& base = st.samples.front();
    if (base.at < now) {
        h.rate_window = now - base.at;
        h.growth_per_second = per_second(static_cast<double>(h.ready) - static_cast<double>(base.ready), h.rate_window);
        h.arrivals_per_second = per_second(static_cast<double>(h.arrivals - base.arrivals), h.rate_window);
    }

    // Counts: a new header starts a new pass.
    if (st.header_name != o.header) {
        st = State{std::move(st.samples), {}, {}, {}, {}, 0, o.header, {}};
    }
    std::size_t paged_reads = 0;
    st.cursor = q.ready().walk(st.cursor, o.census_budget, [&](const ReadyMessages::Entry& e) {
        if (!e.message && paged_reads >= o.max_paged_reads) return false;
        if (!e.message) ++paged_reads;
        MessageRef m = q.peek(e);
        if (!m) {
            ++st.unreadable;
            return true;
        }
        DeathLabels l = death_labels(*m, o.header);
        count(st.reason, l.reason);
        count(st.origin, l.origin_queue);
        count(st.header, l.header);
        return true;
    });
    if (st.cursor.done) {
        st.last.by_reason = std::move(st.reason);
        st.last.by_origin_queue = std::move(st.origin);
        st.last.by_header = std::move(st.header);
        st.last.unreadable = st.unreadable;
        st.last.counts_complete = true;
        st.last.counts_at = now;
        st.reason.clear();
        st.origin.clear();
        st.header.clear();
        st.unreadable = 0;
        st.cursor = {};
    }
    h.header = o.header;
    h.by_reason = st.last.by_reason;
    h.by_origin_queue = st.last.by_origin_queue;
    h.by_header = st.last.by_header;
    h.unreadable = st.last.unreadable;
    h.counts_complete = st.last.counts_complete;
    h.counts_at = st.last.counts_at;
    return h;
}

}  // namespace warren::broker::workbench
