// Configuration parsing: JSON keys applied over the defaults, every unknown or ill-typed key
// refused with an error that names it, and the command line over the file.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "broker/config.hpp"

using namespace warren::broker;

TEST_CASE("the defaults are RabbitMQ's", "[config]") {
    Config c;
    CHECK(c.frame_max == 131072);
    CHECK(c.channel_max == 2047);
    CHECK(c.heartbeat == 60);
    CHECK(c.max_message_size == 128ull * 1024 * 1024);
    CHECK(c.default_user == "guest");
    CHECK(c.default_user_loopback_only);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].port == 5672);
}

TEST_CASE("a JSON configuration sets the keys it names and keeps the rest", "[config]") {
    auto r = parse_config_json(R"({
        "listeners": [{"bind": "0.0.0.0", "port": 5673}, {"port": 5674}],
        "default_user": "admin", "default_pass": "secret", "default_vhost": "prod",
        "default_user_loopback_only": false,
        "frame_max": 65536, "channel_max": 100, "heartbeat": 0,
        "max_message_size": 1000, "memory_high_watermark": 0.5,
        "memory_high_watermark_bytes": 123456789,
        "connection_output_high_water": 65536, "consumer_timeout_ms": 0, "log_level": "debug",
        "server_product": "Warren", "server_version": "0.1"
    })");
    REQUIRE(r.config);
    CHECK(r.error.empty());
    const Config& c = *r.config;
    REQUIRE(c.listeners.size() == 2);
    CHECK(c.listeners[0].bind == "0.0.0.0");
    CHECK(c.listeners[0].port == 5673);
    CHECK(c.listeners[1].bind == "127.0.0.1");
    CHECK(c.listeners[1].port == 5674);
    CHECK(c.default_user == "admin");
    CHECK(c.default_pass == "secret");
    CHECK(c.default_vhost == "prod");
    CHECK_FALSE(c.default_user_loopback_only);
    CHECK(c.frame_max == 65536);
    CHECK(c.channel_max == 100);
    CHECK(c.heartbeat == 0);
    CHECK(c.max_message_size == 1000);
    CHECK(c.memory_high_watermark == 0.5);
    CHECK(c.memory_high_watermark_bytes == 123456789u);
    CHECK(c.connection_output_high_water == 65536);
    CHECK(c.consumer_timeout_ms == 0);
    CHECK(c.log_level == "debug");
    CHECK(c.server_product == "Warren");
    CHECK(c.server_version == "0.1");
}

TEST_CASE("an empty JSON object keeps every default", "[config]") {
    auto r = parse_config_json("{}");
    REQUIRE(r.config);
    CHECK(r.config->frame_max == Config{}.frame_max);
    CHECK(r.config->default_user == "guest");
}

TEST_CASE("an unknown key is an error that names it", "[config]") {
    auto r = parse_config_json(R"({"heartbeat": 30, "hearbeat_timeout": 5})");
    CHECK_FALSE(r.config);
    CHECK(r.error == "unknown configuration key 'hearbeat_timeout'");
}

TEST_CASE("an unknown key inside a listener names its path", "[config]") {
    auto r = parse_config_json(R"({"listeners": [{"port": 1}, {"host": "x"}]})");
    CHECK_FALSE(r.config);
    CHECK(r.error == "unknown configuration key 'listeners[1].host'");
}

TEST_CASE("an ill-typed key is an error that names it", "[config]") {
    struct Case {
        const char* json;
        const char* key;
    };
    const Case cases[] = {
        {R"({"frame_max": "big"})", "'frame_max'"},
        {R"({"frame_max": 1024})", "'frame_max'"},
        {R"({"channel_max": -1})", "'channel_max'"},
        {R"({"channel_max": 70000})", "'channel_max'"},
        {R"({"heartbeat": 1.5})", "'heartbeat'"},
        {R"({"default_user": 7})", "'default_user'"},
        {R"({"default_user_loopback_only": "no"})", "'default_user_loopback_only'"},
        {R"({"memory_high_watermark": 2})", "'memory_high_watermark'"},
        {R"({"memory_high_watermark": "40%"})", "'memory_high_watermark'"},
        {R"({"max_message_size": 0})", "'max_message_size'"},
        {R"({"log_level": "verbose"})", "'log_level'"},
        {R"({"listeners": []})", "'listeners'"},
        {R"({"listeners": [{"port": 70000}]})", "'listeners[0].port'"},
        {R"({"listeners": ["127.0.0.1"]})", "'listeners[0]'"},
        {R"({"server_product": 3})", "'server_product'"},
        {R"({"server_version": 3.13})", "'server_version'"},
    };
    for (const auto& c : cases) {
        INFO(c.json);
        auto r = parse_config_json(c.json);
        CHECK_FALSE(r.config);
        CHECK_THAT(r.error, Catch::Contains(c.key));
        CHECK_THAT(r.error, Catch::StartsWith("configuration key"));
    }
}

// kombu (Celery) chooses the channel-wide basic.qos only for product "RabbitMQ" at 3.3 or
// later; 4.x would claim behaviours Warren does not follow (DECISIONS).
TEST_CASE("the server reports RabbitMQ 3.13.7 as its product and version by default", "[config]") {
    Config c;
    CHECK(c.server_product == "RabbitMQ");
    CHECK(c.server_version == "3.13.7");
}

TEST_CASE("server_version must be numbers separated by dots, server_product short printable text", "[config]") {
    for (const char* ok : {"3.13.7", "4", "3.3", "10.0.0.1"}) {
        INFO(ok);
        auto r = parse_config_json(std::string(R"({"server_version": ")") + ok + "\"}");
        REQUIRE(r.config);
        CHECK(r.config->server_version == ok);
    }
    for (const char* bad :
         {"", "3.13.7-warren", "v3", ".3", "3.", "3..1", "3 13", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15"}) {
        INFO(bad);
        auto r = parse_config_json(std::string(R"({"server_version": ")") + bad + "\"}");
        CHECK_FALSE(r.config);
        CHECK(r.error == R"(configuration key 'server_version' must be numbers separated by dots, such as "3.13.7")");
    }
    for (const char* bad : {"", "Rabbit\\u0001MQ", "Rabbit\\u00e9MQ",
                            "a-very-long-product-name-that-goes-on-and-on-past-sixty-four-characters"}) {
        INFO(bad);
        auto r = parse_config_json(std::string(R"({"server_product": ")") + bad + "\"}");
        CHECK_FALSE(r.config);
        CHECK(r.error == "configuration key 'server_product' must be 1 to 64 printable ASCII characters");
    }
    auto r = parse_config_json(R"j({"server_product": "RabbitMQ (Warren)"})j");
    REQUIRE(r.config);
    CHECK(r.config->server_product == "RabbitMQ (Warren)");
}

TEST_CASE("integer keys state their range", "[config]") {
    auto r = parse_config_json(R"({"frame_max": 100})");
    CHECK(r.error == "configuration key 'frame_max' must be an integer between 4096 and 4294967295");
    r = parse_config_json(R"({"heartbeat": true})");
    CHECK(r.error == "configuration key 'heartbeat' must be an integer between 0 and 65535");
    r = parse_config_json(R"({"input_batching_us": 20000})");
    CHECK(r.error == "configuration key 'input_batching_us' must be an integer between 0 and 10000");
}

TEST_CASE("input batching: 100 us by default, 0 switches it off", "[config]") {
    CHECK(Config{}.input_batching_us == 100);
    auto r = parse_config_json(R"({"input_batching_us": 0})");
    REQUIRE(r.config);
    CHECK(r.config->input_batching_us == 0);
}

TEST_CASE("text that is not JSON, or not an object, is refused", "[config]") {
    auto r = parse_config_json("{heartbeat: 5}");
    CHECK_FALSE(r.config);
    CHECK_THAT(r.error, Catch::StartsWith("the configuration is not valid JSON"));
    r = parse_config_json("[1, 2]");
    CHECK_FALSE(r.config);
    CHECK(r.error == "the configuration must be a JSON object");
}

TEST_CASE("a configuration file's errors name the file", "[config]") {
    auto missing = load_config_file("/nonexistent/warren.json");
    CHECK_FALSE(missing.config);
    CHECK(missing.error == "cannot read configuration file '/nonexistent/warren.json'");

    std::string path = "/tmp/warren-config-test-" + std::to_string(reinterpret_cast<std::uintptr_t>(&missing)) + ".json";
    {
        std::ofstream out(path);
        out << R"({"port": 5673})";
    }
    auto bad = load_config_file(path);
    std::remove(path.c_str());
    CHECK_FALSE(bad.config);
    CHECK(bad.error == path + ": unknown configuration key 'port'");
}

namespace {
CommandLine parse(std::vector<std::string> args) {
    std::vector<char*> argv;
    static std::string program = "warren";
    argv.push_back(program.data());
    for (auto& a : args) argv.push_back(a.data());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}
}  // namespace

TEST_CASE("the command line sets bind, port and log level over the defaults", "[config]") {
    auto cl = parse({"--bind", "0.0.0.0", "--port", "5999", "--log-level", "warning"});
    REQUIRE(cl.config);
    CHECK(cl.error.empty());
    CHECK(cl.config->listeners.front().bind == "0.0.0.0");
    CHECK(cl.config->listeners.front().port == 5999);
    CHECK(cl.config->log_level == "warning");
}

TEST_CASE("command-line errors name the option", "[config]") {
    CHECK(parse({"--port", "http"}).error == "--port must be a number from 0 to 65535, not 'http'");
    CHECK(parse({"--port", "65536"}).error == "--port must be a number from 0 to 65535, not '65536'");
    CHECK(parse({"--frobnicate"}).error == "unknown option '--frobnicate'");
    CHECK(parse({"--port"}).error == "option --port needs a value");
    CHECK_THAT(parse({"--log-level", "loud"}).error, Catch::StartsWith("--log-level must be one of"));
    CHECK_FALSE(parse({"--port", "x"}).config);
}

TEST_CASE("the --help option asks for the usage", "[config]") {
    auto cl = parse({"--help"});
    CHECK(cl.help);
    CHECK_THAT(usage(), Catch::Contains("--config FILE"));
}

TEST_CASE("the management listener: RabbitMQ's port by default, the key and the option change it", "[config]") {
    Config c;
    CHECK(c.management.bind == "127.0.0.1");
    CHECK(c.management.port == 15672);
    CHECK(c.stats_interval_ms == 5000);
    auto r = parse_config_json(R"({"management": {"bind": "0.0.0.0", "port": 0}, "stats_interval_ms": 1000})");
    REQUIRE(r.config);
    CHECK(r.config->management.bind == "0.0.0.0");
    CHECK(r.config->management.port == 0);  // off
    CHECK(r.config->stats_interval_ms == 1000);
    CHECK(parse_config_json(R"({"management": {"port": 15672, "tls": true}})").error ==
          "unknown configuration key 'management.tls'");
    auto cl = parse({"--management-port", "15999"});
    REQUIRE(cl.config);
    CHECK(cl.config->management.port == 15999);
    CHECK(parse({"--management-port", "x"}).error == "--management-port must be a number from 0 to 65535, not 'x'");
}

TEST_CASE("the Prometheus listener: rabbitmq_prometheus's port by default, the key and the option change it",
          "[config]") {
    CHECK(Config{}.prometheus.bind == "127.0.0.1");
    CHECK(Config{}.prometheus.port == 15692);
    auto r = parse_config_json(R"({"prometheus": {"bind": "0.0.0.0", "port": 0}})");
    REQUIRE(r.config);
    CHECK(r.config->prometheus.bind == "0.0.0.0");
    CHECK(r.config->prometheus.port == 0);  // off
    auto cl = parse({"--prometheus-port", "16000"});
    REQUIRE(cl.config);
    CHECK(cl.config->prometheus.port == 16000);
    CHECK(parse({"--prometheus-port", "-1"}).error == "--prometheus-port must be a number from 0 to 65535, not '-1'");
}

TEST_CASE("the management API over HTTPS: off by default, RabbitMQ's port 15671, the TLS keys of a listener",
          "[config][tls]") {
    CHECK_FALSE(Config{}.management_tls);
    auto r = parse_config_json(R"({"management_tls": {"certfile": "/c.pem", "keyfile": "/k.pem"}})");
    REQUIRE(r.config);
    REQUIRE(r.config->management_tls);
    CHECK(r.config->management_tls->port == 15671);
    CHECK(r.config->management_tls->bind == "127.0.0.1");
    CHECK(r.config->management_tls->tls.certfile == "/c.pem");
    auto p = parse_config_json(
        R"({"management_tls": {"port": 16000, "certfile": "/c", "keyfile": "/k", "versions": ["tlsv1.3"]}})");
    REQUIRE(p.config);
    CHECK(p.config->management_tls->port == 16000);
    CHECK_FALSE(p.config->management_tls->tls.tls12);
    CHECK(parse_config_json(R"({"management_tls": {"certfile": "/c"}})").error ==
          "configuration key 'management_tls.keyfile' is required");
}

// ---- TLS listeners (the files themselves are checked by the net layer: tests/interop test_tls)

TEST_CASE("a TLS listener takes RabbitMQ's ssl_options names, port 5671 by default", "[config][tls]") {
    auto r = parse_config_json(R"({"tls_listeners": [
        {"certfile": "/c.pem", "keyfile": "/k.pem"},
        {"bind": "0.0.0.0", "port": 5999, "certfile": "/c.pem", "keyfile": "/k.pem", "cacertfile": "/ca.pem",
         "verify_peer": true, "fail_if_no_peer_cert": true, "versions": ["tlsv1.3"]}],
        "tls_handshake_timeout_ms": 2000})");
    REQUIRE(r.config);
    const Config& c = *r.config;
    REQUIRE(c.tls_listeners.size() == 2);
    CHECK(c.listeners.size() == 1);  // the plain listener stays
    CHECK(c.tls_listeners[0].port == 5671);
    CHECK(c.tls_listeners[0].bind == "127.0.0.1");
    CHECK_FALSE(c.tls_listeners[0].tls.verify_peer);
    CHECK(c.tls_listeners[0].tls.tls12);
    CHECK(c.tls_listeners[0].tls.tls13);
    const TlsListener& l = c.tls_listeners[1];
    CHECK(l.bind == "0.0.0.0");
    CHECK(l.port == 5999);
    CHECK(l.tls.certfile == "/c.pem");
    CHECK(l.tls.keyfile == "/k.pem");
    CHECK(l.tls.cacertfile == "/ca.pem");
    CHECK(l.tls.verify_peer);
    CHECK(l.tls.fail_if_no_peer_cert);
    CHECK_FALSE(l.tls.tls12);
    CHECK(l.tls.tls13);
    CHECK(c.tls_handshake_timeout_ms == 2000);
    CHECK(Config{}.tls_listeners.empty());
    CHECK(Config{}.tls_handshake_timeout_ms == 5000);
}

TEST_CASE("a TLS listener's missing or ill-typed keys are errors that name them", "[config][tls]") {
    struct Case {
        const char* json;
        const char* error;
    };
    const Case cases[] = {
        {R"({"tls_listeners": [{"keyfile": "/k"}]})", "configuration key 'tls_listeners[0].certfile' is required"},
        {R"({"tls_listeners": [{"certfile": "/c"}]})", "configuration key 'tls_listeners[0].keyfile' is required"},
        {R"({"tls_listeners": [{"certfile": "", "keyfile": "/k"}]})",
         "configuration key 'tls_listeners[0].certfile' must be a file name"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "verify_peer": true}]})",
         "configuration key 'tls_listeners[0].cacertfile' is required with verify_peer"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "fail_if_no_peer_cert": true}]})",
         "configuration key 'tls_listeners[0].fail_if_no_peer_cert' needs verify_peer"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "verify_peer": "yes"}]})",
         "configuration key 'tls_listeners[0].verify_peer' must be true or false"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "versions": ["tlsv1.1"]}]})",
         "configuration key 'tls_listeners[0].versions' must be a non-empty array of \"tlsv1.2\", \"tlsv1.3\""},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "versions": []}]})",
         "configuration key 'tls_listeners[0].versions' must be"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "certfiel": "/x"}]})",
         "unknown configuration key 'tls_listeners[0].certfiel'"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k", "port": 65536}]})",
         "configuration key 'tls_listeners[0].port' must be an integer between 0 and 65535"},
        {R"({"tls_listeners": {"certfile": "/c"}})", "configuration key 'tls_listeners' must be an array"},
        {R"({"tls_listeners": [{"certfile": "/c", "keyfile": "/k"}], "tls_handshake_timeout_ms": 0})",
         "configuration key 'tls_handshake_timeout_ms' must be an integer between 100 and 600000"},
    };
    for (const auto& c : cases) {
        INFO(c.json);
        auto r = parse_config_json(c.json);
        CHECK_FALSE(r.config);
        CHECK_THAT(r.error, Catch::StartsWith(c.error));
    }
}

TEST_CASE("plain listeners may be switched off only when there is a TLS one", "[config][tls]") {
    auto tls_only = parse_config_json(R"({"listeners": [], "tls_listeners": [{"certfile": "/c", "keyfile": "/k"}]})");
    REQUIRE(tls_only.config);
    CHECK(tls_only.config->listeners.empty());
    auto none = parse_config_json(R"({"listeners": [], "tls_listeners": []})");
    CHECK_FALSE(none.config);
    CHECK(none.error == "configuration key 'listeners' may be empty only when 'tls_listeners' names a listener");
}

TEST_CASE("the --port option on a configuration without plain listeners makes one", "[config][tls]") {
    std::string path = "/tmp/warren-config-test-tls-" + std::to_string(reinterpret_cast<std::uintptr_t>(&path)) + ".json";
    {
        std::ofstream out(path);
        out << R"({"listeners": [], "tls_listeners": [{"certfile": "/c", "keyfile": "/k"}]})";
    }
    auto with_port = parse({"--config", path, "--port", "5999"});
    auto without = parse({"--config", path});
    std::remove(path.c_str());
    REQUIRE(with_port.config);
    REQUIRE(with_port.config->listeners.size() == 1);
    CHECK(with_port.config->listeners[0].port == 5999);
    REQUIRE(without.config);
    CHECK(without.config->listeners.empty());
}
