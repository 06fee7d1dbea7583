// The connection handshake as RabbitMQ runs it: start / start-ok (PLAIN, AMQPLAIN, and EXTERNAL
// on TLS connections), tune / tune-ok with RabbitMQ's negotiation rules, open / open-ok.
#include <fmt/format.h>

#include "broker/broker.hpp"
#include "broker/connection.hpp"
#include "broker/log.hpp"
#include "broker/vhost.hpp"
#include "protocol/methods.hpp"
#include "protocol/reader.hpp"

namespace warren::broker {

using namespace protocol;

namespace {

constexpr std::string_view warren_version = "0.1.0";  // project(warren VERSION) in CMakeLists.txt

// Capabilities Warren advertises in connection.start: each one works as RabbitMQ's does.
FieldTable server_capabilities() {
    FieldTable caps;
    for (const char* name : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                             "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                             "authentication_failure_close", "per_consumer_qos", "direct_reply_to"})
        caps.set(name, true);
    return caps;
}

// `product` and `version` are the RabbitMQ whose behaviour Warren follows (configurable),
// because clients pick their semantics from them (kombu's global qos; see config.hpp);
// `platform` and `information` say what is really answering.
FieldTable server_properties(const Config& config) {
    FieldTable props;
    props.set("capabilities", server_capabilities());
    props.set("cluster_name", std::string("warren"));
    props.set("copyright", std::string("Copyright (c) the Warren authors. Apache-2.0."));
    props.set("information", fmt::format("Warren {}, an AMQP 0-9-1 broker. See its README.", warren_version));
    props.set("platform", fmt::format("Warren {} (C++20 on Linux)", warren_version));
    props.set("product", config.server_product);
    props.set("version", config.server_version);
    return props;
}

struct Credentials {
    bool ok = false;
    std::string user;
    std::string password;
};

// PLAIN: [authzid] NUL authcid NUL password (RFC 4616).
Credentials parse_plain(std::string_view response) {
    auto first = response.find('\0');
    if (first == std::string_view::npos) return {};
    auto second = response.find('\0', first + 1);
    if (second == std::string_view::npos) return {};
    return {true, std::string(response.substr(first + 1, second - first - 1)),
            std::string(response.substr(second + 1))};
}

// AMQPLAIN: a field table without its length prefix, with LOGIN and PASSWORD.
Credentials parse_amqplain(std::string_view response) {
    auto table = TableView::parse(std::as_bytes(std::span(response.data(), response.size())));
    if (!table) return {};
    auto login = table->find("LOGIN");
    auto password = table->find("PASSWORD");
    if (!login || !password || !login->as_string() || !password->as_string()) return {};
    return {true, std::string(*login->as_string()), std::string(*password->as_string())};
}

// EXTERNAL (rabbitmq_auth_mechanism_ssl): the user is named by the client certificate's common
// name; its response is ignored and no password is checked. Like RabbitMQ, the mechanism is
// offered on every TLS connection, so that a client without a certificate learns why it is
// refused instead of finding no mechanism in common. Returns the user, or sets the refusal.
std::optional<std::string> external_user(const TlsPeer& tls, std::string& refusal) {
    if (!tls.verify_peer) {
        // RabbitMQ: a name from a certificate nobody verified proves nothing.
        refusal = "TLS configuration is unsafe (the listener does not set verify_peer)";
        return std::nullopt;
    }
    if (!tls.has_certificate) {
        refusal = "connection peer presented no TLS (x.509) certificate";
        return std::nullopt;
    }
    if (!tls.common_name) {
        refusal = "no name found (the client certificate's subject has no common name)";
        return std::nullopt;
    }
    return *tls.common_name;
}

}  // namespace

void Connection::send_start() {
    ByteBuffer props = encode_table_body(server_properties(broker_.config()));
    ConnectionStart start;
    start.server_properties = TableView::trusted(props.span());
    start.mechanisms = peer_.tls ? "PLAIN AMQPLAIN EXTERNAL" : "PLAIN AMQPLAIN";
    start.locales = "en_US";
    send_method(0, start);
}

bool Connection::client_has_capability(std::string_view name) const {
    const FieldValue* caps = client_properties_.find("capabilities");
    if (!caps) return false;
    const FieldTable* table = caps->get_if<FieldTable>();
    if (!table) return false;
    const FieldValue* v = table->find(name);
    return v && v->get_if<bool>() && *v->get_if<bool>();
}

void Connection::on_start_ok(std::span<const std::byte> args) {
    Reader r(args);
    ConnectionStartOk m;
    decode_fields(r, m);
    if (!r.ok() || !r.at_end()) {
        fail_handshake(amqp_error(ReplyCode::SyntaxError, "malformed connection.start-ok", ConnectionStartOk::id));
        return;
    }
    client_properties_ = m.client_properties.to_table();
    auth_failure_close_ = client_has_capability("authentication_failure_close");

    std::string_view mechanism = m.mechanism.view();
    if (mechanism == "EXTERNAL" && peer_.tls) {
        login_external();
        return;
    }
    Credentials creds;
    if (mechanism == "PLAIN") {
        creds = parse_plain(m.response.view());
    } else if (mechanism == "AMQPLAIN") {
        creds = parse_amqplain(m.response.view());
    } else {
        fail_handshake(amqp_error(ReplyCode::CommandInvalid,
                                  fmt::format("unknown authentication mechanism '{}'", mechanism),
                                  ConnectionStartOk::id));
        return;
    }
    if (!creds.ok) {
        // RabbitMQ's mechanisms answer a malformed response with a protocol error, not a
        // refused login: the socket closes without connection.close, whatever the capabilities.
        log::peer(log::Level::Warning, peer_.address, "connection {}: {} response is malformed", peer_.address,
                  log::escaped(mechanism));
        fail_handshake(amqp_error(ReplyCode::SyntaxError, fmt::format("{} response is malformed", mechanism),
                                  ConnectionStartOk::id));
        return;
    }
    std::string refusal;
    if (broker_.check_login(creds.user, creds.password, peer_.is_loopback, refusal)) {
        accept_login(creds.user);
        return;
    }
    refuse_login(mechanism, refusal);
}

void Connection::login_external() {
    std::string refusal;
    std::optional<std::string> user = external_user(*peer_.tls, refusal);
    if (user && !broker_.user_exists(*user)) {
        refusal = fmt::format("user '{}' - invalid credentials", *user);
        user.reset();
    } else if (user && broker_.is_loopback_only(*user) && !peer_.is_loopback) {
        refusal = fmt::format("user '{}' can only connect via localhost", *user);
        user.reset();
    }
    if (!user) return refuse_login("EXTERNAL", refusal);
    accept_login(*user);
}

void Connection::accept_login(std::string user) {
    user_ = std::move(user);
    state_ = State::AwaitingTuneOk;
    const Config& c = broker_.config();
    send_method(0, ConnectionTune{c.channel_max, c.frame_max, c.heartbeat});
}

void Connection::refuse_login(std::string_view mechanism, std::string_view refusal) {
    log::peer(log::Level::Warning, peer_.address, "connection {}: {} login refused: {}", peer_.address,
              log::escaped(mechanism), log::escaped(refusal));
    fail_handshake(amqp_error(
        ReplyCode::AccessRefused,
        fmt::format("Login was refused using authentication mechanism {}. For details see the broker logfile.",
                    mechanism)));
}

void Connection::on_tune_ok(std::span<const std::byte> args) {
    Reader r(args);
    ConnectionTuneOk m;
    decode_fields(r, m);
    if (!r.ok() || !r.at_end()) {
        fail_handshake(amqp_error(ReplyCode::SyntaxError, "malformed connection.tune-ok", ConnectionTuneOk::id));
        return;
    }
    const Config& c = broker_.config();
    auto negotiation_error = [&](std::string_view field, std::uint64_t value, bool too_high, std::uint64_t limit) {
        fail_handshake(amqp_error(ReplyCode::NotAllowed,
                                  fmt::format("negotiated {} = {} is {} than the {} allowed value ({})", field, value,
                                              too_high ? "higher" : "lower", too_high ? "maximum" : "minimum",
                                              limit),
                                  ConnectionTune::id));
    };
    // DECISIONS.md: accept every value the spec allows; 0 means "no limit of the client's",
    // so the server's maximum applies.
    if (m.frame_max != 0 && m.frame_max < frame_min_size) return negotiation_error("frame_max", m.frame_max, false, frame_min_size);
    if (m.frame_max > c.frame_max) return negotiation_error("frame_max", m.frame_max, true, c.frame_max);
    if (m.channel_max > c.channel_max) return negotiation_error("channel_max", m.channel_max, true, c.channel_max);
    frame_max_ = m.frame_max ? m.frame_max : c.frame_max;
    channel_max_ = m.channel_max ? m.channel_max : c.channel_max;
    heartbeat_ = m.heartbeat;
    state_ = State::AwaitingOpen;
}

void Connection::on_open(std::span<const std::byte> args) {
    Reader r(args);
    ConnectionOpen m;
    decode_fields(r, m);
    if (!r.ok() || !r.at_end()) {
        fail_handshake(amqp_error(ReplyCode::SyntaxError, "malformed connection.open", ConnectionOpen::id));
        return;
    }
    VHost* vhost = broker_.find_vhost(m.virtual_host.view());
    if (!vhost) {
        fail_handshake(amqp_error(ReplyCode::NotAllowed, fmt::format("vhost {} not found", m.virtual_host.view()),
                                  ConnectionOpen::id));
        return;
    }
    if (auto error = check_vhost_open(*vhost)) {
        log::peer(log::Level::Warning, peer_.address, "connection {}: {}", peer_.address, log::escaped(error->text));
        fail_handshake(*error);
        return;
    }
    vhost_ = vhost;
    vhost_name_ = vhost->name();
    state_ = State::Open;
    if (close_timer_) broker_.timers().cancel(close_timer_);
    close_timer_ = 0;
    send_method(0, ConnectionOpenOk{});
    logged_open_ = true;
    log::peer(log::Level::Info, peer_.address, "connection opened: {} user '{}' vhost '{}'", peer_.address,
              log::escaped(user_), log::escaped(vhost_->name()));
    start_heartbeats();
    if (broker_.publishing_blocked() && has_published_) on_alarm(true);
}

std::optional<AmqpError> Connection::check_vhost_open(VHost& vhost) {
    // Counted only when there is a limit: a walk over the connections.
    if (auto limit = vhost.limits().max_connections
                         ? limit_reached(vhost.limits().max_connections, broker_.connections_in_vhost(vhost))
                         : std::nullopt)
        return amqp_error(ReplyCode::NotAllowed,
                          fmt::format("access to vhost '{}' refused for user '{}': connection limit ({}) is reached",
                                      vhost.name(), user_, *limit),
                          ConnectionOpen::id);
    if (const User* u = broker_.auth().find_user(user_); u && u->limits.max_connections)
        if (auto limit = limit_reached(u->limits.max_connections, broker_.connections_of_user(user_)))
            return amqp_error(ReplyCode::NotAllowed,
                              fmt::format("connection refused for user '{}': user connection limit ({}) is reached",
                                          user_, *limit),
                              ConnectionOpen::id);
    // rabbit_auth_backend_internal:check_vhost_access/3: any permissions in the vhost, even
    // patterns that match nothing, open it.
    if (!broker_.auth().find_permissions(user_, vhost.name()))
        return amqp_error(ReplyCode::NotAllowed,
                          fmt::format("access to vhost '{}' refused for user '{}'", vhost.name(), user_),
                          ConnectionOpen::id);
    return std::nullopt;
}

// An error before the connection is open. As RabbitMQ does: a refused login gets
// connection.close only when the client advertised authentication_failure_close; a refused
// tune gets connection.close; after tune-ok (RabbitMQ's `opening` state) every error does;
// anything else just closes the socket.
void Connection::fail_handshake(const AmqpError& error) {
    bool send_close = (error.code == ReplyCode::AccessRefused && auth_failure_close_) ||
                      (error.code == ReplyCode::NotAllowed && state_ == State::AwaitingTuneOk) ||
                      state_ == State::AwaitingOpen;
    close_reason_ = error.text;
    if (send_close) {
        const std::string text = wire_reply_text(error.text);
        send_method(0, ConnectionClose{static_cast<std::uint16_t>(error.code), text, error.method.class_id,
                                       error.method.method_id});
    }
    teardown(close_reason_);
    host_.close_transport();
}

}  // namespace warren::broker
