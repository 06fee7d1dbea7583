// See config.hpp.
#include "broker/config.hpp"

#include <fmt/format.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "broker/log.hpp"

namespace warren::broker {

namespace {

using json = nlohmann::json;

struct KeyError {
    std::string message;
};

std::uint64_t get_uint(const json& v, const std::string& key, std::uint64_t min, std::uint64_t max) {
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
        throw KeyError{fmt::format("configuration key '{}' must be an integer between {} and {}", key, min, max)};
    std::uint64_t n = v.get<std::uint64_t>();
    if (n < min || n > max)
        throw KeyError{fmt::format("configuration key '{}' must be an integer between {} and {}", key, min, max)};
    return n;
}

std::string get_string(const json& v, const std::string& key) {
    if (!v.is_string()) throw KeyError{fmt::format("configuration key '{}' must be a string", key)};
    return v.get<std::string>();
}

// A product name for connection.start: printable ASCII (a client may log or compare it).
std::string get_product(const json& v, const std::string& key) {
    std::string s = v.is_string() ? v.get<std::string>() : std::string();
    bool ok = !s.empty() && s.size() <= 64;
    for (char ch : s) ok = ok && ch >= 0x20 && ch < 0x7f;
    if (!ok) throw KeyError{fmt::format("configuration key '{}' must be 1 to 64 printable ASCII characters", key)};
    return s;
}

// A version for connection.start: numbers separated by dots ("3.13.7"), because clients parse
// it that way (kombu splits on dots and converts each part to an integer).
std::string get_version(const json& v, const std::string& key) {
    std::string s = v.is_string() ? v.get<std::string>() : std::string();
    bool ok = !s.empty() && s.size() <= 32 && s.front() != '.' && s.back() != '.' && s.find("..") == std::string::npos;
    for (char ch : s) ok = ok && ((ch >= '0' && ch <= '9') || ch == '.');
    if (!ok)
        throw KeyError{
            fmt::format("configuration key '{}' must be numbers separated by dots, such as \"3.13.7\"", key)};
    return s;
}

bool get_bool(const json& v, const std::string& key) {
    if (!v.is_boolean()) throw KeyError{fmt::format("configuration key '{}' must be true or false", key)};
    return v.get<bool>();
}

Listener get_listener(const json& v, const std::string& where) {
    if (!v.is_object()) throw KeyError{fmt::format("configuration key '{}' must be an object", where)};
    Listener l;
    for (auto& [k, value] : v.items()) {
        std::string key = where + "." + k;
        if (k == "bind") l.bind = get_string(value, key);
        else if (k == "port") l.port = static_cast<std::uint16_t>(get_uint(value, key, 0, 65535));
        else throw KeyError{fmt::format("unknown configuration key '{}'", key)};
    }
    return l;
}

// A non-empty string: a file name the net layer will read.
std::string get_path(const json& v, const std::string& key) {
    if (!v.is_string() || v.get<std::string>().empty())
        throw KeyError{fmt::format("configuration key '{}' must be a file name", key)};
    return v.get<std::string>();
}

// The keys of a listener that speaks TLS (an AMQPS one, and the HTTPS ones), as RabbitMQ names
// them in ssl_options. Returns false for a key that is not about TLS.
bool apply_tls_key(TlsOptions& t, const std::string& k, const json& value, const std::string& key) {
    if (k == "certfile")
        t.certfile = get_path(value, key);
    else if (k == "keyfile")
        t.keyfile = get_path(value, key);
    else if (k == "cacertfile")
        t.cacertfile = get_path(value, key);
    else if (k == "verify_peer")
        t.verify_peer = get_bool(value, key);
    else if (k == "fail_if_no_peer_cert")
        t.fail_if_no_peer_cert = get_bool(value, key);
    else if (k == "versions") {
        const auto error =
            KeyError{fmt::format("configuration key '{}' must be a non-empty array of \"tlsv1.2\", \"tlsv1.3\"", key)};
        if (!value.is_array() || value.empty()) throw error;
        t.tls12 = t.tls13 = false;
        for (const auto& v : value) {
            if (v == "tlsv1.2")
                t.tls12 = true;
            else if (v == "tlsv1.3")
                t.tls13 = true;
            else
                throw error;
        }
    } else
        return false;
    return true;
}

// What a TLS listener needs whatever the order of its keys.
void check_tls_options(const TlsOptions& t, const std::string& where) {
    if (t.certfile.empty()) throw KeyError{fmt::format("configuration key '{}.certfile' is required", where)};
    if (t.keyfile.empty()) throw KeyError{fmt::format("configuration key '{}.keyfile' is required", where)};
    if (t.verify_peer && t.cacertfile.empty())
        throw KeyError{fmt::format(
            "configuration key '{}.cacertfile' is required with verify_peer: client certificates are checked "
            "against it",
            where)};
    if (t.fail_if_no_peer_cert && !t.verify_peer)
        throw KeyError{fmt::format(
            "configuration key '{}.fail_if_no_peer_cert' needs verify_peer: without it no client certificate is "
            "asked for",
            where)};
}

TlsListener get_tls_listener(const json& v, const std::string& where) {
    if (!v.is_object()) throw KeyError{fmt::format("configuration key '{}' must be an object", where)};
    TlsListener l;
    for (auto& [k, value] : v.items()) {
        std::string key = where + "." + k;
        if (k == "bind")
            l.bind = get_string(value, key);
        else if (k == "port")
            l.port = static_cast<std::uint16_t>(get_uint(value, key, 0, 65535));
        else if (!apply_tls_key(l.tls, k, value, key))
            throw KeyError{fmt::format("unknown configuration key '{}'", key)};
    }
    check_tls_options(l.tls, where);
    return l;
}

void apply_keys(const json& doc, Config& c) {
    if (!doc.is_object()) throw KeyError{"the configuration must be a JSON object"};
    for (auto& [key, v] : doc.items()) {
        if (key == "listeners") {
            if (!v.is_array()) throw KeyError{"configuration key 'listeners' must be an array of {\"bind\", \"port\"}"};
            c.listeners.clear();
            for (std::size_t i = 0; i < v.size(); ++i)
                c.listeners.push_back(get_listener(v[i], fmt::format("listeners[{}]", i)));
        } else if (key == "management") {
            c.management = get_listener(v, "management");
        } else if (key == "prometheus") {
            c.prometheus = get_listener(v, "prometheus");
        } else if (key == "management_tls") {
            TlsListener l = get_tls_listener(v, "management_tls");
            // RabbitMQ's management.ssl.port default, unless the file names one.
            if (!v.contains("port")) l.port = 15671;
            c.management_tls = std::move(l);
        } else if (key == "stats_interval_ms") {
            c.stats_interval_ms = get_uint(v, key, 100, 3'600'000);
        } else if (key == "tls_listeners") {
            if (!v.is_array())
                throw KeyError{
                    "configuration key 'tls_listeners' must be an array of {\"bind\", \"port\", \"certfile\", "
                    "\"keyfile\", ...}"};
            c.tls_listeners.clear();
            for (std::size_t i = 0; i < v.size(); ++i)
                c.tls_listeners.push_back(get_tls_listener(v[i], fmt::format("tls_listeners[{}]", i)));
        } else if (key == "tls_handshake_timeout_ms") {
            c.tls_handshake_timeout_ms = get_uint(v, key, 100, 600'000);
        } else if (key == "default_user") {
            c.default_user = get_string(v, key);
        } else if (key == "default_pass") {
            c.default_pass = get_string(v, key);
        } else if (key == "default_vhost") {
            c.default_vhost = get_string(v, key);
        } else if (key == "default_user_loopback_only") {
            c.default_user_loopback_only = get_bool(v, key);
        } else if (key == "frame_max") {
            c.frame_max = static_cast<std::uint32_t>(get_uint(v, key, 4096, std::numeric_limits<std::uint32_t>::max()));
        } else if (key == "channel_max") {
            c.channel_max = static_cast<std::uint16_t>(get_uint(v, key, 1, 65535));
        } else if (key == "heartbeat") {
            c.heartbeat = static_cast<std::uint16_t>(get_uint(v, key, 0, 65535));
        } else if (key == "max_message_size") {
            c.max_message_size = get_uint(v, key, 1, 512ull * 1024 * 1024);
        } else if (key == "memory_high_watermark") {
            if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 1)
                throw KeyError{"configuration key 'memory_high_watermark' must be a number above 0 and at most 1"};
            c.memory_high_watermark = v.get<double>();
        } else if (key == "memory_high_watermark_bytes") {
            c.memory_high_watermark_bytes = get_uint(v, key, 1, std::numeric_limits<std::uint64_t>::max());
        } else if (key == "connection_output_high_water") {
            c.connection_output_high_water = get_uint(v, key, 4096, std::numeric_limits<std::uint32_t>::max());
        } else if (key == "connection_output_limit") {
            c.connection_output_limit = get_uint(v, key, 4096, std::numeric_limits<std::uint64_t>::max());
        } else if (key == "consumer_timeout_ms") {
            c.consumer_timeout_ms = get_uint(v, key, 0, std::numeric_limits<std::uint32_t>::max());
        } else if (key == "server_product") {
            c.server_product = get_product(v, key);
        } else if (key == "server_version") {
            c.server_version = get_version(v, key);
        } else if (key == "data_dir") {
            c.data_dir = get_string(v, key);
        } else if (key == "load_definitions") {
            c.load_definitions = get_string(v, key);
        } else if (key == "fsync_confirms") {
            c.fsync_confirms = get_bool(v, key);
        } else if (key == "sync_interval_ms") {
            c.sync_interval_ms = get_uint(v, key, 1, 60'000);
        } else if (key == "input_batching_us") {
            c.input_batching_us = get_uint(v, key, 0, 10'000);
        } else if (key == "disk_free_limit") {
            c.disk_free_limit = get_uint(v, key, 0, std::numeric_limits<std::uint64_t>::max());
        } else if (key == "segment_size") {
            c.segment_size = get_uint(v, key, 1024 * 1024, 1024ull * 1024 * 1024);
        } else if (key == "segment_preallocate") {
            c.segment_preallocate = get_uint(v, key, 0, 1024ull * 1024 * 1024);
        } else if (key == "segment_reuse") {
            c.segment_reuse = static_cast<std::uint32_t>(get_uint(v, key, 0, 16));
        } else if (key == "log_level") {
            c.log_level = get_string(v, key);
            log::Level l;
            if (!log::parse_level(c.log_level, l))
                throw KeyError{"configuration key 'log_level' must be one of debug, info, warning, error, none"};
        } else {
            throw KeyError{fmt::format("unknown configuration key '{}'", key)};
        }
    }
    // Plain AMQP may be switched off, but not everything.
    if (c.listeners.empty() && c.tls_listeners.empty())
        throw KeyError{"configuration key 'listeners' may be empty only when 'tls_listeners' names a listener"};
}

}  // namespace

ConfigResult parse_config_json(const std::string& text, Config base) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::parse_error& e) {
        return {std::nullopt, fmt::format("the configuration is not valid JSON: {}", e.what())};
    }
    try {
        apply_keys(doc, base);
    } catch (const KeyError& e) {
        return {std::nullopt, e.message};
    }
    return {std::move(base), {}};
}

ConfigResult load_config_file(const std::string& path, Config base) {
    std::ifstream in(path);
    if (!in) return {std::nullopt, fmt::format("cannot read configuration file '{}'", path)};
    std::stringstream ss;
    ss << in.rdbuf();
    auto result = parse_config_json(ss.str(), std::move(base));
    if (!result.config) result.error = fmt::format("{}: {}", path, result.error);
    return result;
}

std::string usage() {
    return "usage: warren [--config FILE] [--bind ADDRESS] [--port PORT] [--management-port PORT]\n"
           "              [--prometheus-port PORT] [--data-dir DIR] [--log-level LEVEL]\n"
           "  --config FILE      JSON configuration (see README: Configuration)\n"
           "  --bind ADDRESS     address to listen on (default 127.0.0.1)\n"
           "  --port PORT        AMQP port (default 5672; 0 picks a free port)\n"
           "  --management-port PORT  management HTTP API port (default 15672 on 127.0.0.1; 0 disables)\n"
           "  --prometheus-port PORT  Prometheus metrics port (default 15692 on 127.0.0.1; 0 disables)\n"
           "  --data-dir DIR     definitions and persistent messages (default ./warren-data;\n"
           "                     an empty string keeps everything in memory)\n"
           "  --log-level LEVEL  debug, info, warning, error or none (default info)\n";
}

CommandLine parse_command_line(int argc, char** argv) {
    CommandLine cl;
    std::optional<std::string> config_path, bind, port, level, data_dir, management_port, prometheus_port;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](std::optional<std::string>& slot) {
            if (i + 1 >= argc) {
                cl.error = fmt::format("option {} needs a value", arg);
                return;
            }
            slot = argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            cl.help = true;
            return cl;
        } else if (arg == "--config") {
            value(config_path);
        } else if (arg == "--bind") {
            value(bind);
        } else if (arg == "--port") {
            value(port);
        } else if (arg == "--log-level") {
            value(level);
        } else if (arg == "--data-dir") {
            value(data_dir);
        } else if (arg == "--management-port") {
            value(management_port);
        } else if (arg == "--prometheus-port") {
            value(prometheus_port);
        } else {
            cl.error = fmt::format("unknown option '{}'", arg);
        }
        if (!cl.error.empty()) return cl;
    }
    Config config;
    config.data_dir = default_data_dir;
    if (config_path) {
        auto r = load_config_file(*config_path, config);
        if (!r.config) {
            cl.error = r.error;
            return cl;
        }
        config = std::move(*r.config);
    }
    // --bind and --port set the first plain listener, making one if the file has none.
    if ((bind || port) && config.listeners.empty()) config.listeners.emplace_back();
    if (bind) config.listeners.front().bind = *bind;
    if (data_dir) config.data_dir = *data_dir;
    if (port) {
        char* end = nullptr;
        unsigned long p = std::strtoul(port->c_str(), &end, 10);
        if (port->empty() || *end != '\0' || p > 65535) {
            cl.error = fmt::format("--port must be a number from 0 to 65535, not '{}'", *port);
            return cl;
        }
        config.listeners.front().port = static_cast<std::uint16_t>(p);
    }
    if (management_port) {
        char* end = nullptr;
        unsigned long p = std::strtoul(management_port->c_str(), &end, 10);
        if (management_port->empty() || *end != '\0' || p > 65535) {
            cl.error = fmt::format("--management-port must be a number from 0 to 65535, not '{}'", *management_port);
            return cl;
        }
        config.management.port = static_cast<std::uint16_t>(p);
    }
    if (prometheus_port) {
        char* end = nullptr;
        unsigned long p = std::strtoul(prometheus_port->c_str(), &end, 10);
        if (prometheus_port->empty() || *end != '\0' || p > 65535) {
            cl.error = fmt::format("--prometheus-port must be a number from 0 to 65535, not '{}'", *prometheus_port);
            return cl;
        }
        config.prometheus.port = static_cast<std::uint16_t>(p);
    }
    if (level) {
        log::Level l;
        if (!log::parse_level(*level, l)) {
            cl.error = fmt::format("--log-level must be one of debug, info, warning, error, none, not '{}'", *level);
            return cl;
        }
        config.log_level = *level;
    }
    cl.config = std::move(config);
    return cl;
}

}  // namespace warren::broker
