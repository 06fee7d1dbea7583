// warren: the broker executable. Parses the command line and configuration, then runs the
// event loop on this thread until SIGINT or SIGTERM. SIGHUP re-reads the TLS certificates.
#include <asio.hpp>

#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstdio>
#include <iostream>

#include "broker/broker.hpp"
#include "broker/durability.hpp"
#include "broker/log.hpp"
#include "broker/net/event_loop.hpp"
#include "broker/net/http_server.hpp"
#include "broker/net/server.hpp"
#include "mgmt/api.hpp"

using namespace warren::broker;

int main(int argc, char** argv) {
    CommandLine cl = parse_command_line(argc, argv);
    if (cl.help) {
        std::cout << usage();
        return 0;
    }
    if (!cl.config) {
        std::cerr << "warren: " << cl.error << "\n" << usage();
        return 2;
    }
    Config& config = *cl.config;
    warren::log::Level level = warren::log::Level::Info;
    warren::log::parse_level(config.log_level, level);
    warren::log::set_level(level);

    // One file descriptor per connection: take the hard limit, not the (often 1024) soft one.
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }

#ifdef __GLIBC__
    // Large message bodies come from the heap, and freed heap memory is kept for the next ones
    // (up to 64 MiB of it): glibc's defaults give back the top of the heap once 2 MiB of it are
    // free, so a flow of 1 MiB messages grew and shrank the heap about every ten messages and
    // took some 40 page faults (zeroed pages) per message, about 15 % of the broker's CPU time.
    // The memory alarm counts messages and buffers, not RSS, so the kept memory does not raise it.
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif

    // The TLS files before anything else: a bad certificate is a start-up error naming its key.
    net::TlsContexts tls = net::load_tls_contexts(config.tls_listeners);
    if (!tls.error.empty()) {
        warren::log::error("{}", tls.error);
        return 1;
    }

    // The broker outlives the event loop: handlers still queued in the io_context when it is
    // destroyed hold connections, and a connection's destructor talks to the broker.
    SystemClock clock;
    Broker broker(config, clock);
    asio::io_context io(1);
    net::EventLoop loop(io, broker);
    // Storage first: the listeners open only once the durable state is back.
    if (std::string error = broker.start_storage([&io](std::function<void()> f) { asio::post(io, std::move(f)); });
        !error.empty()) {
        warren::log::error("{}", error);
        return 1;
    }
    if (!config.load_definitions.empty()) {
        if (auto error = broker.import_definitions_file(config.load_definitions)) {
            warren::log::error("load_definitions: {}", error->text);
            return 1;
        }
        warren::log::info("definitions loaded from {}", config.load_definitions);
    }
    std::unique_ptr<net::Server> server;
    try {
        server = std::make_unique<net::Server>(loop, config, std::move(tls.contexts));
    } catch (const std::exception& e) {
        warren::log::error("{}", e.what());
        return 1;
    }
    // The management API, on this same loop: its lists are built in pieces posted to the loop.
    std::vector<std::uint16_t> amqp_ports;
    for (const auto& ep : server->endpoints()) amqp_ports.push_back(ep.port());
    auto post_later = [&io](std::chrono::nanoseconds delay, std::function<void()> f) {
        if (delay.count() <= 0) return asio::post(io, std::move(f));
        auto timer = std::make_shared<asio::steady_timer>(io, delay);
        timer->async_wait([timer, f = std::move(f)](const asio::error_code& ec) {
            if (!ec) f();
        });
    };
    warren::mgmt::Api api(broker, post_later, amqp_ports);
    std::unique_ptr<net::HttpServer> http;
    if (config.management.port != 0) {
        try {
            http = std::make_unique<net::HttpServer>(
                loop, config.management, [&api](const auto& r, auto respond) { api.handle(r, std::move(respond)); });
            api.set_http_address(config.management.bind, http->endpoint().port());
        } catch (const std::exception& e) {
            // AMQP matters more than the API: a management port in use (another broker's, or a
            // second Warren started for a test) leaves Warren running without its API.
            warren::log::warning("{}; the management API is off", e.what());
        }
    }
    // The API over HTTPS: its certificate files are checked as the AMQPS listeners' are, and a
    // bad one stops the start (a taken port only turns the listener off, as for HTTP).
    std::unique_ptr<net::HttpServer> https;
    if (config.management_tls && config.management_tls->port != 0) {
        auto made = net::make_tls_context(config.management_tls->tls, "management_tls");
        for (const auto& w : made.warnings) warren::log::warning("{}", w);
        if (!made.context) {
            warren::log::error("{}", made.error);
            return 1;
        }
        try {
            https = std::make_unique<net::HttpServer>(
                loop, Listener{config.management_tls->bind, config.management_tls->port},
                [&api](const auto& r, auto respond) { api.handle(r, std::move(respond)); }, made.context);
        } catch (const std::exception& e) {
            warren::log::warning("{}; the management API over HTTPS is off", e.what());
        }
    }
    // Prometheus metrics on their own port, as rabbitmq_prometheus serves them.
    std::unique_ptr<net::HttpServer> metrics;
    if (config.prometheus.port != 0) {
        try {
            metrics = std::make_unique<net::HttpServer>(
                loop, config.prometheus,
                [&api](const auto& r, auto respond) { api.handle_metrics(r, std::move(respond)); }, nullptr,
                "Prometheus metrics");
        } catch (const std::exception& e) {
            warren::log::warning("{}; the Prometheus metrics are off", e.what());
        }
    }
    warren::log::info("Warren started; memory high watermark {} MiB", broker.memory_limit() / (1024 * 1024));

    // The memory alarm: sample memory use a few times a second.
    std::function<void()> sample_memory = [&] {
        broker.check_memory();
        broker.timers().schedule(clock.now() + std::chrono::milliseconds(200), sample_memory);
    };
    sample_memory();
    // What nobody waits for (acks, deliveries, confirms without fsync) still reaches the disk
    // within sync_interval_ms.
    std::function<void()> periodic_sync = [&] {
        if (Durability* d = broker.durability()) d->periodic_sync();
        broker.timers().schedule(clock.now() + std::chrono::milliseconds(config.sync_interval_ms), periodic_sync);
    };
    if (broker.durability()) periodic_sync();
    // The disk alarm: free space on the data directory's file system, once a second.
    std::function<void()> sample_disk = [&] {
        if (Durability* d = broker.durability())
            if (auto free = d->free_bytes()) broker.update_disk_free(*free);
        broker.timers().schedule(clock.now() + std::chrono::seconds(1), sample_disk);
    };
    if (broker.durability()) sample_disk();
    // Statistics: one sample of every counter per interval, for the API's rates.
    std::function<void()> sample_stats = [&] {
        broker.sample_stats();
        broker.timers().schedule(clock.now() + std::chrono::milliseconds(config.stats_interval_ms), sample_stats);
    };
    sample_stats();
    loop.schedule_turn_end();

    asio::signal_set hangup(io, SIGHUP);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const asio::error_code& ec, int signal) {
        if (ec) return;
        warren::log::info("received signal {}, shutting down", signal);
        hangup.cancel();
        server->shut_down("shutdown");
        if (http) http->shut_down();
        if (https) https->shut_down();
        if (metrics) metrics->shut_down();
        // Give connections a moment to send their close frames, then stop.
        auto stop = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(300));
        stop->async_wait([&io, stop](const asio::error_code&) { io.stop(); });
    });
    // SIGHUP: new certificates for new TLS connections; open connections keep theirs.
    std::function<void()> await_hangup = [&] {
        hangup.async_wait([&](const asio::error_code& ec, int) {
            if (ec) return;
            warren::log::info("received SIGHUP, reloading the TLS certificates");
            server->reload_tls();
            if (https) {
                auto made = net::make_tls_context(config.management_tls->tls, "management_tls");
                if (made.context)
                    https->set_tls_context(made.context);
                else
                    warren::log::error("{}; the management API keeps its current certificate", made.error);
            }
            await_hangup();
        });
    };
    await_hangup();
    ::signal(SIGPIPE, SIG_IGN);
    io.run();
    broker.tear_down_connections("shutdown");
    // Requeued deliveries and the last acks are written and synced before the process ends, and
    // a checkpoint makes the next start fast.
    broker.shut_down_storage();
    warren::log::info("Warren stopped");
    return 0;
}
