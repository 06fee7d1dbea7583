// One request being answered by the Api: what was asked, by whom, and the one-shot reply.
// Shared, because a list built in pieces outlives the call that started it.
#pragma once

#include <memory>

#include "mgmt/api.hpp"

namespace warren::mgmt {

struct Api::Call : std::enable_shared_from_this<Api::Call> {
    HttpRequest request;
    Target target;
    AuthUser user;
    Respond respond;
    bool answered = false;

    const std::vector<std::string>& seg() const { return target.segments; }
    std::size_t size() const { return target.segments.size(); }
    bool is(std::string_view method) const { return request.method == method; }

    void reply(int status, std::string body = {}) {
        if (answered) return;
        answered = true;
        HttpResponse r;
        r.status = status;
        r.body = std::move(body);
        respond(std::move(r));
    }
    void reply_json(const json& j, int status = 200) { reply(status, j.dump()); }
    void error(int status, std::string_view error, std::string_view reason) {
        reply(status, json{{"error", error}, {"reason", reason}}.dump());
    }
    void not_found() { error(404, "Object Not Found", "Not Found"); }
    void bad_request(std::string_view reason) { error(400, "bad_request", reason); }
    void method_not_allowed() { error(405, "Method Not Allowed", "Method Not Allowed"); }
    // The request body as JSON; nothing (and 400 sent) when it is not JSON. An empty body is {}.
    std::optional<json> body_json() {
        if (request.body.empty()) return json::object();
        json j = json::parse(request.body, nullptr, false);
        if (j.is_discarded()) {
            bad_request("not_json");
            return std::nullopt;
        }
        return j;
    }
};

}  // namespace warren::mgmt
