// See static_files.hpp.
#include "mgmt/console/static_files.hpp"

#include <array>
#include <utility>

#include "mgmt/url.hpp"

namespace warren::mgmt::console {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Does an If-None-Match value ("a", "b" or *; weak W/ forms compare equal for GET) name `etag`?
bool etag_matches(std::string_view header, std::string_view etag) {
    std::size_t i = 0;
    while (i < header.size()) {
        while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
        std::size_t end = header.find(',', i);
        if (end == std::string_view::npos) end = header.size();
        std::string_view tag = header.substr(i, end - i);
        while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
        if (tag.starts_with("W/")) tag.remove_prefix(2);
        if (tag == "*" || tag == etag) return true;
        i = end;
    }
    return false;
}

HttpResponse plain(int status, std::string_view text) {
    HttpResponse r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = text;
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
}

}  // namespace

const StaticFile* find_static_file(std::string_view path) {
    if (path == "/") path = "/index.html";
    for (const StaticFile& f : static_files())
        if (f.path == path) return &f;
    return nullptr;
}

std::string_view content_type_for(std::string_view path) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 9> types{{
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    }};
    for (const auto& [ext, type] : types)
        if (ends_with(path, ext)) return type;
    return "application/octet-stream";
}

HttpResponse serve_static(const HttpRequest& request) {
    if (request.method != "GET" && request.method != "HEAD") {
        HttpResponse r = plain(405, "Method Not Allowed\n");
        r.headers.emplace_back("Allow", "GET, HEAD");
        return r;
    }
    std::string_view target = request.target;
    target = target.substr(0, target.find_first_of("?#"));
    auto path = percent_decode(target);
    if (!path) return plain(400, "Bad Request\n");
    const StaticFile* file = find_static_file(*path);
    if (!file) return plain(404, "Not Found\n");

    HttpResponse r;
    r.content_type = content_type_for(file->path);
    // The connection sends Cache-Control: no-cache, so a browser revalidates with the ETag on
    // each load and gets 304: a new broker's console is never stale, an unchanged one costs no bytes.
    r.headers.emplace_back("ETag", std::string(file->etag));
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (file->path == "/index.html") {
        // Only the console's own files run; no page may frame it (clickjacking).
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
        r.headers.emplace_back("X-Frame-Options", "DENY");
    }
    if (const std::string* inm = request.header("if-none-match"); inm && etag_matches(*inm, file->etag)) {
        r.status = 304;
        return r;
    }
    r.body = file->content;
    return r;
}

}  // namespace warren::mgmt::console
