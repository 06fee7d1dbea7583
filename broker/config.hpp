// What an operator sets first: listeners, the default user, connection limits, message size,
// memory watermark. Read from a JSON file (--config) and the command line; every key is
// checked, and an unknown or ill-typed key is a start-up error that names it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warren::broker {

struct Listener {
    std::string bind = "127.0.0.1";
    std::uint16_t port = 5672;
};

// The TLS side of a listener, named as RabbitMQ's ssl_options are. The files are PEM; the net
// layer reads and checks them (broker/net/tls_context.hpp), at start-up and on SIGHUP.
struct TlsOptions {
    std::string certfile;    // the server's certificate, then any intermediates
    std::string keyfile;     // its private key (not encrypted)
    std::string cacertfile;  // the CAs client certificates must chain to (needed by verify_peer)
    // Ask for a client certificate and refuse one that does not verify; with
    // fail_if_no_peer_cert, refuse a client without one too.
    bool verify_peer = false;
    bool fail_if_no_peer_cert = false;
    // Protocol versions accepted: TLS 1.2 and 1.3 ("tlsv1.2", "tlsv1.3" in the file).
    bool tls12 = true;
    bool tls13 = true;
};

struct TlsListener {
    std::string bind = "127.0.0.1";
    std::uint16_t port = 5671;
    TlsOptions tls;
};

struct Config {
    std::vector<Listener> listeners{Listener{}};
    // The management HTTP API (RabbitMQ's default port); port 0 disables it.
    Listener management{"127.0.0.1", 15672};
    // Prometheus metrics (rabbitmq_prometheus's port); port 0 disables them.
    Listener prometheus{"127.0.0.1", 15692};
    // The management API over HTTPS (RabbitMQ's management.ssl.*, port 15671), none by default.
    // Its certificate files are read as the AMQPS listeners' are.
    std::optional<TlsListener> management_tls;
    // How often statistics are sampled for the API's rates (RabbitMQ's collect_statistics_interval).
    std::uint64_t stats_interval_ms = 5000;
    // AMQPS listeners (none by default). `listeners` may be empty when there is one.
    std::vector<TlsListener> tls_listeners;
    // A TLS client that has not finished its handshake within this time is dropped
    // (RabbitMQ's ssl_handshake_timeout).
    std::uint64_t tls_handshake_timeout_ms = 5000;
    std::string default_user = "guest";
    std::string default_pass = "guest";
    std::string default_vhost = "/";
    // Whether the default user may connect only from loopback (RabbitMQ's loopback_users).
    bool default_user_loopback_only = true;

    std::uint32_t frame_max = 131072;  // RabbitMQ's defaults
    std::uint16_t channel_max = 2047;
    std::uint16_t heartbeat = 60;  // seconds
    std::uint64_t max_message_size = 128ull * 1024 * 1024;

    // Publishers are blocked when the broker's memory use passes this: a fraction of RAM,
    // or an absolute number of bytes when memory_high_watermark_bytes is set.
    double memory_high_watermark = 0.4;
    std::optional<std::uint64_t> memory_high_watermark_bytes;

    // Deliveries to a connection pause while its unsent output exceeds this, and it is not
    // read while its unsent answers to its own input do.
    std::uint64_t connection_output_high_water = 4ull * 1024 * 1024;
    // A connection with more unsent direct reply-to deliveries (sent by other connections) than
    // this is closed: the client is not reading (as redis's client-output-buffer-limit).
    std::uint64_t connection_output_limit = 64ull * 1024 * 1024;

    // A delivery not acknowledged within this time cancels its consumer (0 disables).
    std::uint64_t consumer_timeout_ms = 30ull * 60 * 1000;

    std::string log_level = "info";

    // A RabbitMQ definitions file whose users, vhosts, permissions, topic permissions and
    // limits are applied at every start, after the data directory is read (as RabbitMQ's
    // load_definitions); empty: none.
    std::string load_definitions;

    // Storage. data_dir holds the definitions and persistent messages; empty keeps everything
    // in memory (the library default, for tests). The warren executable's default is
    // default_data_dir, relative to its working directory (parse_command_line sets it).
    std::string data_dir;
    // A confirm (and tx.commit-ok) for a persistent message in a durable queue is sent once its
    // bytes are fdatasync'ed; false: once they are written to the OS (RabbitMQ's classic
    // queues), with a sync at least every sync_interval_ms.
    bool fsync_confirms = true;
    std::uint64_t sync_interval_ms = 200;
    // Input batching (broker/turn_pacer.hpp): under more than 100,000 frames a second, a loop
    // turn that read little is followed by a pause of at most this long; 0 disables it.
    std::uint64_t input_batching_us = 100;
    // Below this many free bytes on the data directory's file system, publishers are blocked.
    std::uint64_t disk_free_limit = 50'000'000;
    // Message segment files roll over past this size.
    std::uint64_t segment_size = 64ull * 1024 * 1024;
    // The head segment is zero-filled this far ahead of its writes, off the loop, so that a
    // confirm's fdatasync overwrites allocated blocks and flushes data only. 0: plain appends.
    std::uint64_t segment_preallocate = 0;  // off: measured no steady gain on this VM (README)
    // Settled segment files each vhost's store keeps to write its next segments into (their
    // blocks allocated already: a sync flushes data only). 0: settled segments are deleted.
    std::uint32_t segment_reuse = 1;

    // The `product` and `version` connection.start reports. Clients choose behaviour from them:
    // kombu (Celery) uses the channel-wide basic.qos its fair dispatch and ETA tasks need only
    // for product "RabbitMQ" at version 3.3 or later. 3.13.7, the last 3.x release, is the
    // RabbitMQ whose behaviour Warren follows where 3.x versions differ (DECISIONS; README).
    // Warren's own name and version are in `platform` and `information`.
    std::string server_product = "RabbitMQ";
    std::string server_version = "3.13.7";
};

inline constexpr const char* default_data_dir = "warren-data";

struct ConfigResult {
    std::optional<Config> config;
    std::string error;  // set when config is empty
};

// Applies the keys of a JSON document to `base`.
ConfigResult parse_config_json(const std::string& text, Config base = {});
ConfigResult load_config_file(const std::string& path, Config base = {});

// Parses argv: --config FILE, --bind ADDR, --port N, --data-dir DIR, --log-level LEVEL, --help.
// Command-line values override the file's.
struct CommandLine {
    std::optional<Config> config;
    std::string error;
    bool help = false;
};
CommandLine parse_command_line(int argc, char** argv);
std::string usage();

}  // namespace warren::broker
