// An HTTP request as the management API sees it (parsed by the net layer's llhttp connection)
// and the response it gives back. Plain values: mgmt/ knows nothing of sockets.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace warren::mgmt {

struct HttpRequest {
    std::string method;                                        // "GET", "PUT", ...
    std::string target;                                        // path and query, as sent ("/api/queues/%2F?page=1")
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::string peer_address;  // "127.0.0.1:53422"
    bool peer_is_loopback = false;

    // The value of a header (the first one), or empty.
    const std::string* header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (k == name) return &v;
        return nullptr;
    }
};

struct HttpResponse {
    int status = 200;
    std::string body;  // JSON unless content_type says otherwise
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

std::string_view status_text(int status);

// What a listener hands each request to (the API, or the Prometheus endpoint): it calls the
// function it is given exactly once, now or on a later loop turn.
using HttpHandler = std::function<void(const HttpRequest&, std::function<void(HttpResponse)>)>;

}  // namespace warren::mgmt
