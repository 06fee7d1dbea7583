// The byte stream an HTTP connection runs over: plain TCP today; a TLS stream implements the
// same three calls for HTTPS.
#pragma once

#include <asio.hpp>
#include <functional>
#include <span>
#include <string>

namespace warren::broker::net {

class HttpStream {
public:
    using Done = std::function<void(const asio::error_code&, std::size_t)>;
    virtual ~HttpStream() = default;
    virtual void read_some(std::span<char> into, Done done) = 0;
    virtual void write(const std::string& bytes, Done done) = 0;  // `bytes` lives until `done`
    virtual void close() = 0;
};

class TcpHttpStream final : public HttpStream {
public:
    explicit TcpHttpStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
    asio::ip::tcp::socket& socket() { return socket_; }
    void read_some(std::span<char> into, Done done) override {
        socket_.async_read_some(asio::buffer(into.data(), into.size()), std::move(done));
    }
    void write(const std::string& bytes, Done done) override {
        asio::async_write(socket_, asio::buffer(bytes), std::move(done));
    }
    void close() override {
        asio::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

private:
    asio::ip::tcp::socket socket_;
};

}  // namespace warren::broker::net
