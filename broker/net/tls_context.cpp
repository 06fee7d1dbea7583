// See tls_context.hpp. The files are read here, not by OpenSSL's file functions, so that a
// missing or unreadable file, a file that is not PEM and a key that does not match each get
// their own message naming the configuration key.
#include "broker/net/tls_context.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "broker/net/tls_session.hpp"

namespace warren::broker::net {

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

// OpenSSL's reason for the last failure, and the error queue emptied for the next call.
std::string openssl_reason() {
    unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0) return "no reason given";
    const char* reason = ERR_reason_error_string(code);
    return reason ? reason : fmt::format("error {:#x}", code);
}

bool is_no_pem(unsigned long code) {
    return ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

// One of the listener's files: its key, its name and its contents.
struct PemFile {
    std::string key;  // "tls_listeners[0].certfile"
    std::string path;
    std::string text;

    BioPtr bio() const { return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))); }
    std::string error(std::string_view what) const { return fmt::format("{}: '{}' {}", key, path, what); }
};

// Reads the whole file: the error names the key, the file and the system's reason.
bool read_file(PemFile& f, std::string& error) {
    std::ifstream in(f.path, std::ios::binary);
    if (!in) {
        error = fmt::format("{}: cannot read '{}': {}", f.key, f.path, std::strerror(errno));
        return false;
    }
    f.text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) {
        error = fmt::format("{}: cannot read '{}': {}", f.key, f.path, std::strerror(errno));
        return false;
    }
    return true;
}

// Every certificate in a PEM file, in order. An empty result sets `error`.
std::vector<X509Ptr> read_certificates(const PemFile& f, std::string& error) {
    std::vector<X509Ptr> certs;
    BioPtr bio = f.bio();
    ERR_clear_error();
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
    unsigned long code = ERR_peek_last_error();
    // The loop ends with "no start line" once the certificates run out; anything else is a
    // certificate that is there but broken.
    if (code != 0 && !is_no_pem(code)) {
        error = f.error(fmt::format("holds a malformed certificate (certificate {} in the file: {})", certs.size() + 1,
                                    openssl_reason()));
        certs.clear();
        return certs;
    }
    ERR_clear_error();
    if (certs.empty()) error = f.error("holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
    return certs;
}

// A key file must not ask for a passphrase: the broker starts unattended. OpenSSL would read
// one from the terminal without this callback.
int no_passphrase(char*, int, int, void*) {
    return -1;
}

KeyPtr read_private_key(const PemFile& f, std::string& error) {
    // OpenSSL 3's decoders report a file without any key as "unsupported": say it plainly.
    if (f.text.find("PRIVATE KEY-----") == std::string::npos) {
        error = f.error("holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\")");
        return nullptr;
    }
    BioPtr bio = f.bio();
    ERR_clear_error();
    KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (key) return key;
    unsigned long code = ERR_peek_last_error();
    if (is_no_pem(code)) {
        ERR_clear_error();
        error = f.error("holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\")");
    } else if (ERR_GET_LIB(code) == ERR_LIB_PEM && (ERR_GET_REASON(code) == PEM_R_BAD_PASSWORD_READ ||
                                                    ERR_GET_REASON(code) == PEM_R_PROBLEMS_GETTING_PASSWORD)) {
        ERR_clear_error();
        error = f.error("holds a private key encrypted with a passphrase; Warren needs it unencrypted");
    } else {
        error = f.error(fmt::format("holds a malformed private key ({})", openssl_reason()));
    }
    return nullptr;
}

std::string asn1_time_text(const ASN1_TIME* t) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "an unreadable date";
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string subject_of(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) return "?";
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// A server certificate outside its validity period still loads (the operator may be about to
// replace it), but the log says why every client refuses it.
void check_validity(X509* cert, const PemFile& f, std::vector<std::string>& warnings) {
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        warnings.push_back(f.error(fmt::format("holds a certificate that expired on {}; clients will refuse it",
                                               asn1_time_text(X509_get0_notAfter(cert)))));
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        warnings.push_back(f.error(fmt::format("holds a certificate not valid before {}; clients will refuse it",
                                               asn1_time_text(X509_get0_notBefore(cert)))));
}

}  // namespace

TlsContextResult make_tls_context(const TlsOptions& options, std::string_view where) {
    TlsContextResult result;
    std::string& error = result.error;
    PemFile certfile{fmt::format("{}.certfile", where), options.certfile, {}};
    PemFile keyfile{fmt::format("{}.keyfile", where), options.keyfile, {}};
    PemFile cafile{fmt::format("{}.cacertfile", where), options.cacertfile, {}};
    if (!read_file(certfile, error) || !read_file(keyfile, error)) return result;
    if (!options.cacertfile.empty() && !read_file(cafile, error)) return result;

    std::vector<X509Ptr> chain = read_certificates(certfile, error);
    if (chain.empty()) return result;
    KeyPtr key = read_private_key(keyfile, error);
    if (!key) return result;
    std::vector<X509Ptr> cas;
    if (!options.cacertfile.empty()) {
        cas = read_certificates(cafile, error);
        if (cas.empty()) return result;
    }

    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* ctx = context->native_handle();
    // Versions: 1.2 and 1.3 unless the listener narrows them (config.cpp allows nothing older).
    SSL_CTX_set_min_proto_version(ctx, options.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, options.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    // No compression (CRIME), no renegotiation (a client could make the loop do handshakes at
    // will), our cipher order.
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // TLS 1.3: the two suites whose records Warren seals itself (Tls13Records) first, so that
    // every client offering AES-256-GCM gets it (Go's prefers AES-128); AES-128-GCM stays on
    // OpenSSL's records, about 0.25 µs more per small record.
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
    // No session tickets (RabbitMQ's Erlang TLS sends none by default either): the server then
    // writes nothing under the application keys during the handshake, so that its records can
    // be taken over from sequence 0. TLS 1.2 resumption by session id is unaffected.
    SSL_CTX_set_num_tickets(ctx, 0);
    // The traffic secrets for that handover; only AMQPS sessions keep them.
    SSL_CTX_set_keylog_callback(ctx, TlsSession::keep_traffic_secret);

    ERR_clear_error();
    if (SSL_CTX_use_certificate(ctx, chain.front().get()) != 1) {
        error = certfile.error(fmt::format("holds a certificate OpenSSL refuses ({})", openssl_reason()));
        return result;
    }
    for (std::size_t i = 1; i < chain.size(); ++i) {
        // add_extra_chain_cert takes ownership.
        if (SSL_CTX_add_extra_chain_cert(ctx, chain[i].get()) != 1) {
            error =
                certfile.error(fmt::format("holds an intermediate certificate OpenSSL refuses ({})", openssl_reason()));
            return result;
        }
        chain[i].release();
    }
    if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        error = fmt::format("{}: the private key in '{}' does not belong to the certificate in {} '{}'", keyfile.key,
                            keyfile.path, certfile.key, certfile.path);
        return result;
    }
    check_validity(chain.front().get(), certfile, result.warnings);

    if (!cas.empty()) {
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        for (auto& ca : cas) {
            // The same CA twice in a file is harmless; X509_STORE_add_cert accepts it in 3.0.
            if (X509_STORE_add_cert(store, ca.get()) != 1 || SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
                error = cafile.error(fmt::format("holds a CA certificate OpenSSL refuses ({})", openssl_reason()));
                return result;
            }
        }
    }
    if (options.verify_peer) {
        int mode = SSL_VERIFY_PEER | (options.fail_if_no_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
        SSL_CTX_set_verify(ctx, mode, nullptr);
        // Resumed sessions keep the client certificate; OpenSSL refuses to resume without this.
        static const unsigned char session_context[] = "warren-amqps";
        SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    result.context = std::move(context);
    return result;
}

namespace {
// Where a session's verify callback records a refusal: the std::string given to
// record_verify_failure, in the SSL's extra data.
int failure_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

int on_verify(int preverified, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* failure = ssl ? static_cast<std::string*>(SSL_get_ex_data(ssl, failure_index())) : nullptr;
    if (!preverified && failure && failure->empty()) {
        X509* cert = X509_STORE_CTX_get_current_cert(store);
        *failure = fmt::format("client certificate '{}' (chain depth {}) refused: {}",
                               cert ? subject_of(cert) : std::string("?"), X509_STORE_CTX_get_error_depth(store),
                               X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
    }
    return preverified;  // the policy is the context's; this only records why
}
}  // namespace

void record_verify_failure(SSL* ssl, std::string& failure) {
    SSL_set_ex_data(ssl, failure_index(), &failure);
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl), on_verify);
}

TlsPeer tls_peer_of(SSL* ssl, bool verify_peer) {
    TlsPeer peer;
    peer.verify_peer = verify_peer;
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return peer;
    peer.has_certificate = true;
    X509_NAME* subject = X509_get_subject_name(cert);
    std::string names;
    for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
        ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        unsigned char* utf8 = nullptr;
        int n = ASN1_STRING_to_UTF8(&utf8, data);
        if (n < 0) continue;  // not convertible: not a name anyone could log in as
        if (!names.empty()) names += ',';
        names.append(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
        OPENSSL_free(utf8);
    }
    if (!names.empty()) peer.common_name = std::move(names);
    return peer;
}

std::string describe_tls_error(const asio::error_code& ec, std::string_view verify_failure) {
    if (!verify_failure.empty()) return std::string(verify_failure);
    if (ec.category() == asio::error::get_ssl_category()) {
        auto code = static_cast<unsigned long>(ec.value());
        int reason = ERR_GET_REASON(code);
        std::string text = ERR_reason_error_string(code) ? ERR_reason_error_string(code) : ec.message();
        if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
            (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST ||
             reason == SSL_R_HTTPS_PROXY_REQUEST || reason == SSL_R_UNKNOWN_PROTOCOL ||
             reason == SSL_R_PACKET_LENGTH_TOO_LONG))
            return fmt::format("{} (the client does not speak TLS: plain AMQP or HTTP on the TLS port?)", text);
        return text;
    }
    if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof)
        return "the client closed the connection during the handshake";
    return ec.message();
}

}  // namespace warren::broker::net
