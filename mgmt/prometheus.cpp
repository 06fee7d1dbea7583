// See prometheus.hpp. Counters come from the live per-vhost counters (bumped on the message path)
// and the broker's churn and message-size counters; queue gauges from the sampler's totals, as
// rabbitmq_prometheus reads RabbitMQ's own metric tables.
#include "mgmt/prometheus.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "broker/broker.hpp"
#include "broker/durability.hpp"
#include "mgmt/json_shapes.hpp"

namespace warren::mgmt {

using broker::Stat;

namespace {

const auto process_start = std::chrono::steady_clock::now();

// A label value with the format's escapes (backslash, quote, newline).
std::string label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

class Text {
public:
    // # HELP and # TYPE once per family, then its samples.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += fmt::format("# TYPE {} {}\n# HELP {} {}\n", name, type, name, help);
    }
    void sample(std::string_view name, std::string_view labels, double v) {
        if (labels.empty())
            out_ += fmt::format("{} {}\n", name, v);
        else
            out_ += fmt::format("{}{{{}}} {}\n", name, labels, v);
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t v) {
        if (labels.empty())
            out_ += fmt::format("{} {}\n", name, v);
        else
            out_ += fmt::format("{}{{{}}} {}\n", name, labels, v);
    }
    // A family with one sample.
    void one(std::string_view name, std::string_view type, std::string_view help, std::uint64_t v,
             std::string_view labels = {}) {
        family(name, type, help);
        sample(name, labels, v);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

std::uint64_t resident_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::uint64_t open_fds() {
    std::uint64_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        if (n > 0) --n;  // the directory stream's own descriptor
    }
    return n;
}

std::uint64_t max_fds() {
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return 0;
    return files.rlim_cur;
}

// The 3.10 dashboard's channel counters: summed at /metrics, per channel at /metrics/per-object.
struct Channel {
    const char* name;
    Stat stat;
    const char* help;
};
const Channel channel_counters[] = {
    {"rabbitmq_channel_messages_published_total", Stat::publish,
     "Total number of messages published into an exchange on a channel"},
    {"rabbitmq_channel_messages_confirmed_total", Stat::confirm,
     "Total number of messages published into an exchange and confirmed on the channel"},
    {"rabbitmq_channel_messages_unroutable_returned_total", Stat::return_unroutable,
     "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable"},
    {"rabbitmq_channel_messages_unroutable_dropped_total", Stat::drop_unroutable,
     "Total number of messages published as non-mandatory into an exchange and dropped as unroutable"},
    {"rabbitmq_channel_messages_delivered_ack_total", Stat::deliver,
     "Total number of messages delivered to consumers in manual acknowledgement mode"},
    {"rabbitmq_channel_messages_delivered_total", Stat::deliver_no_ack,
     "Total number of messages delivered to consumers in automatic acknowledgement mode"},
    {"rabbitmq_channel_get_ack_total", Stat::get,
     "Total number of messages fetched with basic.get in manual acknowledgement mode"},
    {"rabbitmq_channel_get_total", Stat::get_no_ack,
     "Total number of messages fetched with basic.get in automatic acknowledgement mode"},
    {"rabbitmq_channel_get_empty_total", Stat::get_empty,
     "Total number of times basic.get operations fetched no message"},
    {"rabbitmq_channel_messages_redelivered_total", Stat::redeliver,
     "Total number of messages redelivered to consumers"},
    {"rabbitmq_channel_messages_acked_total", Stat::ack, "Total number of messages acknowledged by consumers"},
};

// rabbit_global_counters: these have a protocol label; the delivery side a queue_type too.
constexpr const char* proto = "protocol=\"amqp091\"";
constexpr const char* proto_queue = "protocol=\"amqp091\",queue_type=\"rabbit_classic_queue\"";

void aggregated_object_metrics(Text& t, const broker::StatsSnapshot& live, const broker::StatsSnapshot& sampled,
                               const broker::ObjectTotals& counts);

void node_metrics(Text& t, const broker::Broker& b, const broker::BrokerView& view, bool per_object) {
    const std::string_view endpoint = per_object ? "per-object" : "metrics";
    const auto& cfg = b.config();
    t.one("rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info", 1,
          fmt::format("rabbitmq_node=\"{}\",rabbitmq_cluster=\"{}\",rabbitmq_cluster_permanent_id=\"{}\","
                      "rabbitmq_endpoint=\"{}\"",
                      label(node_name()), label(node_name()), label(node_name()), endpoint));
    t.one("rabbitmq_build_info", "untyped", "RabbitMQ & Erlang/OTP version info", 1,
          fmt::format("rabbitmq_version=\"{}\",prometheus_plugin_version=\"{}\",prometheus_client_version=\"{}\","
                      "erlang_version=\"none (Warren, C++20)\",warren_product=\"{}\"",
                      label(cfg.server_version), label(cfg.server_version), label(cfg.server_version),
                      label(cfg.server_product)));
    const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - process_start).count();
    t.family("rabbitmq_erlang_uptime_seconds", "gauge", "Node uptime");
    t.sample("rabbitmq_erlang_uptime_seconds", "", uptime);

    t.one("rabbitmq_process_resident_memory_bytes", "gauge", "Memory used in bytes", resident_bytes());
    t.one("rabbitmq_resident_memory_limit_bytes", "gauge", "Memory high watermark in bytes", b.memory_limit());
    t.one("rabbitmq_process_open_fds", "gauge", "Open file descriptors", open_fds());
    t.one("rabbitmq_process_max_fds", "gauge", "Open file descriptors limit", max_fds());
    t.one("rabbitmq_process_open_tcp_sockets", "gauge", "Open TCP sockets", b.connection_count());
    t.one("rabbitmq_process_max_tcp_sockets", "gauge", "Open TCP sockets limit", max_fds());
    std::uint64_t disk_free = 0;
    if (broker::Durability* d = b.durability())
        if (auto free = d->free_bytes()) disk_free = *free;
    t.one("rabbitmq_disk_space_available_bytes", "gauge", "Disk space available in bytes", disk_free);
    t.one("rabbitmq_disk_space_available_limit_bytes", "gauge", "Free disk space low watermark in bytes",
          cfg.disk_free_limit);
    t.one("rabbitmq_alarms_memory_used_watermark", "gauge", "is 1 if VM memory watermark alarm is in effect",
          b.memory_alarm() ? 1 : 0);
    t.one("rabbitmq_alarms_free_disk_space_watermark", "gauge", "is 1 if free disk space watermark alarm is in effect",
          b.disk_alarm() ? 1 : 0);
    t.one("rabbitmq_alarms_file_descriptor_limit", "gauge", "is 1 if file descriptor limit alarm is in effect", 0);

    // Live counters: the sum of the vhosts' (each bumped on the message path).
    broker::StatsSnapshot live;
    for (const std::string& v : view.vhost_names()) {
        auto s = view.vhost_stats(v);
        for (std::size_t i = 0; i < broker::stat_count; ++i) live.value[i] += s.value[i];
    }
    const broker::StatsSnapshot sampled = view.totals();  // gauges: queue lengths
    const broker::ObjectTotals counts = view.object_totals();
    const broker::ChurnCounters& churn = b.churn();

    t.one("rabbitmq_connections", "gauge", "Connections currently open", counts.connections);
    t.one("rabbitmq_connections_opened_total", "counter", "Total number of connections opened",
          churn.connections_opened);
    t.one("rabbitmq_connections_closed_total", "counter", "Total number of connections closed or terminated",
          churn.connections_closed);
    t.one("rabbitmq_channels", "gauge", "Channels currently open", counts.channels);
    t.one("rabbitmq_channels_opened_total", "counter", "Total number of channels opened", churn.channels_opened);
    t.one("rabbitmq_channels_closed_total", "counter", "Total number of channels closed", churn.channels_closed);
    t.one("rabbitmq_queues", "gauge", "Queues available", counts.queues);
    t.one("rabbitmq_queues_declared_total", "counter", "Total number of queues declared", churn.queues_declared);
    t.one("rabbitmq_queues_created_total", "counter", "Total number of queues created", churn.queues_created);
    t.one("rabbitmq_queues_deleted_total", "counter", "Total number of queues deleted", churn.queues_deleted);
    t.one("rabbitmq_consumers", "gauge", "Consumers currently connected", counts.consumers);
    // rabbit_global_counters (what the current dashboard reads).
    const std::uint64_t delivered =
        live[Stat::deliver] + live[Stat::deliver_no_ack] + live[Stat::get] + live[Stat::get_no_ack];
    std::uint64_t publishers = 0;
    for (std::uint64_t id : view.connection_ids())
        for (const auto& ch : view.channels(id))
            if (ch.stats[Stat::publish] > 0) ++publishers;
    struct Global {
        const char* name;
        const char* labels;
        std::uint64_t value;
        const char* help;
        const char* type;
    };
    const Global globals[] = {
        {"rabbitmq_global_messages_received_total", proto, live[Stat::publish],
         "Total number of messages received from publishers", "counter"},
        {"rabbitmq_global_messages_received_confirm_total", proto, live[Stat::confirm],
         "Total number of messages received from publishers expecting confirmations", "counter"},
        {"rabbitmq_global_messages_routed_total", proto,
         live[Stat::publish] - live[Stat::return_unroutable] - live[Stat::drop_unroutable],
         "Total number of messages routed to queues or streams", "counter"},
        {"rabbitmq_global_messages_unroutable_dropped_total", proto, live[Stat::drop_unroutable],
         "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", "counter"},
        {"rabbitmq_global_messages_unroutable_returned_total", proto, live[Stat::return_unroutable],
         "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
         "counter"},
        {"rabbitmq_global_messages_confirmed_total", proto, live[Stat::confirm],
         "Total number of messages confirmed to publishers", "counter"},
        {"rabbitmq_global_publishers", proto, publishers, "Current number of publishers", "gauge"},
        {"rabbitmq_global_consumers", proto, counts.consumers, "Current number of consumers", "gauge"},
        {"rabbitmq_global_messages_delivered_total", proto_queue, delivered,
         "Total number of messages delivered to consumers", "counter"},
        {"rabbitmq_global_messages_delivered_consume_manual_ack_total", proto_queue, live[Stat::deliver],
         "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", "counter"},
        {"rabbitmq_global_messages_delivered_consume_auto_ack_total", proto_queue, live[Stat::deliver_no_ack],
         "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
         "counter"},
        {"rabbitmq_global_messages_delivered_get_manual_ack_total", proto_queue, live[Stat::get],
         "Total number of messages delivered to consumers using basic.get with manual acknowledgment", "counter"},
        {"rabbitmq_global_messages_delivered_get_auto_ack_total", proto_queue, live[Stat::get_no_ack],
         "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", "counter"},
        {"rabbitmq_global_messages_get_empty_total", proto_queue, live[Stat::get_empty],
         "Total number of times basic.get operations fetched no message", "counter"},
        {"rabbitmq_global_messages_redelivered_total", proto_queue, live[Stat::redeliver],
         "Total number of messages redelivered to consumers", "counter"},
        {"rabbitmq_global_messages_acknowledged_total", proto_queue, live[Stat::ack],
         "Total number of messages acknowledged by consumers", "counter"},
    };
    for (const auto& g : globals) t.one(g.name, g.type, g.help, g.value, g.labels);

    // rabbit_msg_size_metrics: a histogram with cumulative buckets, as the format wants.
    const broker::MessageSizes& sizes = b.message_sizes();
    t.family("rabbitmq_message_size_bytes", "histogram", "Size of messages received from publishers");
    std::uint64_t cumulative = 0;
    const char* bounds[] = {"100.0", "1000.0", "10000.0", "100000.0", "1e+06", "1e+07", "5e+07", "1e+08", "+Inf"};
    for (std::size_t i = 0; i < sizes.counts.size(); ++i) {
        cumulative += sizes.counts[i];
        t.sample("rabbitmq_message_size_bytes_bucket", fmt::format("{},le=\"{}\"", proto, bounds[i]), cumulative);
    }
    t.sample("rabbitmq_message_size_bytes_count", proto, cumulative);
    t.sample("rabbitmq_message_size_bytes_sum", proto, sizes.sum);
    if (!per_object) aggregated_object_metrics(t, live, sampled, counts);
}

// The queue, channel and connection families summed over their objects (/metrics).
void aggregated_object_metrics(Text& t, const broker::StatsSnapshot& live, const broker::StatsSnapshot& sampled,
                               const broker::ObjectTotals& counts) {
    t.one("rabbitmq_channel_consumers", "gauge", "Consumers on a channel", counts.consumers);
    t.one("rabbitmq_connection_incoming_bytes_total", "counter", "Total number of bytes received on a connection",
          live[Stat::recv_oct]);
    t.one("rabbitmq_connection_outgoing_bytes_total", "counter", "Total number of bytes sent on a connection",
          live[Stat::send_oct]);
    for (const auto& c : channel_counters) t.one(c.name, "counter", c.help, live[c.stat]);

    t.one("rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers",
          sampled[Stat::messages_ready]);
    t.one("rabbitmq_queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged",
          sampled[Stat::messages_unacknowledged]);
    t.one("rabbitmq_queue_messages", "gauge", "Sum of ready and unacknowledged messages - total queue depth",
          sampled[Stat::messages]);
    t.one("rabbitmq_queue_consumers", "gauge", "Consumers on a queue", counts.consumers);
}

// One family per metric, with a sample per object: rabbitmq_prometheus's per-object endpoint.
void per_object_metrics(Text& t, const broker::BrokerView& view) {
    std::vector<broker::QueueSnapshot> queues;
    for (const std::string& v : view.vhost_names())
        for (const std::string& q : view.queue_names(v))
            if (auto snap = view.queue(v, q)) queues.push_back(std::move(*snap));
    auto queue_family = [&](const char* name, const char* type, const char* help, auto value) {
        t.family(name, type, help);
        for (const auto& q : queues)
            t.sample(name, fmt::format("vhost=\"{}\",queue=\"{}\"", label(q.vhost), label(q.name)),
                     static_cast<std::uint64_t>(value(q)));
    };
    queue_family("rabbitmq_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers",
                 [](const auto& q) { return q.messages_ready; });
    queue_family("rabbitmq_queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged",
                 [](const auto& q) { return q.messages_unacknowledged; });
    queue_family("rabbitmq_queue_messages", "gauge", "Sum of ready and unacknowledged messages",
                 [](const auto& q) { return q.messages_ready + q.messages_unacknowledged; });
    queue_family("rabbitmq_queue_consumers", "gauge", "Consumers on a queue",
                 [](const auto& q) { return q.consumers; });
    queue_family("rabbitmq_queue_process_memory_bytes", "gauge", "Memory in bytes used by the queue",
                 [](const auto& q) { return q.memory; });
    queue_family("rabbitmq_queue_messages_published_total", "counter", "Total number of messages published to queues",
                 [](const auto& q) { return q.stats[Stat::publish]; });

    std::vector<broker::ConnectionSnapshot> connections;
    std::vector<broker::ChannelSnapshot> channels;
    for (std::uint64_t id : view.connection_ids()) {
        if (auto c = view.connection(id)) connections.push_back(std::move(*c));
        for (auto& ch : view.channels(id)) channels.push_back(std::move(ch));
    }
    auto connection_family = [&](const char* name, const char* help, Stat s) {
        t.family(name, "counter", help);
        for (const auto& c : connections) t.sample(name, fmt::format("channel=\"{}\"", label(c.name)), c.stats[s]);
    };
    connection_family("rabbitmq_connection_incoming_bytes_total", "Total number of bytes received on a connection",
                      Stat::recv_oct);
    connection_family("rabbitmq_connection_outgoing_bytes_total", "Total number of bytes sent on a connection",
                      Stat::send_oct);
    for (const auto& c : channel_counters) {
        t.family(c.name, "counter", c.help);
        for (const auto& ch : channels)
            t.sample(c.name, fmt::format("channel=\"{}\"", label(ch.name)), ch.stats[c.stat]);
    }
    t.family("rabbitmq_channel_consumers", "gauge", "Consumers on a channel");
    for (const auto& ch : channels)
        t.sample("rabbitmq_channel_consumers", fmt::format("channel=\"{}\"", label(ch.name)),
                 static_cast<std::uint64_t>(ch.consumers));
}

// Warren's own families (RabbitMQ has none for delayed messages): the release lateness, and what
// waits out a retry backoff in queues and what delayed exchanges hold, summed at /metrics, per
// object at /metrics/per-object. Each object's count is kept as it changes, so a scrape reads
// one number per object.
void delayed_metrics(Text& t, const broker::Broker& broker, const broker::BrokerView& view, bool per_object) {
    constexpr const char* queue_name = "warren_queue_messages_delayed";
    constexpr const char* queue_help = "Messages waiting out a retry backoff before they are ready again";
    constexpr const char* exchange_name = "warren_exchange_messages_delayed";
    constexpr const char* exchange_help = "Messages a delayed exchange holds until their x-delay ends";
    // The broker's own release lateness: what its timer adds, apart from the client's view.
    const broker::ReleaseLateness& late = broker.release_lateness();
    constexpr const char* late_name = "warren_delayed_release_lateness_seconds";
    t.family(late_name, "histogram",
             "How late held messages (delayed exchanges, retry backoffs) are released after their deadline");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < late.counts.size(); ++i) {
        cumulative += late.counts[i];
        const std::string le = i < late.bounds_us.size() ? fmt::format("{}", late.bounds_us[i] / 1e6) : "+Inf";
        t.sample("warren_delayed_release_lateness_seconds_bucket", fmt::format("le=\"{}\"", le), cumulative);
    }
    t.sample("warren_delayed_release_lateness_seconds_count", "", cumulative);
    t.sample("warren_delayed_release_lateness_seconds_sum", "", static_cast<double>(late.sum_us) / 1e6);
    t.family("warren_delayed_release_lateness_max_seconds", "gauge",
             "The latest release of a held message after its deadline since the broker started");
    t.sample("warren_delayed_release_lateness_max_seconds", "", static_cast<double>(late.max_us) / 1e6);
    if (!per_object) {
        const broker::DelayedTotals totals = view.delayed_totals();
        t.one(queue_name, "gauge", queue_help, totals.queues);
        t.one(exchange_name, "gauge", exchange_help, totals.exchanges);
        return;
    }
    t.family(queue_name, "gauge", queue_help);
    for (const std::string& v : view.vhost_names())
        for (const std::string& q : view.queue_names(v))
            if (auto snap = view.queue(v, q))
                t.sample(queue_name, fmt::format("vhost=\"{}\",queue=\"{}\"", label(v), label(q)),
                         snap->messages_delayed);
    t.family(exchange_name, "gauge", exchange_help);
    for (const std::string& v : view.vhost_names())
        for (const std::string& x : view.exchange_names(v))
            if (auto snap = view.exchange(v, x); snap && snap->messages_delayed)
                t.sample(exchange_name, fmt::format("vhost=\"{}\",exchange=\"{}\"", label(v), label(x)),
                         *snap->messages_delayed);
}

}  // namespace

std::optional<std::string> prometheus_text(const broker::Broker& broker, const broker::BrokerView& view,
                                           std::string_view path) {
    if (path != "/metrics" && path != "/metrics/per-object") return std::nullopt;
    const bool per_object = path == "/metrics/per-object";
    Text t;
    node_metrics(t, broker, view, per_object);
    if (per_object) per_object_metrics(t, view);
    delayed_metrics(t, broker, view, per_object);
    return t.take();
}

}  // namespace warren::mgmt
