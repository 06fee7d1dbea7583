// warren-bench: the load generator's command line. Runs named scenarios (or a custom one)
// against any AMQP 0-9-1 broker and prints one line per scenario, or JSON lines with --json.
#include <fmt/format.h>
#include <netdb.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/connection.hpp"
#include "bench/load_generator.hpp"
#include "bench/scenario.hpp"

namespace {

using warren::bench::Result;
using warren::bench::Scenario;

constexpr const char* usage = R"(usage: warren-bench [options]
  --host H            broker address (127.0.0.1)
  --port N            broker port (5672)
  --scenario A[,B]    scenarios to run, or "all" (all but durable-fill; default: default); --list shows them
  --duration S        seconds measured (10)
  --warmup S          seconds run before measuring (2)
  --json              print one JSON object per scenario on stdout (the text lines go to stderr)
  --mode M            pipelined (batch many messages per send, the default) or client (a send per
                      publish and per ack, reads of 8 KiB, as the common client libraries do)
  --tls               connect with TLS (amqps; the broker's certificate is not verified)
  --broker-pid PID    read the broker's VmRSS (before and after each run) and CPU time (over the
                      measured window) from /proc/PID/
scenario parameters (override the preset):
  --producers N  --consumers N (per queue)  --queues N  --fanout  --body BYTES
  --auto-ack  --prefetch N  --multi-ack N  --confirm WINDOW  --rate MSG_PER_S (per producer)
  --max-inflight N  --messages N  --idle-connections N  --settle S
  --durable           declare the queues durable
  --persistent        publish with delivery_mode 2
  --queue-type T      x-queue-type T (classic, quorum, stream); quorum queues and streams are durable,
                      and each consumer of a stream reads every message
  --queue-arg K=V     another queue argument with a string value (x-queue-mode=lazy); repeatable
  --consumer-arg K=V  a basic.consume argument with a string value (x-stream-offset=first); repeatable
  --keep-queues       leave the queues and their messages on the broker (JSON "queues" names them)
  --queue NAME        use the queue NAME (declared with the scenario's arguments) instead of a new one;
                      with --producers 0 and --messages N, each consumer reads N from it, timed
  --timeout S         seconds allowed to publish and confirm --messages (600)
  --max-delay-ms N    publish to a delayed-message exchange with x-delay 0..N ms (lateness, peak RSS)
  --threads N         generator threads, each with its own queues (1; at most one per queue)
)";

void on_signal(int) {
    warren::bench::interrupted = true;  // lock-free, so safe in a signal handler
}

std::string group_digits(double value) {
    auto s = fmt::format("{:.0f}", value);
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i != 0 && (s.size() - i) % 3 == 0 && s[i - 1] != '-') out += ',';
        out += s[i];
    }
    return out;
}

std::string format_ns(std::uint64_t ns) {
    if (ns < 1'000'000) return fmt::format("{:.0f} us", static_cast<double>(ns) / 1e3);
    return fmt::format("{:.2f} ms", static_cast<double>(ns) / 1e6);
}

std::string text_line(const Result& r) {
    std::string line = fmt::format("{:<18} {:<9}", r.scenario.name, warren::bench::to_string(r.scenario.mode));
    if (!r.error.empty()) line += fmt::format(" ERROR: {}  ", r.error);
    if (r.scenario.max_delay_ms > 0) {
        auto mib = [](std::optional<long> kib) {
            return kib ? fmt::format("{:.1f} MiB", static_cast<double>(*kib) / 1024) : std::string("n/a");
        };
        line += fmt::format(" published {} in {:.1f} s ({} msg/s), delivered {}",
                            group_digits(static_cast<double>(r.published)), r.seconds, group_digits(r.publish_rate),
                            group_digits(static_cast<double>(r.consumed)));
        line += fmt::format("  lateness p50 {} p99 {} p99.9 {} max {}", format_ns(r.latency_p50),
                            format_ns(r.latency_p99), format_ns(r.latency_p999), format_ns(r.latency_max));
        if (r.early) line += fmt::format("  EARLY {}", r.early);
        line +=
            fmt::format("  held max {}  broker rss peak {} (before {})",
                        group_digits(static_cast<double>(r.backlog_max)), mib(r.rss_peak_kib), mib(r.rss_before_kib));
        if (r.broker_cpu_seconds && r.seconds > 0)
            line += fmt::format("  broker cpu {:.0f}%", *r.broker_cpu_seconds / r.seconds * 100);
        return line;
    }
    if (r.scenario.measures_memory) {
        auto mib = [](std::optional<long> kib) {
            return kib ? fmt::format("{:.1f} MiB", static_cast<double>(*kib) / 1024) : std::string("n/a");
        };
        line +=
            fmt::format(" rss {} (before {}), {} connections", mib(r.rss_kib), mib(r.rss_before_kib), r.connections);
        if (r.published > 0)
            line +=
                fmt::format(", published {} in {:.1f} s", group_digits(static_cast<double>(r.published)), r.seconds);
        return line;
    }
    line +=
        fmt::format(" pub {:>10} msg/s  cons {:>10} msg/s", group_digits(r.publish_rate), group_digits(r.consume_rate));
    if (r.latency_samples > 0) {
        line += fmt::format("  latency p50 {} p99 {} p99.9 {}", format_ns(r.latency_p50), format_ns(r.latency_p99),
                            format_ns(r.latency_p999));
    }
    line += fmt::format("  backlog {} (max {})", group_digits(static_cast<double>(r.backlog_end)),
                        group_digits(static_cast<double>(r.backlog_max)));
    if (r.nacked) line += fmt::format("  nacked {}", r.nacked);
    if (r.blocked) line += "  BLOCKED";
    if (r.flow_rate_mean > 0 && r.scenario.flows() > 1)
        line += fmt::format("  slowest queue {:.2f} of mean", r.flow_rate_min / r.flow_rate_mean);
    line += fmt::format("  gen cpu {:.0f}%", r.generator_cpu * 100);
    if (r.broker_cpu_seconds && r.seconds > 0) {
        line += fmt::format("  broker cpu {:.0f}%", *r.broker_cpu_seconds / r.seconds * 100);
        if (r.broker_cpu_us_per_msg) line += fmt::format(" {:.2f} us/msg", *r.broker_cpu_us_per_msg);
    }
    return line;
}

nlohmann::json to_json(const Result& r) {
    const Scenario& s = r.scenario;
    nlohmann::json queue_args = nlohmann::json::object();
    for (const auto& [key, value] : s.queue_args) queue_args[key] = value;
    nlohmann::json consumer_args = nlohmann::json::object();
    for (const auto& [key, value] : s.consumer_args) consumer_args[key] = value;
    nlohmann::json j;
    j["scenario"] = s.name;
    j["description"] = s.description;
    j["generator"] = "warren-bench";
    j["mode"] = warren::bench::to_string(s.mode);
    j["params"] = {{"queues", s.queues},
                   {"fanout", s.fanout},
                   {"producers", s.producers},
                   {"consumers", s.consumers},
                   {"idle_connections", s.idle_connections},
                   {"body", s.body},
                   {"no_ack", s.no_ack},
                   {"prefetch", s.prefetch},
                   {"multi_ack", s.multi_ack},
                   {"confirm", s.confirm},
                   {"rate", s.rate},
                   {"max_inflight", s.max_inflight},
                   {"messages", s.messages},
                   {"duration", s.duration},
                   {"warmup", s.warmup},
                   {"settle", s.settle},
                   {"durable", s.durable},
                   {"persistent", s.persistent},
                   {"queue_args", queue_args},
                   {"consumer_args", consumer_args},
                   {"keep_queues", s.keep_queues},
                   {"threads", r.threads}};
    j["ok"] = r.error.empty();
    j["error"] = r.error.empty() ? nlohmann::json() : nlohmann::json(r.error);
    j["seconds"] = r.seconds;
    j["published"] = r.published;
    j["consumed"] = r.consumed;
    j["confirmed"] = r.confirmed;
    j["nacked"] = r.nacked;
    j["publish_rate"] = r.publish_rate;
    j["consume_rate"] = r.consume_rate;
    j["backlog_end"] = r.backlog_end;
    j["backlog_max"] = r.backlog_max;
    if (r.latency_samples > 0) {
        j["latency_us"] = {{"samples", r.latency_samples},
                           {"p50", static_cast<double>(r.latency_p50) / 1e3},
                           {"p99", static_cast<double>(r.latency_p99) / 1e3},
                           {"p999", static_cast<double>(r.latency_p999) / 1e3},
                           {"max", static_cast<double>(r.latency_max) / 1e3},
                           {"mean", r.latency_mean / 1e3}};
    } else {
        j["latency_us"] = nullptr;
    }
    j["generator_cpu"] = r.generator_cpu;
    auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
    j["broker_cpu_seconds"] = optional(r.broker_cpu_seconds);
    j["broker_cpu_us_per_msg"] = optional(r.broker_cpu_us_per_msg);
    j["broker_cpu_per"] = r.broker_cpu_per;
    if (r.flow_rate_mean > 0) {
        j["flow_rate_min"] = r.flow_rate_min;
        j["flow_rate_mean"] = r.flow_rate_mean;
    }
    j["blocked"] = r.blocked;
    j["connections"] = r.connections;
    j["queues"] = r.queues;
    j["rss_before_kib"] = r.rss_before_kib ? nlohmann::json(*r.rss_before_kib) : nlohmann::json();
    j["rss_kib"] = r.rss_kib ? nlohmann::json(*r.rss_kib) : nlohmann::json();
    if (s.max_delay_ms > 0) {
        // latency_us holds the lateness: delivery - (send time + delay).
        j["max_delay_ms"] = s.max_delay_ms;
        j["rss_peak_kib"] = r.rss_peak_kib ? nlohmann::json(*r.rss_peak_kib) : nlohmann::json();
        j["early"] = r.early;
    }
    return j;
}

bool resolve(const std::string& host, int port, sockaddr_in& out) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) return false;
    std::memcpy(&out, found->ai_addr, sizeof out);
    out.sin_port = htons(static_cast<std::uint16_t>(port));
    ::freeaddrinfo(found);
    return true;
}

// 1,000 idle connections need as many descriptors; take what the hard limit allows.
void raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= s.size()) {
        std::size_t end = s.find(sep, start);
        if (end == std::string::npos) end = s.size();
        if (end > start) parts.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return parts;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = 5672;
    std::string scenario_names = "default";
    bool json = false;
    warren::bench::Target target;
    std::vector<std::function<void(Scenario&)>> overrides;

    // Options that take a value, and what they do with it.
    std::map<std::string, std::function<void(const std::string&)>> with_value = {
        {"--host", [&](const std::string& v) { host = v; }},
        {"--port", [&](const std::string& v) { port = std::stoi(v); }},
        {"--scenario", [&](const std::string& v) { scenario_names = v; }},
        {"--broker-pid", [&](const std::string& v) { target.broker_pid = std::stoi(v); }},
        {"--mode",
         [&](const std::string& v) {
             warren::bench::LoadMode mode{};
             if (!warren::bench::parse_load_mode(v, mode)) throw std::invalid_argument(v);
             overrides.push_back([mode](Scenario& s) { s.mode = mode; });
         }},
    };
    auto param = [&](const char* name, auto apply) {
        with_value[name] = [&overrides, apply](const std::string& v) {
            overrides.push_back([apply, v](Scenario& s) { apply(s, v); });
        };
    };
    param("--duration", [](Scenario& s, const std::string& v) { s.duration = std::stod(v); });
    param("--warmup", [](Scenario& s, const std::string& v) { s.warmup = std::stod(v); });
    param("--settle", [](Scenario& s, const std::string& v) { s.settle = std::stod(v); });
    param("--producers", [](Scenario& s, const std::string& v) { s.producers = std::stoi(v); });
    param("--consumers", [](Scenario& s, const std::string& v) { s.consumers = std::stoi(v); });
    param("--queues", [](Scenario& s, const std::string& v) { s.queues = std::stoi(v); });
    param("--body", [](Scenario& s, const std::string& v) { s.body = std::stoul(v); });
    param("--prefetch",
          [](Scenario& s, const std::string& v) { s.prefetch = static_cast<std::uint16_t>(std::stoul(v)); });
    param("--multi-ack",
          [](Scenario& s, const std::string& v) { s.multi_ack = static_cast<std::uint32_t>(std::stoul(v)); });
    param("--confirm",
          [](Scenario& s, const std::string& v) { s.confirm = static_cast<std::uint32_t>(std::stoul(v)); });
    param("--rate", [](Scenario& s, const std::string& v) { s.rate = std::stod(v); });
    param("--max-inflight",
          [](Scenario& s, const std::string& v) { s.max_inflight = static_cast<std::uint32_t>(std::stoul(v)); });
    param("--messages", [](Scenario& s, const std::string& v) { s.messages = std::stoull(v); });
    param("--idle-connections", [](Scenario& s, const std::string& v) { s.idle_connections = std::stoi(v); });
    param("--timeout", [](Scenario& s, const std::string& v) { s.count_timeout = std::stod(v); });
    param("--queue-type", [](Scenario& s, const std::string& v) {
        s.queue_args.emplace_back("x-queue-type", v);
        if (v == "quorum" || v == "stream") s.durable = true;  // RabbitMQ refuses transient ones
    });
    param("--queue-arg", [](Scenario& s, const std::string& v) {
        std::size_t eq = v.find('=');
        if (eq == 0 || eq == std::string::npos) throw std::invalid_argument(v);
        s.queue_args.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    });
    param("--consumer-arg", [](Scenario& s, const std::string& v) {
        std::size_t eq = v.find('=');
        if (eq == 0 || eq == std::string::npos) throw std::invalid_argument(v);
        s.consumer_args.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    });
    param("--queue", [](Scenario& s, const std::string& v) { s.queue_name = v; });
    param("--threads", [](Scenario& s, const std::string& v) { s.threads = std::max(1, std::stoi(v)); });
    param("--max-delay-ms",
          [](Scenario& s, const std::string& v) { s.max_delay_ms = static_cast<std::uint32_t>(std::stoul(v)); });

    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        try {
            if (arg == "--help" || arg == "-h") {
                std::fputs(usage, stdout);
                return 0;
            } else if (arg == "--list") {
                for (const Scenario& s : warren::bench::presets()) fmt::print("{:<18} {}\n", s.name, s.description);
                return 0;
            } else if (arg == "--json") {
                json = true;
            } else if (arg == "--tls") {
                std::string error;
                if (!warren::bench::enable_tls(error)) {
                    fmt::print(stderr, "warren-bench: {}\n", error);
                    return 2;
                }
            } else if (arg == "--fanout") {
                overrides.push_back([](Scenario& s) { s.fanout = true; });
            } else if (arg == "--auto-ack") {
                overrides.push_back([](Scenario& s) { s.no_ack = true; });
            } else if (arg == "--durable") {
                overrides.push_back([](Scenario& s) { s.durable = true; });
            } else if (arg == "--persistent") {
                overrides.push_back([](Scenario& s) { s.persistent = true; });
            } else if (arg == "--keep-queues") {
                overrides.push_back([](Scenario& s) { s.keep_queues = true; });
            } else if (auto it = with_value.find(arg); it != with_value.end() && i + 1 < argc) {
                it->second(argv[++i]);
            } else {
                fmt::print(stderr, "warren-bench: unknown or incomplete option {}\n{}", arg, usage);
                return 2;
            }
        } catch (const std::exception&) {
            fmt::print(stderr, "warren-bench: bad value for {}\n", arg);
            return 2;
        }
    }

    std::vector<Scenario> runs;
    for (const std::string& name : split(scenario_names, ',')) {
        if (name == "all") {
            // Not the ones that leave their queues behind (durable-fill): "all" cleans up after itself;
            // nor the delayed ones, which need a plugin on RabbitMQ; nor those that read a queue
            // another run filled (stream-backlog-read).
            for (const Scenario& s : warren::bench::presets())
                if (!s.keep_queues && s.max_delay_ms == 0 && !(s.producers == 0 && s.messages > 0)) runs.push_back(s);
        } else if (name == "custom") {
            runs.emplace_back();
        } else if (const Scenario* s = warren::bench::find_preset(name)) {
            runs.push_back(*s);
        } else {
            fmt::print(stderr, "warren-bench: no scenario named {} (see --list)\n", name);
            return 2;
        }
    }
    for (Scenario& s : runs) {
        for (auto& apply : overrides) apply(s);
    }

    sockaddr_in address{};
    if (!resolve(host, port, address)) {
        fmt::print(stderr, "warren-bench: cannot resolve {}\n", host);
        return 2;
    }
    target.address = address;
    raise_fd_limit();
    ::prctl(PR_SET_TIMERSLACK, 1UL);  // fixed-rate publishing wakes on time, not up to 50 us late
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    int status = 0;
    for (const Scenario& s : runs) {
        if (warren::bench::interrupted) break;
        Result r = warren::bench::run_scenario(s, target);
        if (!r.error.empty()) status = 1;
        std::FILE* text = json ? stderr : stdout;
        fmt::print(text, "{}\n", text_line(r));
        std::fflush(text);
        if (json) {
            fmt::print("{}\n", to_json(r).dump());
            std::fflush(stdout);
        }
    }
    return status;
}
