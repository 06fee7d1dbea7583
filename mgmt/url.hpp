// URL pieces for the management API: percent-decoding (vhost "/" is "%2F" in a path), the path
// split into segments, and the query string as key/value pairs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::mgmt {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, for query strings). Returns
// nothing for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);
// Encodes everything but unreserved characters (RFC 3986), for names in URLs.
std::string percent_encode(std::string_view s);

struct Target {
    std::vector<std::string> segments;  // decoded; "/api/queues/%2F/q" -> {"api", "queues", "/", "q"}
    std::vector<std::pair<std::string, std::string>> query;
    std::optional<std::string> param(std::string_view key) const;
};

// Nothing if an escape is malformed.
std::optional<Target> parse_target(std::string_view target);

}  // namespace warren::mgmt
