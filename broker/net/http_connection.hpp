// One HTTP/1.1 connection to the management API: llhttp parses the requests (Node.js's parser:
// request smuggling, chunked bodies and header edge cases are what a hand-written parser gets
// wrong), one request at a time (pipelined requests wait in the buffer, answered in order),
// keep-alive, size limits on the head and the body, and a deadline for slow clients.
#pragma once

#include <llhttp.h>

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "broker/net/http_stream.hpp"
#include "mgmt/api.hpp"

namespace warren::broker::net {

class EventLoop;

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
public:
    // Limits: a request line and headers together, a body, and the time a request may take
    // from its first byte (or a kept-alive connection may stay idle).
    static constexpr std::size_t max_head_bytes = 16 * 1024;
    static constexpr std::size_t max_body_bytes = 32 * 1024 * 1024;
    static constexpr auto request_timeout = std::chrono::seconds(30);

    HttpConnection(EventLoop& loop, std::unique_ptr<HttpStream> stream, std::string peer, bool loopback,
                   mgmt::HttpHandler handler, std::function<void(HttpConnection&)> on_closed);
    ~HttpConnection();

    void start();
    void close();

private:
    // llhttp callbacks
    static int on_message_begin(llhttp_t* p);
    static int on_url(llhttp_t* p, const char* at, std::size_t n);
    static int on_header_field(llhttp_t* p, const char* at, std::size_t n);
    static int on_header_value(llhttp_t* p, const char* at, std::size_t n);
    static int on_headers_complete(llhttp_t* p);
    static int on_body(llhttp_t* p, const char* at, std::size_t n);
    static int on_message_complete(llhttp_t* p);

    void read();
    void parse();
    void dispatch();
    void send(mgmt::HttpResponse response, bool keep_alive);
    void fail(int status);
    void arm_deadline();

    EventLoop& loop_;
    std::unique_ptr<HttpStream> stream_;
    std::string peer_;
    bool loopback_;
    mgmt::HttpHandler handler_;
    std::function<void(HttpConnection&)> on_closed_;
    asio::steady_timer deadline_;

    llhttp_t parser_{};
    llhttp_settings_t settings_{};
    std::string input_;  // bytes read, not yet parsed
    std::array<char, 16 * 1024> chunk_{};
    mgmt::HttpRequest request_;  // the request being parsed
    std::string field_;          // the header name being read
    bool in_value_ = false;
    std::size_t head_bytes_ = 0;
    bool message_done_ = false;  // a whole request is parsed and waits to be answered
    bool busy_ = false;          // the API is answering; nothing more is parsed until it has
    bool reading_ = false;
    bool writing_ = false;
    bool closed_ = false;
    bool keep_alive_ = true;
    bool send_continue_ = false;  // the request asked for "100 Continue" before its body
    std::string output_;
};

}  // namespace warren::broker::net
