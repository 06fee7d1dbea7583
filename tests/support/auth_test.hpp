// Shared by the auth tests: clients that log in as a given user to a given vhost, and the
// reply code and text of what refused them.
#pragma once

#include <memory>
#include <string>

#include "support/test_client.hpp"

namespace warren::testing {

// Logs in as `user` and opens `vhost`; check opened() or the close it got.
inline std::unique_ptr<TestClient> connect_as(TestBroker& b, std::string_view user, std::string_view password,
                                              std::string_view vhost = "/", bool loopback = true) {
    auto c = std::make_unique<TestClient>(b, false, loopback);
    c->send_protocol_header();
    c->send_start_ok(user, password);
    auto tune = c->take<ConnectionTune>();
    if (tune.empty()) return c;
    c->send_tune_ok(tune[0].channel_max, tune[0].frame_max, 0);
    c->send_open(vhost);
    return c;
}

inline bool opened(TestClient& c) {
    return !c.take<ConnectionOpenOk>().empty();
}

// "403 ACCESS_REFUSED - ..." from the channel's close, or "" if the channel was not closed.
inline std::string channel_refusal(TestClient& c, std::uint16_t channel) {
    auto close = c.channel_close(channel);
    if (!close) return "";
    return std::to_string(close->reply_code) + " " + std::string(close->reply_text.view());
}

inline std::string connection_refusal(TestClient& c) {
    auto close = c.connection_close();
    if (!close) return "";
    return std::to_string(close->reply_code) + " " + std::string(close->reply_text.view());
}

}  // namespace warren::testing
