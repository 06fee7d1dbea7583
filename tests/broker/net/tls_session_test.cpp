// TlsSession (broker/net/tls_session.hpp), a server session, driven against an OpenSSL client over
// memory BIOs: no sockets. The server's certificate is made here, in memory, and written to a
// temporary folder for make_tls_context, the function the listeners use.
#include "broker/net/tls_session.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "broker/net/tls_context.hpp"

namespace {

using warren::broker::TlsOptions;
using warren::broker::net::describe_tls_error;
using warren::broker::net::make_tls_context;
using warren::broker::net::Tls13Records;
using warren::broker::net::TlsContextPtr;
using warren::broker::net::TlsSession;
using Status = TlsSession::Status;

constexpr std::size_t max_record_data = 16 * 1024;
constexpr std::size_t record_header = 5;

std::vector<std::byte> bytes_of(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + i / 251) & 0xff);
    return v;
}

// A self-signed P-256 certificate for CN=localhost, written as PEM into a fresh folder, and the
// server context made from it (once for the whole run: key generation is the slow part).
struct ServerFiles {
    std::filesystem::path dir;
    TlsOptions options;

    ServerFiles() {
        std::random_device rd;
        dir = std::filesystem::temp_directory_path() / ("warren-tls-session-test-" + std::to_string(rd()));
        std::filesystem::create_directories(dir);
        EVP_PKEY* key = EVP_EC_gen("P-256");
        REQUIRE(key);
        X509* cert = X509_new();
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1,
                                   -1, 0);
        X509_set_issuer_name(cert, name);
        X509_set_pubkey(cert, key);
        REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
        options.certfile = (dir / "cert.pem").string();
        options.keyfile = (dir / "key.pem").string();
        FILE* f = std::fopen(options.certfile.c_str(), "w");
        REQUIRE(f);
        PEM_write_X509(f, cert);
        std::fclose(f);
        f = std::fopen(options.keyfile.c_str(), "w");
        REQUIRE(f);
        PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(f);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    ~ServerFiles() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

TlsContextPtr server_context() {
    static ServerFiles files;
    static TlsContextPtr context = [] {
        auto result = make_tls_context(files.options, "tls_listeners[0]");
        INFO(result.error);
        REQUIRE(result.context);
        return result.context;
    }();
    return context;
}

// One server session and one OpenSSL client (memory BIOs) at a given protocol version. The test
// moves bytes between them itself, so that it decides how the server's input is cut.
struct Pair {
    std::string verify_failure;
    TlsSession server{server_context(), verify_failure};
    SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
    SSL* client = nullptr;
    BIO* to_client = nullptr;      // the client reads from it
    BIO* from_client = nullptr;    // the client writes to it
    std::vector<std::byte> input;  // the server's input buffer (as the connection's receive buffer)

    // The client's traffic secrets (its keylog lines), for the tests that forge its records.
    std::vector<unsigned char> client_secret, server_secret;

    // `suites`: the client's TLS 1.3 ciphersuites (OpenSSL's default: all three).
    explicit Pair(int version = TLS1_3_VERSION, const char* suites = nullptr) {
        REQUIRE(client_ctx);
        SSL_CTX_set_min_proto_version(client_ctx, version);
        SSL_CTX_set_max_proto_version(client_ctx, version);
        SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, nullptr);
        if (suites) REQUIRE(SSL_CTX_set_ciphersuites(client_ctx, suites) == 1);
        SSL_CTX_set_keylog_callback(client_ctx, keylog);
        client = SSL_new(client_ctx);
        SSL_set_app_data(client, this);
        to_client = BIO_new(BIO_s_mem());
        from_client = BIO_new(BIO_s_mem());
        SSL_set_bio(client, to_client, from_client);
        SSL_set_connect_state(client);
    }
    ~Pair() {
        SSL_free(client);
        SSL_CTX_free(client_ctx);
    }
    static void keylog(const SSL* ssl, const char* line) {
        auto* p = static_cast<Pair*>(SSL_get_app_data(ssl));
        std::string_view text(line);
        std::vector<unsigned char>* into = text.starts_with("CLIENT_TRAFFIC_SECRET_0 ")   ? &p->client_secret
                                           : text.starts_with("SERVER_TRAFFIC_SECRET_0 ") ? &p->server_secret
                                                                                          : nullptr;
        if (!into) return;
        std::string hex(text.substr(text.rfind(' ') + 1));
        into->clear();
        for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
            into->push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    // The client's side of the record layer, to send records an OpenSSL client would not (its
    // write sequence starts at 0: use it instead of `client`, not besides).
    std::unique_ptr<Tls13Records> forged_client() {
        const SSL_CIPHER* cipher = SSL_get_current_cipher(client);
        REQUIRE(cipher);
        auto suite = SSL_CIPHER_get_id(cipher) == TLS1_3_CK_AES_256_GCM_SHA384 ? Tls13Records::Suite::Aes256Gcm
                                                                               : Tls13Records::Suite::ChaCha20Poly1305;
        auto records = Tls13Records::make(suite, server_secret, client_secret);
        REQUIRE(records);
        return records;
    }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;

    // What the client wrote and the server has not been given yet.
    std::vector<std::byte> client_output() {
        std::vector<std::byte> out(static_cast<std::size_t>(BIO_ctrl_pending(from_client)));
        if (!out.empty()) REQUIRE(BIO_read(from_client, out.data(), static_cast<int>(out.size())) == int(out.size()));
        return out;
    }
    // Hands the server's records to the client.
    void deliver_server_output() {
        while (server.has_output()) {
            auto out = server.output();
            REQUIRE(BIO_write(to_client, out.data(), static_cast<int>(out.size())) == int(out.size()));
            server.output_sent(out.size());
        }
    }
    // Gives the server `bytes` as one receive would; the caller's buffer is then overwritten, as
    // the connection reuses its receive buffer, so anything the session keeps must be its own copy.
    void give(std::span<const std::byte> bytes) {
        REQUIRE_FALSE(server.has_input());
        input.assign(bytes.begin(), bytes.end());
        server.set_input(input);
    }
    void reuse_input_buffer() {
        server.keep_input();
        std::fill(input.begin(), input.end(), std::byte{0xAA});
    }

    // Runs the handshake to its end; the client reads its session tickets (TLS 1.3) later.
    void handshake() {
        Status server_status = Status::WantRead;
        for (int round = 0; round < 10; ++round) {
            int ret = SSL_do_handshake(client);
            if (ret != 1) REQUIRE(SSL_get_error(client, ret) == SSL_ERROR_WANT_READ);
            auto bytes = client_output();
            if (!bytes.empty()) give(bytes);
            if (server_status != Status::Ok) server_status = server.handshake();
            REQUIRE((server_status == Status::Ok || server_status == Status::WantRead));
            reuse_input_buffer();
            deliver_server_output();
            if (ret == 1 && server_status == Status::Ok) return;
        }
        FAIL("the handshake did not finish in 10 rounds");
    }

    // The client's records for `plain`, one SSL_write (so one record up to 16 KiB).
    std::vector<std::byte> client_record(std::span<const std::byte> plain) {
        REQUIRE(SSL_write(client, plain.data(), static_cast<int>(plain.size())) == int(plain.size()));
        return client_output();
    }

    // Reads what the server has into `got` until it wants input; returns the last status.
    Status read_all(std::vector<std::byte>& got, std::size_t space = 64 * 1024) {
        TlsSession::start_reads();
        std::vector<std::byte> into(space);
        while (true) {
            std::size_t n = 0;
            Status status = server.read(into, n);
            if (status != Status::Ok) {
                reuse_input_buffer();
                return status;
            }
            REQUIRE(n > 0);
            REQUIRE(n <= into.size());
            got.insert(got.end(), into.begin(), into.begin() + static_cast<std::ptrdiff_t>(n));
        }
    }

    // Gives the server `wire`, which it must refuse: it fails, hands out nothing and says why.
    void expect_refused(std::span<const std::byte> wire) {
        give(wire);
        std::vector<std::byte> got;
        CHECK(read_all(got) == Status::Failed);
        CHECK(got.empty());
        CHECK(server.error());
    }

    // Everything the client can read from the server's records so far.
    std::vector<std::byte> client_reads() {
        std::vector<std::byte> got;
        std::vector<std::byte> buf(64 * 1024);
        while (true) {
            int n = SSL_read(client, buf.data(), static_cast<int>(buf.size()));
            if (n <= 0) {
                REQUIRE(SSL_get_error(client, n) == SSL_ERROR_WANT_READ);
                return got;
            }
            got.insert(got.end(), buf.begin(), buf.begin() + n);
        }
    }
};

// The sizes of the TLS records in `wire`, which must be whole records.
std::vector<std::size_t> record_lengths(std::span<const std::byte> wire) {
    std::vector<std::size_t> lengths;
    while (!wire.empty()) {
        REQUIRE(wire.size() >= record_header);
        std::size_t len = (std::to_integer<std::size_t>(wire[3]) << 8) | std::to_integer<std::size_t>(wire[4]);
        REQUIRE(wire.size() >= record_header + len);
        lengths.push_back(len);
        wire = wire.subspan(record_header + len);
    }
    return lengths;
}

int version_named(const std::string& name) {
    return name == "TLS 1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
}

const char* const aes256 = "TLS_AES_256_GCM_SHA384";
const char* const chacha = "TLS_CHACHA20_POLY1305_SHA256";
const char* const aes128 = "TLS_AES_128_GCM_SHA256";

// The alert the client gets from the server's records so far, as an alert number (-1: data or
// nothing instead).
int alert_at_client(Pair& p) {
    p.deliver_server_output();
    ERR_clear_error();
    std::vector<std::byte> buf(64 * 1024);
    int n = SSL_read(p.client, buf.data(), static_cast<int>(buf.size()));
    unsigned long code = ERR_peek_error();
    ERR_clear_error();
    if (n > 0 || code == 0) return -1;
    int reason = ERR_GET_REASON(code);
    return reason >= SSL_AD_REASON_OFFSET ? reason - SSL_AD_REASON_OFFSET : -1;
}

std::vector<std::byte> forged(Tls13Records& records, std::uint8_t type, std::vector<std::byte> content) {
    std::vector<std::byte> out;
    records.seal(type, content, out);
    return out;
}

}  // namespace

TEST_CASE("a TLS client completes the handshake and data flows both ways", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name));
    p.handshake();
    CHECK(SSL_version(p.server.native_handle()) == version_named(name));
    CHECK(SSL_version(p.client) == version_named(name));

    p.give(p.client_record(bytes_of("AMQP publish")));
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == bytes_of("AMQP publish"));
    CHECK_FALSE(p.server.has_buffered());

    auto reply = pattern(1000);
    REQUIRE(p.server.write(reply));
    CHECK(p.server.has_output());
    p.deliver_server_output();
    CHECK_FALSE(p.server.has_output());
    CHECK(p.client_reads() == reply);
}

TEST_CASE("a record cut at any byte reads as a whole once the rest arrives", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name));
    p.handshake();
    const auto plain = pattern(300);
    for (std::size_t cut = 1; cut < 400; ++cut) {
        auto record = p.client_record(plain);
        if (cut >= record.size()) break;
        INFO("cut after byte " << cut << " of " << record.size());
        std::vector<std::byte> got;
        p.give(std::span(record).first(cut));
        REQUIRE(p.read_all(got) == Status::WantRead);
        REQUIRE(got.empty());
        // The session kept the first part itself: the buffer it came in has been overwritten.
        p.give(std::span(record).subspan(cut));
        REQUIRE(p.read_all(got) == Status::WantRead);
        REQUIRE(got == plain);
    }
}

TEST_CASE("a record handed in one byte at a time reads as a whole", "[tls]") {
    Pair p;
    p.handshake();
    const auto plain = pattern(200);
    auto record = p.client_record(plain);
    std::vector<std::byte> got;
    for (std::size_t i = 0; i < record.size(); ++i) {
        p.give(std::span(record).subspan(i, 1));
        REQUIRE(p.read_all(got) == Status::WantRead);
        if (i + 1 < record.size()) REQUIRE(got.empty());
    }
    CHECK(got == plain);
}

TEST_CASE("many records in one read are all decrypted, in order", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name));
    p.handshake();
    std::vector<std::byte> wire, expected;
    for (int i = 0; i < 200; ++i) {
        auto plain = bytes_of("message " + std::to_string(i) + ";");
        auto record = p.client_record(plain);
        wire.insert(wire.end(), record.begin(), record.end());
        expected.insert(expected.end(), plain.begin(), plain.end());
    }
    // And half of one more, which the session keeps for the next read.
    auto last = p.client_record(bytes_of("the last one"));
    wire.insert(wire.end(), last.begin(), last.begin() + 10);
    p.give(wire);
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == expected);
    p.give(std::span(last).subspan(10));
    got.clear();
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == bytes_of("the last one"));
}

TEST_CASE("a record larger than the read space is handed out in pieces", "[tls]") {
    Pair p;
    p.handshake();
    const auto plain = pattern(10000);
    p.give(p.client_record(plain));
    std::vector<std::byte> got;
    TlsSession::start_reads();
    std::vector<std::byte> into(4096);
    std::size_t n = 0;
    REQUIRE(p.server.read(into, n) == Status::Ok);
    CHECK(n == 4096);
    got.insert(got.end(), into.begin(), into.end());
    // The rest of the record is in OpenSSL, not in the input: the connection must read on.
    CHECK(p.server.has_buffered());
    CHECK(p.read_all(got, 4096) == Status::WantRead);
    CHECK(got == plain);
    CHECK_FALSE(p.server.has_buffered());
}

TEST_CASE("a large write becomes full 16 KiB records, sent in any pieces", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name));
    p.handshake();
    const auto plain = pattern(200 * 1024 + 5);
    REQUIRE(p.server.write(plain));
    auto out = p.server.output();
    std::vector<std::byte> wire(out.begin(), out.end());
    auto lengths = record_lengths(wire);
    REQUIRE(lengths.size() == 13);  // 12 full records and 8 KiB + 5 bytes
    for (std::size_t i = 0; i + 1 < lengths.size(); ++i) {
        CHECK(lengths[i] >= max_record_data);
        CHECK(lengths[i] <= max_record_data + 256);
    }
    // Sent as a socket would take it: 1000 bytes at a time.
    while (p.server.has_output()) {
        auto piece = p.server.output().first(std::min<std::size_t>(1000, p.server.output().size()));
        REQUIRE(BIO_write(p.to_client, piece.data(), static_cast<int>(piece.size())) == int(piece.size()));
        p.server.output_sent(piece.size());
    }
    CHECK(p.server.output().empty());
    CHECK(p.client_reads() == plain);
}

TEST_CASE("the client's close_notify ends the server's reading", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name));
    p.handshake();
    auto record = p.client_record(bytes_of("bye"));
    CHECK(p.server.uses_record_layer() == (name == "TLS 1.3"));
    REQUIRE(SSL_shutdown(p.client) == 0);  // sent, the server's not received yet
    auto close = p.client_output();
    record.insert(record.end(), close.begin(), close.end());
    p.give(record);
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::Closed);
    CHECK(got == bytes_of("bye"));  // the data before the close_notify is not lost
}

TEST_CASE("the server's close_notify reaches the client after its last data", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name));
    p.handshake();
    CHECK(p.server.uses_record_layer() == (name == "TLS 1.3"));
    REQUIRE(p.server.write(bytes_of("connection.close-ok")));
    p.server.shutdown();
    p.deliver_server_output();
    std::vector<std::byte> buf(100);
    int n = SSL_read(p.client, buf.data(), static_cast<int>(buf.size()));
    REQUIRE(n == 19);
    n = SSL_read(p.client, buf.data(), static_cast<int>(buf.size()));
    CHECK(n == 0);
    CHECK(SSL_get_error(p.client, n) == SSL_ERROR_ZERO_RETURN);
    CHECK((SSL_get_shutdown(p.client) & SSL_RECEIVED_SHUTDOWN) != 0);
    // The client answers; the server sees the close while it reads on for it.
    REQUIRE(SSL_shutdown(p.client) == 1);
    p.give(p.client_output());
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::Closed);
    CHECK(got.empty());
}

TEST_CASE("a record whose bytes were changed is a TLS error", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    // Small and larger records: the record layer opens them with different libraries.
    const std::size_t size = GENERATE(std::size_t{100}, std::size_t{2000});
    INFO(size << " B");
    Pair p(version_named(name));
    p.handshake();
    auto record = p.client_record(pattern(size));
    record[record.size() - 20] ^= std::byte{0x01};
    p.expect_refused(record);
    CHECK(p.server.uses_record_layer() == (name == "TLS 1.3"));
    // OpenSSL's words for TLS 1.2 are "cipher operation failed"; the record layer uses the ones
    // OpenSSL has for TLS 1.3.
    if (name == "TLS 1.3") CHECK(describe_tls_error(p.server.error(), {}) == "decryption failed or bad record mac");
    CHECK(alert_at_client(p) == SSL_AD_BAD_RECORD_MAC);
}

TEST_CASE("a truncated record followed by the next one is a TLS error", "[tls]") {
    Pair p;
    p.handshake();
    auto first = p.client_record(pattern(100));
    auto second = p.client_record(pattern(100));
    std::vector<std::byte> wire(first.begin(), first.end() - 30);
    wire.insert(wire.end(), second.begin(), second.end());
    p.expect_refused(wire);
}

TEST_CASE("a record header declaring more than TLS allows is refused without waiting for it", "[tls]") {
    Pair p;
    p.handshake();
    const std::byte header[] = {std::byte{23}, std::byte{3}, std::byte{3}, std::byte{0xff}, std::byte{0xff}};
    p.give(header);
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::Failed);
    CHECK(p.server.error());
    CHECK(p.server.uses_record_layer());
    CHECK(alert_at_client(p) == SSL_AD_RECORD_OVERFLOW);
}

TEST_CASE("random bytes after the handshake are a TLS error, never a crash", "[tls]") {
    std::mt19937 rng(11);
    for (int round = 0; round < 20; ++round) {
        INFO("round " << round);
        Pair p;
        p.handshake();
        std::vector<std::byte> garbage(64 + rng() % 2000);
        for (auto& b : garbage) b = static_cast<std::byte>(rng());
        // Every other round a valid-looking header: application data, its length exactly the rest.
        if (round % 2 == 0) {
            std::size_t len = garbage.size() - record_header;
            garbage[0] = std::byte{23};
            garbage[1] = std::byte{3};
            garbage[2] = std::byte{3};
            garbage[3] = static_cast<std::byte>(len >> 8);
            garbage[4] = static_cast<std::byte>(len & 0xff);
        }
        p.give(garbage);
        std::vector<std::byte> got;
        Status status = p.read_all(got);
        // A length running past the input waits for more; anything complete fails.
        if (status == Status::WantRead) {
            CHECK(round % 2 == 1);
        } else {
            CHECK(status == Status::Failed);
            CHECK(p.server.error());
        }
        CHECK(got.empty());
    }
}

TEST_CASE("plain AMQP on the TLS port fails the handshake with a hint", "[tls]") {
    std::string verify_failure;
    TlsSession server(server_context(), verify_failure);
    std::vector<std::byte> header = bytes_of(std::string("AMQP\0\0\x09\x01", 8));
    server.set_input(header);
    CHECK(server.handshake() == Status::Failed);
    CHECK(server.error());
    CHECK(describe_tls_error(server.error(), verify_failure).find("does not speak TLS") != std::string::npos);
    // Whatever the server answers is a TLS alert, never application data.
    if (server.has_output()) CHECK(std::to_integer<int>(server.output()[0]) == 21);
}

TEST_CASE("garbage during the handshake fails it", "[tls]") {
    std::string verify_failure;
    TlsSession server(server_context(), verify_failure);
    // A handshake record header, then a ClientHello with an absurd length.
    const std::byte bytes[] = {std::byte{22}, std::byte{3},    std::byte{1},    std::byte{0},    std::byte{8},
                               std::byte{1},  std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{3},
                               std::byte{3},  std::byte{0},    std::byte{0}};
    server.set_input(bytes);
    CHECK(server.handshake() == Status::Failed);
    CHECK(server.error());
}

TEST_CASE("a handshake cut at every byte of the ClientHello waits, then completes", "[tls]") {
    Pair probe;
    REQUIRE(SSL_do_handshake(probe.client) != 1);
    const auto hello = probe.client_output();
    REQUIRE(hello.size() > record_header);
    for (std::size_t cut = 1; cut < hello.size(); ++cut) {
        INFO("cut after byte " << cut << " of " << hello.size());
        std::string verify_failure;
        TlsSession server(server_context(), verify_failure);
        std::vector<std::byte> buffer(hello.begin(), hello.begin() + static_cast<std::ptrdiff_t>(cut));
        server.set_input(buffer);
        REQUIRE(server.handshake() == Status::WantRead);
        REQUIRE_FALSE(server.has_output());
        server.keep_input();
        buffer.assign(hello.begin() + static_cast<std::ptrdiff_t>(cut), hello.end());
        server.set_input(buffer);
        REQUIRE(server.handshake() == Status::WantRead);  // the client's Finished is to come
        REQUIRE(server.has_output());                     // ServerHello and the rest
    }
}

TEST_CASE("records left unread when the reader stops survive the reuse of the receive buffer", "[tls]") {
    Pair p;
    p.handshake();
    std::vector<std::byte> wire, expected;
    for (int i = 0; i < 3; ++i) {
        auto plain = pattern(100 + 50 * static_cast<std::size_t>(i));
        auto record = p.client_record(plain);
        wire.insert(wire.end(), record.begin(), record.end());
        expected.insert(expected.end(), plain.begin(), plain.end());
    }
    p.give(wire);
    // The core stops wanting input after one record (backpressure): the rest stays in the session.
    TlsSession::start_reads();
    std::vector<std::byte> into(64 * 1024);
    std::size_t n = 0;
    REQUIRE(p.server.read(into, n) == Status::Ok);
    std::vector<std::byte> got(into.begin(), into.begin() + static_cast<std::ptrdiff_t>(n));
    p.reuse_input_buffer();
    CHECK(p.server.has_buffered());
    // Resumed later with nothing new from the socket: one more record, and it stops again.
    REQUIRE(p.server.read(into, n) == Status::Ok);
    got.insert(got.end(), into.begin(), into.begin() + static_cast<std::ptrdiff_t>(n));
    p.server.keep_input();
    CHECK(p.server.has_buffered());
    // Then to the end, and then with a fourth record.
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == expected);
    p.give(p.client_record(bytes_of("fourth")));
    got.clear();
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == bytes_of("fourth"));
}

TEST_CASE("after a read that used up the input, nothing is buffered and a read would want more", "[tls]") {
    // The transport stops reading on has_buffered() false rather than call SSL_read to learn it.
    Pair p;
    p.handshake();
    auto first = p.client_record(bytes_of("one"));
    auto second = p.client_record(bytes_of("two"));
    std::vector<std::byte> wire(first.begin(), first.end());
    wire.insert(wire.end(), second.begin(), second.end());
    p.give(wire);
    TlsSession::start_reads();
    std::vector<std::byte> into(1024);
    std::size_t n = 0;
    REQUIRE(p.server.read(into, n) == Status::Ok);
    CHECK(p.server.has_buffered());  // the second record
    REQUIRE(p.server.read(into, n) == Status::Ok);
    CHECK(std::string(reinterpret_cast<const char*>(into.data()), n) == "two");
    CHECK_FALSE(p.server.has_buffered());
    CHECK(p.server.read(into, n) == Status::WantRead);
}

// ---- Warren's TLS 1.3 record layer (Tls13Records, after OpenSSL's handshake) ----

TEST_CASE("TLS 1.3 with AES-256-GCM or ChaCha20-Poly1305 moves to Warren's record layer", "[tls]") {
    const std::string suite = GENERATE(std::string(aes256), std::string(chacha));
    INFO(suite);
    Pair p(TLS1_3_VERSION, suite.c_str());
    p.handshake();
    CHECK(std::string(SSL_get_cipher_name(p.client)) == suite);
    REQUIRE(p.server.uses_record_layer());

    // 100 records in one input, of 1 to about 3,000 bytes.
    std::vector<std::byte> wire, expected;
    for (std::size_t i = 0; i < 100; ++i) {
        auto plain = pattern(1 + i * 31);
        auto record = p.client_record(plain);
        wire.insert(wire.end(), record.begin(), record.end());
        expected.insert(expected.end(), plain.begin(), plain.end());
    }
    p.give(wire);
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == expected);
    CHECK(p.server.records_opened() == 100);

    // Three records one byte at a time, then a full 16 KiB one.
    wire.clear();
    expected.clear();
    for (std::size_t size : {std::size_t{5}, std::size_t{300}, std::size_t{16384}}) {
        auto plain = pattern(size);
        auto record = p.client_record(plain);
        wire.insert(wire.end(), record.begin(), record.end());
        expected.insert(expected.end(), plain.begin(), plain.end());
    }
    got.clear();
    for (std::size_t i = 0; i < wire.size(); ++i) {
        p.give(std::span(wire).subspan(i, 1));
        REQUIRE(p.read_all(got) == Status::WantRead);
        REQUIRE_FALSE(p.server.has_buffered());  // a partial record is not something to read
    }
    CHECK(got == expected);
    CHECK(p.server.records_opened() == 103);

    // The other way: records of at most 16 KiB of data, each read by OpenSSL.
    for (std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{16384}, std::size_t{40000}}) {
        INFO("write of " << size);
        auto reply = pattern(size);
        REQUIRE(p.server.write(reply));
        auto out = p.server.output();
        for (std::size_t len : record_lengths({out.data(), out.size()})) CHECK(len <= max_record_data + 1 + 16);
        p.deliver_server_output();
        CHECK(p.client_reads() == reply);
    }
    CHECK(p.server.uses_record_layer());
}

TEST_CASE("TLS 1.3 with AES-128-GCM and TLS 1.2 stay on OpenSSL's records", "[tls]") {
    const std::string name = GENERATE(std::string("TLS 1.2"), std::string("TLS 1.3"));
    INFO(name);
    Pair p(version_named(name), name == "TLS 1.3" ? aes128 : nullptr);
    p.handshake();
    CHECK_FALSE(p.server.uses_record_layer());
    auto plain = pattern(2000);
    p.give(p.client_record(plain));
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == plain);
    REQUIRE(p.server.write(plain));
    p.deliver_server_output();
    CHECK(p.client_reads() == plain);
    CHECK(p.server.records_opened() == 0);
}

TEST_CASE("the server prefers AES-256-GCM over the client's order", "[tls]") {
    Pair p(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
    p.handshake();
    CHECK(std::string(SSL_get_cipher_name(p.client)) == aes256);
    CHECK(p.server.uses_record_layer());
    CHECK(SSL_get0_peer_certificate(p.client) != nullptr);
}

TEST_CASE("application data the client sent with its Finished is read after the handshake", "[tls]") {
    const std::string suite = GENERATE(std::string(aes256), std::string(chacha), std::string(aes128));
    INFO(suite);
    Pair p(TLS1_3_VERSION, suite.c_str());
    REQUIRE(SSL_do_handshake(p.client) != 1);
    p.give(p.client_output());
    REQUIRE(p.server.handshake() == Status::WantRead);
    p.reuse_input_buffer();
    p.deliver_server_output();
    REQUIRE(SSL_do_handshake(p.client) == 1);  // its Finished is written
    auto first = bytes_of("AMQP\0\0\x09\x01 and the first frames");
    REQUIRE(SSL_write(p.client, first.data(), static_cast<int>(first.size())) == int(first.size()));
    auto second = pattern(700);
    REQUIRE(SSL_write(p.client, second.data(), static_cast<int>(second.size())) == int(second.size()));
    p.give(p.client_output());
    REQUIRE(p.server.handshake() == Status::Ok);
    p.reuse_input_buffer();  // as the connection does once the handshake is done
    CHECK(p.server.uses_record_layer() == (suite != aes128));
    CHECK(p.server.has_buffered());
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    first.insert(first.end(), second.begin(), second.end());
    CHECK(got == first);
}

TEST_CASE("a KeyUpdate from the client changes the read keys, and ours when it asks", "[tls]") {
    const bool requested = GENERATE(false, true);
    const std::string suite = GENERATE(std::string(aes256), std::string(chacha));
    INFO(suite << (requested ? ", update_requested" : ", update_not_requested"));
    Pair p(TLS1_3_VERSION, suite.c_str());
    p.handshake();
    REQUIRE(p.server.uses_record_layer());
    for (int round = 0; round < 3; ++round) {
        INFO("round " << round);
        REQUIRE(SSL_key_update(p.client, requested ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
        auto message = bytes_of("after key update " + std::to_string(round));
        auto wire = p.client_record(message);  // the KeyUpdate, then the data under the new keys
        CHECK(record_lengths(wire).size() == 2);
        p.give(wire);
        std::vector<std::byte> got;
        CHECK(p.read_all(got) == Status::WantRead);
        CHECK(got == message);
        // Asked to, the server answered with a KeyUpdate of its own, and writes under new keys
        // (the client would fail to read otherwise).
        CHECK(p.server.has_output() == requested);
        auto reply = pattern(500 + static_cast<std::size_t>(round));
        REQUIRE(p.server.write(reply));
        p.deliver_server_output();
        CHECK(p.client_reads() == reply);
    }
}

TEST_CASE("after key_update_interval records a direction's key changes: ours, and the client's when asked", "[tls]") {
    const std::string suite = GENERATE(std::string(aes256), std::string(chacha));
    INFO(suite);
    Pair p(TLS1_3_VERSION, suite.c_str());
    p.handshake();
    REQUIRE(p.server.uses_record_layer());
    p.server.set_key_update_interval(3);
    // The server writes more than the interval: it changes its keys every 3 records, asking the
    // client to change its own the first time; the client reads every record under new keys.
    for (int i = 0; i < 10; ++i) {
        auto reply = pattern(100 + static_cast<std::size_t>(i));
        REQUIRE(p.server.write(reply));
        p.deliver_server_output();
        CHECK(p.client_reads() == reply);
    }
    CHECK(p.server.key_updates_sent() == 3);
    // The client answered the request with its own KeyUpdate before its next data: read.
    // Then the client writes more than the interval: the server asks again (it had its answer).
    for (int i = 0; i < 10; ++i) {
        auto message = bytes_of("from the client " + std::to_string(i));
        p.give(p.client_record(message));
        std::vector<std::byte> got;
        CHECK(p.read_all(got) == Status::WantRead);
        CHECK(got == message);
        p.deliver_server_output();
        CHECK(p.client_reads().empty());  // the client takes in the server's KeyUpdates
    }
    CHECK(p.server.key_updates_sent() >= 5);
    // Both directions still work.
    auto last = pattern(700);
    REQUIRE(p.server.write(last));
    p.deliver_server_output();
    CHECK(p.client_reads() == last);
    auto message = bytes_of("still readable");
    p.give(p.client_record(message));
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == message);
}

TEST_CASE("a KeyUpdate cut across records, padding, empty records and user_canceled are read", "[tls]") {
    Pair p;
    p.handshake();
    REQUIRE(p.server.uses_record_layer());
    auto client = p.forged_client();
    std::vector<std::byte> wire;
    auto add = [&](std::uint8_t type, std::vector<std::byte> content) {
        auto record = forged(*client, type, std::move(content));
        wire.insert(wire.end(), record.begin(), record.end());
    };
    // "padded", its type (23) and 100 zeros of padding: the type byte seal adds is a zero.
    auto padded = bytes_of("padded");
    padded.push_back(std::byte{23});
    padded.resize(padded.size() + 99);
    add(0, padded);
    add(23, {});                                          // empty application data
    add(21, {std::byte{1}, std::byte{90}});               // warning: user_canceled
    add(22, {std::byte{24}, std::byte{0}});               // KeyUpdate, the first part
    add(22, {std::byte{0}, std::byte{1}, std::byte{0}});  // and the rest: not requested
    REQUIRE(client->update_write());
    add(23, bytes_of("after"));
    p.give(wire);
    std::vector<std::byte> got;
    CHECK(p.read_all(got) == Status::WantRead);
    CHECK(got == bytes_of("paddedafter"));
    CHECK_FALSE(p.server.has_output());
}

TEST_CASE("records a client must not send past the handshake end the connection with the matching alert", "[tls]") {
    struct Case {
        const char* what;
        int alert;  // what the client must receive; -1: nothing
        std::function<std::vector<std::byte>(Tls13Records&)> wire;
    };
    auto b = [](std::initializer_list<int> v) {
        std::vector<std::byte> out;
        for (int x : v) out.push_back(static_cast<std::byte>(x));
        return out;
    };
    const std::vector<Case> cases = {
        {"a NewSessionTicket", SSL_AD_UNEXPECTED_MESSAGE,
         [&](auto& c) {
             return forged(c, 22, b({4, 0, 0, 0}));
         }},
        {"a KeyUpdate not ending its record", SSL_AD_UNEXPECTED_MESSAGE,
         [&](auto& c) {
             return forged(c, 22, b({24, 0, 0, 1, 0, 24}));
         }},
        {"application data inside a cut KeyUpdate", SSL_AD_UNEXPECTED_MESSAGE,
         [&](auto& c) {
             auto wire = forged(c, 22, b({24, 0}));
             auto data = forged(c, 23, b({'x'}));
             wire.insert(wire.end(), data.begin(), data.end());
             return wire;
         }},
        {"a KeyUpdate with request 2", SSL_AD_ILLEGAL_PARAMETER,
         [&](auto& c) {
             return forged(c, 22, b({24, 0, 0, 1, 2}));
         }},
        {"a KeyUpdate of length 2", SSL_AD_DECODE_ERROR,
         [&](auto& c) {
             return forged(c, 22, b({24, 0, 0, 2}));
         }},
        {"an alert of three bytes", SSL_AD_DECODE_ERROR,
         [&](auto& c) {
             return forged(c, 21, b({2, 40, 0}));
         }},
        {"an inner plaintext of zeros", SSL_AD_UNEXPECTED_MESSAGE,
         [&](auto& c) {
             return forged(c, 0, b({0, 0}));
         }},
        {"a change_cipher_spec inside", SSL_AD_UNEXPECTED_MESSAGE, [&](auto& c) { return forged(c, 20, b({1})); }},
        {"a handshake record in the clear", SSL_AD_UNEXPECTED_MESSAGE,
         [&](auto&) {
             return b({22, 3, 3, 0, 5, 24, 0, 0, 1, 0});
         }},
        {"a ciphertext shorter than the tag", SSL_AD_BAD_RECORD_MAC,
         [&](auto&) { return b({23, 3, 3, 0, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}); }},
        {"a length over 2^14 + 256", SSL_AD_RECORD_OVERFLOW,
         [&](auto&) {
             return b({23, 3, 3, 0x41, 0x01});
         }},
        {"a plaintext over 2^14 + 1", SSL_AD_RECORD_OVERFLOW,
         [&](auto& c) { return forged(c, 23, std::vector<std::byte>(max_record_data + 1, std::byte{'x'})); }},
        {"the client's fatal alert", -1,
         [&](auto& c) {
             return forged(c, 21, b({2, 40}));
         }},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        Pair p;
        p.handshake();
        REQUIRE(p.server.uses_record_layer());
        auto client = p.forged_client();
        auto wire = c.wire(*client);
        // What follows the bad record is never read.
        auto after = forged(*client, 23, bytes_of("never"));
        wire.insert(wire.end(), after.begin(), after.end());
        p.expect_refused(wire);
        CHECK_FALSE(describe_tls_error(p.server.error(), {}).empty());
        if (c.alert < 0) {
            CHECK_FALSE(p.server.has_output());
            CHECK(describe_tls_error(p.server.error(), {}).find("handshake failure") != std::string::npos);
        } else {
            CHECK(alert_at_client(p) == c.alert);
        }
        // And it stays failed, writing nothing more.
        std::vector<std::byte> into(100);
        std::size_t n = 0;
        CHECK(p.server.read(into, n) == Status::Failed);
        CHECK_FALSE(p.server.write(bytes_of("no")));
    }
}

TEST_CASE("a record stream cut anywhere and corrupted anywhere hands out only authentic data", "[tls]") {
    std::mt19937 rng(2026);
    for (int round = 0; round < 100; ++round) {
        INFO("round " << round);
        Pair p(TLS1_3_VERSION, round % 2 == 0 ? aes256 : chacha);
        p.handshake();
        REQUIRE(p.server.uses_record_layer());
        std::vector<std::byte> wire, expected;
        for (int i = 0; i < 20; ++i) {
            const bool large = rng() % 4 == 0;
            auto plain = pattern(1 + rng() % (large ? 17000 : 300));
            plain.resize(std::min(plain.size(), max_record_data));
            auto record = p.client_record(plain);
            wire.insert(wire.end(), record.begin(), record.end());
            expected.insert(expected.end(), plain.begin(), plain.end());
        }
        const bool corrupt = round % 3 != 0;
        if (corrupt) wire[rng() % wire.size()] ^= static_cast<std::byte>(1 + rng() % 255);
        std::vector<std::byte> got;
        Status status = Status::WantRead;
        for (std::size_t at = 0; at < wire.size() && status == Status::WantRead;) {
            std::size_t n = std::min<std::size_t>(wire.size() - at, 1 + rng() % 5000);
            p.give(std::span(wire).subspan(at, n));
            at += n;
            status = p.read_all(got, 1 + rng() % 20000);
        }
        // Only a prefix of what was sent, and all of it unless a byte was changed.
        REQUIRE(got.size() <= expected.size());
        CHECK(std::equal(got.begin(), got.end(), expected.begin()));
        if (!corrupt) {
            CHECK(status == Status::WantRead);
            CHECK(got == expected);
        } else {
            CHECK(status != Status::Ok);
        }
    }
}
