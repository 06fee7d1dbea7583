// See prometheus_warren.hpp. A dead-letter queue here is one a dead letter was routed into since
// the broker started, or one bound to a dead-letter exchange that a queue names: reading its
// health walks a bounded part of it, so the scrape only pays for the dead-letter queues.
#include "mgmt/prometheus_warren.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <vector>

#include "broker/broker.hpp"
#include "broker/broker_view.hpp"
#include "broker/durability.hpp"
#include "broker/vhost.hpp"
#include "broker/vhost_storage.hpp"

namespace warren::mgmt {

namespace {

namespace wb = broker::workbench;

constexpr broker::DeadLetterReason reasons[] = {broker::DeadLetterReason::Rejected, broker::DeadLetterReason::Expired,
                                                broker::DeadLetterReason::Maxlen,
                                                broker::DeadLetterReason::DeliveryLimit};

// A label value with the text format's escapes (backslash, quote, newline).
std::string escaped(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# TYPE {} {}\n# HELP {} {}\n", name, type, name, help);
}

// The largest max_label_values counts, the rest summed as "(other)"; "" (no such header) as "(none)".
std::vector<std::pair<std::string, std::uint64_t>> top_counts(const wb::LabelCounts& counts) {
    std::vector<std::pair<std::string, std::uint64_t>> v(counts.begin(), counts.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    if (v.size() > max_label_values) {
        std::uint64_t rest = 0;
        for (std::size_t i = max_label_values; i < v.size(); ++i) rest += v[i].second;
        v.resize(max_label_values);
        v.emplace_back("(other)", rest);
    }
    for (auto& [label, n] : v)
        if (label.empty()) label = "(none)";
    return v;
}

// Queues a dead letter can reach, by vhost and name: those bound to a dead-letter exchange that
// some queue names (or, for the default exchange, named by its dead-letter routing key). With
// the queues a dead letter was routed into, these are the dead-letter queues: a restarted
// broker's have their gauges before a new dead letter arrives.
std::set<std::pair<std::string, std::string>> dead_letter_targets(broker::Broker& broker) {
    std::set<std::pair<std::string, std::string>> out;
    const broker::BrokerView view(broker);
    for (const auto& [vname, vh] : broker.vhosts()) {
        std::set<std::string> exchanges;
        for (const auto& [qname, q] : vh->queues()) {
            const broker::QueueArgs& a = q->args();
            if (!a.dead_letter_exchange) continue;
            if (!a.dead_letter_exchange->empty())
                exchanges.insert(*a.dead_letter_exchange);
            else if (a.dead_letter_routing_key)
                out.emplace(vname, *a.dead_letter_routing_key);
        }
        for (const std::string& x : exchanges)
            for (const broker::BindingSnapshot& b : view.bindings_from(vname, x))
                if (!b.to_exchange) out.emplace(vname, b.destination);
    }
    return out;
}

struct DeadLetterQueue {
    std::string labels;  // vhost="..",queue=".."
    wb::QueueHealth health;
};

void histogram(std::string& out, std::string_view name, std::string_view help, const store::SyncLatency& t) {
    family(out, name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < t.counts.size(); ++i) {
        cumulative += t.counts[i];
        const std::string le = i < t.bounds.size() ? fmt::format("{}", t.bounds[i]) : std::string("+Inf");
        fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, le, cumulative);
    }
    fmt::format_to(std::back_inserter(out), "{}_sum {}\n{}_count {}\n", name, t.sum, name, cumulative);
}

// The sync thread's fdatasync times and the confirm waits (nothing without storage).
void storage_metrics(std::string& out, const broker::Broker& broker) {
    const broker::Durability* d = broker.durability();
    if (!d) return;
    histogram(out, "warren_storage_fdatasync_seconds",
              "Time each fdatasync of the message store took (on the sync thread, off the event loop)",
              d->sync_stats().fdatasync);
    if (d->fsync_confirms())
        histogram(out, "warren_storage_confirm_wait_seconds",
                  "Time from the end of a loop turn whose stored records a publisher confirm (or another "
                  "answer) waits for to their being fdatasynced: storage's share of confirm latency, per turn",
                  d->commit_latency());
}

// Each vhost's message store, by vhost (a handful of vhosts: labelled at both endpoints). What an
// operator watches for: errors writing or reading the disk, records that failed their checks, and
// whether sealed segments get their indexes (the next start after a crash reads the others whole).
void store_metrics(std::string& out, const broker::Broker& broker) {
    struct Row {
        std::string vhost;
        store::LogStats stats;
        const store::RecoveryStats* recovery;
    };
    std::vector<Row> rows;
    for (const auto& [name, vh] : broker.vhosts())
        if (broker::VHostStorage* s = vh->storage()) rows.push_back({escaped(name), s->log().stats(), &s->recovery()});
    if (rows.empty()) return;
    auto by_vhost = [&](const char* name, const char* type, const char* help, auto value) {
        family(out, name, type, help);
        for (const Row& r : rows)
            fmt::format_to(std::back_inserter(out), "{}{{vhost=\"{}\"}} {}\n", name, r.vhost, value(r));
    };
    auto each = [&](const char* name, const char* type, const char* help, std::uint64_t store::LogStats::*field) {
        by_vhost(name, type, help, [&](const Row& r) { return r.stats.*field; });
    };
    using S = store::LogStats;
    each("warren_storage_segments", "gauge", "Segment files of the vhost's message store", &S::segments);
    each("warren_storage_stored_bytes", "gauge", "Bytes of the vhost's segments and their event files",
         &S::bytes_on_disk);
    each("warren_storage_write_errors_total", "counter",
         "Flushes of the message store that the file system refused (their messages were not confirmed)",
         &S::write_errors);
    each("warren_storage_read_errors_total", "counter", "Reads of the message store that the file system refused",
         &S::read_errors);
    each("warren_storage_bad_records_total", "counter",
         "Records read back from the message store that failed their checks (checksum, header)", &S::bad_records);
    each("warren_storage_segments_reused_total", "counter",
         "Segments written into the file of a settled one (segment_reuse) rather than a new file", &S::segments_reused);
    each("warren_storage_segment_indexes_written_total", "counter",
         "Index files written for sealed segments (off the event loop)", &S::indexes_written);
    each("warren_storage_segment_index_write_failures_total", "counter",
         "Sealed segments whose index file could not be written (logged; read whole after a crash)",
         &S::index_write_failures);
    each("warren_storage_segment_index_writes_pending", "gauge",
         "Index files handed to the store's thread and not yet reported written", &S::index_writes_pending);
    // What the last start found (the log line "storage: vhost ...: N messages back ..." in numbers).
    by_vhost("warren_storage_recovered_messages", "gauge",
             "Messages the last start put back in their queues from the vhost's message store",
             [](const Row& r) { return r.recovery->live; });
    by_vhost("warren_storage_recovery_bad_records", "gauge",
             "Records and file headers the last start found failing their checks and skipped (logged with file "
             "and offset)",
             [](const Row& r) { return r.recovery->bad_records + r.recovery->bad_headers; });
    by_vhost("warren_storage_recovery_torn_tails", "gauge",
             "Files whose incomplete last record the last start cut off (a crash mid-write)",
             [](const Row& r) { return r.recovery->torn_tails; });
    by_vhost("warren_storage_recovery_unreadable_files", "gauge",
             "Files of the message store the last start could not open or read (left as they are)",
             [](const Row& r) { return r.recovery->unreadable_files; });
}

void dead_letter_metrics(std::string& out, broker::Broker& broker, wb::HealthBook& book, bool per_object) {
    constexpr const char* dead_lettered = "warren_dead_lettered_messages_total";
    family(out, dead_lettered, "counter",
           "Messages dead-lettered by queues with a dead-letter exchange, by reason (rejected, expired, maxlen, "
           "delivery_limit)");
    if (!per_object) {
        std::array<std::uint64_t, 4> totals{};
        for (const auto& [name, vh] : broker.vhosts())
            for (std::size_t i = 0; i < totals.size(); ++i) totals[i] += vh->dead_lettered[i];
        for (auto r : reasons)
            fmt::format_to(std::back_inserter(out), "{}{{reason=\"{}\"}} {}\n", dead_lettered,
                           broker::dead_letter_reason_name(r), totals[static_cast<std::size_t>(r)]);
        return;
    }
    std::vector<DeadLetterQueue> dlqs;
    const broker::TimePoint now = broker.now();
    const auto targets = dead_letter_targets(broker);
    for (const auto& [vname, vh] : broker.vhosts()) {
        for (const auto& [qname, q] : vh->queues()) {
            const std::string labels = fmt::format("vhost=\"{}\",queue=\"{}\"", escaped(vname), escaped(qname));
            for (auto r : reasons)
                if (std::uint64_t n = q->dead_lettered()[static_cast<std::size_t>(r)])
                    fmt::format_to(std::back_inserter(out), "{}{{{},reason=\"{}\"}} {}\n", dead_lettered, labels,
                                   broker::dead_letter_reason_name(r), n);
            const bool dead_letter_queue = q->dead_letters_received() || targets.contains({vname, qname});
            if (dead_letter_queue && !q->stream()) dlqs.push_back({labels, book.read(*q, now)});
        }
    }
    book.prune([&](broker::QueueId id) {
        for (const auto& [vname, vh] : broker.vhosts())
            if (vh->queue_by_id(id)) return true;
        return false;
    });
    auto gauge = [&](const char* name, const char* help, auto value) {
        family(out, name, "gauge", help);
        for (const auto& d : dlqs)
            if (auto v = value(d.health)) fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, d.labels, *v);
    };
    using H = const wb::QueueHealth&;
    gauge("warren_dead_letter_queue_oldest_message_age_seconds",
          "Age of the oldest ready message in a dead-letter queue (a queue a dead letter was routed into)",
          [](H h) -> std::optional<double> {
              return h.oldest_age ? std::optional<double>(std::chrono::duration<double>(*h.oldest_age).count())
                                  : std::nullopt;
          });
    gauge("warren_dead_letter_queue_growth_rate",
          "Change of a dead-letter queue's ready messages per second (1 minute)",
          [](H h) { return std::optional<double>(h.growth_per_second); });
    gauge("warren_dead_letter_queue_arrival_rate", "Messages entering a dead-letter queue per second (1 minute)",
          [](H h) { return std::optional<double>(h.arrivals_per_second); });
    auto by = [&](const char* name, const char* help, const char* label, wb::LabelCounts wb::QueueHealth::*counts,
                  bool with_header) {
        family(out, name, "gauge", help);
        for (const auto& d : dlqs) {
            if (!d.health.counts_complete) continue;
            const std::string header =
                with_header ? fmt::format(",header=\"{}\"", escaped(d.health.header)) : std::string();
            for (const auto& [value, n] : top_counts(d.health.*counts))
                fmt::format_to(std::back_inserter(out), "{}{{{}{},{}=\"{}\"}} {}\n", name, d.labels, header, label,
                               escaped(value), n);
        }
    };
    by("warren_dead_letter_queue_messages_by_reason",
       "Ready messages of a dead-letter queue by x-first-death-reason (from the last complete count)", "reason",
       &wb::QueueHealth::by_reason, false);
    by("warren_dead_letter_queue_messages_by_origin",
       "Ready messages of a dead-letter queue by x-first-death-queue (from the last complete count)", "origin_queue",
       &wb::QueueHealth::by_origin_queue, false);
    by("warren_dead_letter_queue_messages_by_error",
       "Ready messages of a dead-letter queue by the value of an error header (error.cause)", "value",
       &wb::QueueHealth::by_header, true);
}

}  // namespace

void warren_metrics(std::string& out, broker::Broker& broker, wb::HealthBook& book, bool per_object) {
    dead_letter_metrics(out, broker, book, per_object);
    storage_metrics(out, broker);
    store_metrics(out, broker);
}

}  // namespace warren::mgmt
