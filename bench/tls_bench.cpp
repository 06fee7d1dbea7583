// warren-tls-bench: what TLS costs the broker per record, in thread CPU time (so that a busy
// machine inflates it less than wall time). The broker's TlsSession decrypts records an OpenSSL
// client made, one record per input (a client sending a record per publish and per ack) or 100
// (pipelined), and encrypts one write per turn; TLS 1.3 with each suite (AES-256-GCM and ChaCha20
// on Warren's record layer, AES-128-GCM on OpenSSL's) and TLS 1.2, 80 B and 1,100 B records.
#include <fmt/format.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "broker/net/tls_context.hpp"
#include "broker/net/tls_session.hpp"

namespace {

using warren::broker::net::TlsContextPtr;
using warren::broker::net::TlsSession;

double cpu_us() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

[[noreturn]] void fail(const std::string& what) {
    fmt::print(stderr, "warren-tls-bench: {}\n", what);
    std::exit(1);
}

// A server session and an OpenSSL client over memory BIOs, past the handshake.
struct Pair {
    std::string verify_failure;
    TlsSession server;
    SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
    SSL* client = nullptr;
    BIO* to_client = BIO_new(BIO_s_mem());
    BIO* from_client = BIO_new(BIO_s_mem());

    Pair(const TlsContextPtr& context, int version, const char* suite) : server(context, verify_failure) {
        SSL_CTX_set_min_proto_version(client_ctx, version);
        SSL_CTX_set_max_proto_version(client_ctx, version);
        if (suite && SSL_CTX_set_ciphersuites(client_ctx, suite) != 1) fail(fmt::format("no suite {}", suite));
        client = SSL_new(client_ctx);
        SSL_set_bio(client, to_client, from_client);
        SSL_set_connect_state(client);
        std::vector<std::byte> in;
        bool server_done = false;
        for (int round = 0; round < 10; ++round) {
            bool client_done = SSL_do_handshake(client) == 1;
            in = client_bytes();
            server.set_input(in);
            if (!server_done) server_done = server.handshake() == TlsSession::Status::Ok;
            server.keep_input();
            to_client_all();
            if (client_done && server_done) return;
        }
        fail("the handshake did not finish");
    }
    ~Pair() {
        SSL_free(client);
        SSL_CTX_free(client_ctx);
    }
    std::vector<std::byte> client_bytes() {
        std::vector<std::byte> out(static_cast<std::size_t>(BIO_ctrl_pending(from_client)));
        if (!out.empty()) BIO_read(from_client, out.data(), static_cast<int>(out.size()));
        return out;
    }
    void to_client_all() {
        while (server.has_output()) {
            auto out = server.output();
            BIO_write(to_client, out.data(), static_cast<int>(out.size()));
            server.output_sent(out.size());
        }
    }
};

struct Result {
    double read_us = 1e9;
    double write_us = 1e9;
    std::string cipher;
    bool record_layer = false;
};

// The best of `rounds` rounds of `records` records each.
Result measure(const TlsContextPtr& context, int version, const char* suite, std::size_t size, std::size_t per_input) {
    Pair p(context, version, suite);
    const std::size_t records = std::min<std::size_t>(20000, (64u << 20) / size);  // 16 KiB: 4,096
    const std::vector<std::byte> plain(size, std::byte{'x'});
    std::vector<std::byte> into(256 * 1024), input;
    Result best;
    best.cipher = SSL_get_cipher(p.client);
    best.record_layer = p.server.uses_record_layer();
    for (int round = 0; round < 10; ++round) {
        std::vector<std::byte> wire;
        std::vector<std::size_t> ends;  // where each input ends
        for (std::size_t i = 0; i < records; ++i) {
            SSL_write(p.client, plain.data(), static_cast<int>(plain.size()));
            if ((i + 1) % per_input == 0 || i + 1 == records) {
                auto bytes = p.client_bytes();
                wire.insert(wire.end(), bytes.begin(), bytes.end());
                ends.push_back(wire.size());
            }
        }
        std::size_t got = 0, from = 0;
        double start = cpu_us();
        TlsSession::start_reads();
        for (std::size_t end : ends) {
            // As TcpConnection::tls_decrypt does: read while the session has something.
            p.server.set_input(std::span(wire).subspan(from, end - from));
            from = end;
            while (p.server.has_buffered()) {
                std::size_t n = 0;
                if (p.server.read(into, n) != TlsSession::Status::Ok) break;
                got += n;
            }
            p.server.keep_input();
        }
        best.read_us = std::min(best.read_us, (cpu_us() - start) / static_cast<double>(records));
        if (got != records * size) fail(fmt::format("decrypted {} bytes of {}", got, records * size));
        if (best.record_layer && p.server.records_opened() != records * static_cast<std::size_t>(round + 1))
            fail("the record layer did not open every record");

        start = cpu_us();
        for (std::size_t i = 0; i < records; ++i) {
            if (!p.server.write(plain)) fail("a write failed");
            p.server.output_sent(p.server.output().size());  // sent: the bytes are not looked at
        }
        best.write_us = std::min(best.write_us, (cpu_us() - start) / static_cast<double>(records));
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fmt::print(stderr, "usage: warren-tls-bench CERTFILE KEYFILE   (see bench/README.md, \"TLS\")\n");
        return 2;
    }
    warren::broker::TlsOptions options;
    options.certfile = argv[1];
    options.keyfile = argv[2];
    auto made = warren::broker::net::make_tls_context(options, "warren-tls-bench");
    if (!made.context) fail(made.error);
    fmt::print("CPU µs per record, best of 10 rounds of 20,000 records, 4,096 at 16 KiB (server side: TlsSession)\n");
    fmt::print("{:<8} {:<30} {:<8} {:>7} {:>16} {:>16} {:>8}\n", "version", "cipher", "records", "record",
               "read, 1/input", "read, 100/input", "write");
    struct Row {
        int version;
        const char* suite;  // the client's TLS 1.3 suites; null: its defaults
    };
    for (Row row : {Row{TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384"}, Row{TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256"},
                    Row{TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"}, Row{TLS1_2_VERSION, nullptr}}) {
        for (std::size_t size : {std::size_t{80}, std::size_t{1100}, std::size_t{16384}}) {
            Result one = measure(made.context, row.version, row.suite, size, 1);
            Result many = measure(made.context, row.version, row.suite, size, 100);
            fmt::print("{:<8} {:<30} {:<8} {:>5} B {:>16.3f} {:>16.3f} {:>8.3f}\n",
                       row.version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2", one.cipher,
                       one.record_layer ? "Warren" : "OpenSSL", size, one.read_us, many.read_us,
                       std::min(one.write_us, many.write_us));
        }
    }
}
