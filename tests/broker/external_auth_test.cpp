// The EXTERNAL mechanism (connection_handshake.cpp) as rabbitmq_auth_mechanism_ssl runs it: offered
// on TLS connections only, the user named by the verified client certificate's common name, no
// password, and each reason for a refusal in the log.
#include <catch2/catch.hpp>

#include "support/log_capture.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

PeerInfo tls_peer(std::optional<std::string> common_name, bool verify_peer = true, bool has_certificate = true,
                  bool loopback = true) {
    return PeerInfo{loopback ? "127.0.0.1:1" : "192.0.2.1:1", loopback, "",
                    TlsPeer{verify_peer, has_certificate, std::move(common_name)}};
}

std::string mechanisms(TestClient& c) {
    c.send_protocol_header();
    auto start = c.take<ConnectionStart>();
    REQUIRE(start.size() == 1);
    return std::string(start[0].mechanisms.view());
}

// start-ok with EXTERNAL (its response is ignored); returns whether connection.tune came.
bool login_external(TestClient& c) {
    c.send_start_ok("ignored", "ignored", default_capabilities(), "EXTERNAL");
    return c.take<ConnectionTune>().size() == 1;
}

// The refusal: connection.close 403 naming EXTERNAL, and `reason` in the log.
void expect_refused(TestClient& c, LogCapture& log, std::string_view reason) {
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(close->reply_code == 403);
    CHECK(text_of(*close) ==
          "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker "
          "logfile.");
    CHECK(log.contains(reason));
}

}  // namespace

TEST_CASE("EXTERNAL is offered on TLS connections and not on plain ones", "[connection][auth][tls]") {
    TestBroker b;
    TestClient plain(b, false);
    CHECK(mechanisms(plain) == "PLAIN AMQPLAIN");
    TestClient tls(b, tls_peer("guest"));
    CHECK(mechanisms(tls) == "PLAIN AMQPLAIN EXTERNAL");
    // As RabbitMQ: offered even without a client certificate, so the refusal can say why.
    TestClient no_cert(b, tls_peer(std::nullopt, true, false));
    CHECK(mechanisms(no_cert) == "PLAIN AMQPLAIN EXTERNAL");
}

TEST_CASE("EXTERNAL logs in the user the certificate's common name names, without a password",
          "[connection][auth][tls]") {
    TestBroker b;
    TestClient c(b, tls_peer("guest"));
    mechanisms(c);
    REQUIRE(login_external(c));
    c.send_tune_ok(2047, 131072, 0);
    c.send_open("/");
    CHECK(c.take<ConnectionOpenOk>().size() == 1);
    CHECK(c.connection().user() == "guest");
}

TEST_CASE("EXTERNAL on a plain connection is an unknown mechanism", "[connection][auth][tls]") {
    TestBroker b;
    TestClient c(b, false);
    c.send_protocol_header();
    CHECK_FALSE(login_external(c));
    CHECK(c.transport_closed());
}

TEST_CASE("EXTERNAL refuses, with the reason in the log", "[connection][auth][tls]") {
    TestBroker b;
    LogCapture log;
    SECTION("a common name that is not a user") {
        TestClient c(b, tls_peer("nobody-we-know"));
        mechanisms(c);
        CHECK_FALSE(login_external(c));
        expect_refused(c, log, "user 'nobody-we-know' - invalid credentials");
    }
    SECTION("no client certificate") {
        TestClient c(b, tls_peer(std::nullopt, true, false));
        mechanisms(c);
        CHECK_FALSE(login_external(c));
        expect_refused(c, log, "connection peer presented no TLS (x.509) certificate");
    }
    SECTION("a listener that does not verify client certificates") {
        TestClient c(b, tls_peer("guest", false));
        mechanisms(c);
        CHECK_FALSE(login_external(c));
        expect_refused(c, log, "TLS configuration is unsafe");
    }
    SECTION("a certificate whose subject has no common name") {
        TestClient c(b, tls_peer(std::nullopt));
        mechanisms(c);
        CHECK_FALSE(login_external(c));
        expect_refused(c, log, "no name found");
    }
    SECTION("a loopback-only user from another host") {
        TestClient c(b, tls_peer("guest", true, true, false));
        mechanisms(c);
        CHECK_FALSE(login_external(c));
        expect_refused(c, log, "user 'guest' can only connect via localhost");
    }
}

TEST_CASE("PLAIN on a TLS connection still checks the password", "[connection][auth][tls]") {
    TestBroker b;
    TestClient c(b, tls_peer("guest"));
    mechanisms(c);
    c.send_start_ok("guest", "wrong");
    CHECK(c.take<ConnectionTune>().empty());
    CHECK(c.transport_closed());
}
