// See http_connection.hpp.
#include "broker/net/http_connection.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/log.hpp"
#include "broker/net/event_loop.hpp"

namespace warren::broker::net {

namespace {
HttpConnection* self_of(llhttp_t* p) {
    return static_cast<HttpConnection*>(p->data);
}
}  // namespace

HttpConnection::HttpConnection(EventLoop& loop, std::unique_ptr<HttpStream> stream, std::string peer, bool loopback,
                               mgmt::HttpHandler handler, std::function<void(HttpConnection&)> on_closed)
    : loop_(loop),
      stream_(std::move(stream)),
      peer_(std::move(peer)),
      loopback_(loopback),
      handler_(std::move(handler)),
      on_closed_(std::move(on_closed)),
      deadline_(loop.io()) {
    llhttp_settings_init(&settings_);
    settings_.on_message_begin = &HttpConnection::on_message_begin;
    settings_.on_url = &HttpConnection::on_url;
    settings_.on_header_field = &HttpConnection::on_header_field;
    settings_.on_header_value = &HttpConnection::on_header_value;
    settings_.on_headers_complete = &HttpConnection::on_headers_complete;
    settings_.on_body = &HttpConnection::on_body;
    settings_.on_message_complete = &HttpConnection::on_message_complete;
    llhttp_init(&parser_, HTTP_REQUEST, &settings_);
    parser_.data = this;
}

HttpConnection::~HttpConnection() = default;

void HttpConnection::start() {
    arm_deadline();
    read();
}

void HttpConnection::arm_deadline() {
    deadline_.expires_after(request_timeout);
    deadline_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
        if (ec) return;
        auto self = weak.lock();
        if (!self || self->closed_) return;
        // An answer the client does not read within the time is dropped with the connection; an
        // answer still being built gets more time; a request under way gets 408; an idle
        // kept-alive connection is closed.
        if (self->writing_)
            self->close();
        else if (self->busy_)
            self->arm_deadline();
        else if (self->head_bytes_ > 0)
            self->fail(408);
        else
            self->close();
    });
}

void HttpConnection::read() {
    if (reading_ || closed_ || busy_ || message_done_) return;
    reading_ = true;
    stream_->read_some(chunk_, [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
        self->reading_ = false;
        if (self->closed_) return;
        if (ec) return self->close();
        self->input_.append(self->chunk_.data(), n);
        self->parse();
    });
}

void HttpConnection::parse() {
    // While "100 Continue" is being written, input waits: one write at a time on the stream.
    if (closed_ || busy_ || writing_) return;
    if (!input_.empty()) {
        const llhttp_errno_t err = llhttp_execute(&parser_, input_.data(), input_.size());
        std::size_t used = input_.size();
        if (err == HPE_PAUSED) {
            // One request is complete: the rest (a pipelined request) waits for its turn.
            used = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - input_.data());
            llhttp_resume(&parser_);
        } else if (err != HPE_OK) {
            const int status = err == HPE_USER ? (head_bytes_ > max_head_bytes ? 431 : 413) : 400;
            log::peer(log::Level::Debug, peer_, "HTTP request refused ({}): {}", status, llhttp_errno_name(err));
            return fail(status);
        }
        input_.erase(0, used);
    }
    if (message_done_) {
        send_continue_ = false;
        return dispatch();
    }
    if (send_continue_ && !writing_) {
        send_continue_ = false;
        static const std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
        writing_ = true;
        stream_->write(go_on, [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
            self->writing_ = false;
            if (self->closed_) return;
            if (ec) return self->close();
            self->parse();
        });
        return;
    }
    read();
}

int HttpConnection::on_message_begin(llhttp_t* p) {
    HttpConnection* c = self_of(p);
    c->request_ = {};
    c->field_.clear();
    c->in_value_ = false;
    c->head_bytes_ = 1;
    c->arm_deadline();  // the whole request within request_timeout of its first byte
    return 0;
}

int HttpConnection::on_url(llhttp_t* p, const char* at, std::size_t n) {
    HttpConnection* c = self_of(p);
    c->head_bytes_ += n;
    if (c->head_bytes_ > max_head_bytes) return HPE_USER;
    c->request_.target.append(at, n);
    return 0;
}

int HttpConnection::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
    HttpConnection* c = self_of(p);
    c->head_bytes_ += n;
    if (c->head_bytes_ > max_head_bytes) return HPE_USER;
    if (c->in_value_) {
        c->field_.clear();
        c->in_value_ = false;
    }
    for (std::size_t i = 0; i < n; ++i) c->field_ += static_cast<char>(std::tolower(static_cast<unsigned char>(at[i])));
    return 0;
}

int HttpConnection::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
    HttpConnection* c = self_of(p);
    c->head_bytes_ += n;
    if (c->head_bytes_ > max_head_bytes) return HPE_USER;
    if (!c->in_value_) {
        c->request_.headers.emplace_back(c->field_, std::string());
        c->in_value_ = true;
    }
    c->request_.headers.back().second.append(at, n);
    return 0;
}

int HttpConnection::on_headers_complete(llhttp_t* p) {
    HttpConnection* c = self_of(p);
    c->request_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    // curl asks before sending a large body, and waits a second for this answer otherwise.
    if (const std::string* expect = c->request_.header("expect"); expect && *expect == "100-continue")
        c->send_continue_ = true;
    // A declared body too large is refused before any of it is read.
    if (p->flags & F_CONTENT_LENGTH && p->content_length > max_body_bytes) {
        c->head_bytes_ = 1;
        return HPE_USER;
    }
    return 0;
}

int HttpConnection::on_body(llhttp_t* p, const char* at, std::size_t n) {
    HttpConnection* c = self_of(p);
    if (c->request_.body.size() + n > max_body_bytes) {
        c->head_bytes_ = 1;
        return HPE_USER;
    }
    c->request_.body.append(at, n);
    return 0;
}

int HttpConnection::on_message_complete(llhttp_t* p) {
    HttpConnection* c = self_of(p);
    c->message_done_ = true;
    c->keep_alive_ = llhttp_should_keep_alive(p) != 0;
    return HPE_PAUSED;  // one request at a time
}

void HttpConnection::dispatch() {
    message_done_ = false;
    busy_ = true;
    head_bytes_ = 0;
    request_.peer_address = peer_;
    request_.peer_is_loopback = loopback_;
    const bool head = request_.method == "HEAD";
    const bool keep_alive = keep_alive_;
    Broker::TimeScope scope(loop_.broker());
    handler_(request_, [weak = weak_from_this(), head, keep_alive](mgmt::HttpResponse r) {
        auto self = weak.lock();
        if (!self || self->closed_) return;
        if (head) r.body.clear();
        self->send(std::move(r), keep_alive);
    });
    // Handlers may have changed queues, closed connections or stored definitions.
    loop_.schedule_turn_end();
}

void HttpConnection::send(mgmt::HttpResponse r, bool keep_alive) {
    output_ = fmt::format(
        "HTTP/1.1 {} {}\r\nServer: Warren\r\nCache-Control: no-cache\r\nVary: accept, "
        "accept-encoding, origin\r\n",
        r.status, mgmt::status_text(r.status));
    // 204 and 304 carry no body, so no Content-Length (a 304's would be the 200's).
    if (r.status != 204 && r.status != 304) {
        if (!r.body.empty() || r.status >= 200) output_ += fmt::format("Content-Type: {}\r\n", r.content_type);
        output_ += fmt::format("Content-Length: {}\r\n", r.body.size());
    }
    for (const auto& [k, v] : r.headers) output_ += fmt::format("{}: {}\r\n", k, v);
    if (!keep_alive) output_ += "Connection: close\r\n";
    output_ += "\r\n";
    if (r.status != 204 && r.status != 304) output_ += r.body;
    writing_ = true;
    arm_deadline();  // the client has request_timeout to read the answer
    stream_->write(output_, [self = shared_from_this(), keep_alive](const asio::error_code& ec, std::size_t) {
        self->writing_ = false;
        self->output_.clear();
        self->output_.shrink_to_fit();
        if (self->closed_) return;
        if (ec || !keep_alive) return self->close();
        self->busy_ = false;
        self->arm_deadline();
        self->parse();  // a pipelined request may be waiting in the buffer
    });
}

void HttpConnection::fail(int status) {
    if (closed_ || writing_) return;
    busy_ = true;
    mgmt::HttpResponse r;
    r.status = status;
    r.body = fmt::format(R"({{"error":"{}","reason":"{}"}})", status == 408 ? "timeout" : "bad_request",
                         mgmt::status_text(status));
    send(std::move(r), false);
}

void HttpConnection::close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    deadline_.cancel();
    stream_->close();
    auto self = shared_from_this();  // on_closed_ lets the server's reference go
    if (on_closed_) on_closed_(*this);
}

}  // namespace warren::broker::net
