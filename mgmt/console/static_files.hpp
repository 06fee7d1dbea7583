// The web console's files, embedded into the broker at build time (embed.cmake generates the
// table), and how the HTTP listener serves them: everything outside /api/ comes from here.
#pragma once

#include <span>
#include <string_view>

#include "mgmt/http_types.hpp"

namespace warren::mgmt::console {

struct StaticFile {
    std::string_view path;     // URL path: "/index.html", "/js/app.js", "/vendor/uPlot.iife.min.js"
    std::string_view content;  // the file's bytes
    std::string_view etag;     // quoted, from the content's SHA-256
};

// Every embedded file (generated).
std::span<const StaticFile> static_files();

// The file at exactly this URL path ("/" is "/index.html"), or nothing. Only the embedded
// table is looked at, so no path can reach anything else.
const StaticFile* find_static_file(std::string_view path);

// The Content-Type for a path, by its extension.
std::string_view content_type_for(std::string_view path);

// Answers a request for a console file: GET and HEAD only (405 otherwise), 404 for an unknown
// path, 304 when If-None-Match names the file's ETag. No authentication: the files hold no data,
// the page logs in against the API.
HttpResponse serve_static(const HttpRequest& request);

}  // namespace warren::mgmt::console
