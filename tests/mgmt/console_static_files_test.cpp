// The web console's embedded files as the management listener serves them: types, ETags and
// 304s, 404 for anything not embedded (no path reaches the file system), GET/HEAD only, and
// served without a login while /api still asks for one.
#include <catch2/catch.hpp>

#include "mgmt/api.hpp"
#include "mgmt/console/static_files.hpp"
#include "support/test_client.hpp"

using warren::mgmt::HttpRequest;
using warren::mgmt::HttpResponse;
using namespace warren::mgmt::console;

namespace {

HttpResponse get(std::string target, std::string if_none_match = {}, std::string method = "GET") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    if (!if_none_match.empty()) r.headers.emplace_back("if-none-match", if_none_match);
    return serve_static(r);
}

const std::string* header(const HttpResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return &v;
    return nullptr;
}

}  // namespace

TEST_CASE("the console's page is served at / with its type, an ETag and a strict CSP", "[console]") {
    auto r = get("/");
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/html; charset=utf-8");
    CHECK(r.body.find("js/main.js") != std::string::npos);
    REQUIRE(header(r, "ETag"));
    CHECK(header(r, "ETag")->size() == 18);  // 16 hex digits, quoted
    REQUIRE(header(r, "Content-Security-Policy"));
    CHECK(header(r, "Content-Security-Policy")->find("default-src 'self'") != std::string::npos);
    CHECK(get("/index.html").body == r.body);
    CHECK(get("/index.html?x=1").body == r.body);
}

TEST_CASE("every embedded file has a known type, and the pinned uPlot is among them", "[console]") {
    bool uplot = false;
    for (const StaticFile& f : static_files()) {
        INFO(f.path);
        CHECK(content_type_for(f.path) != "application/octet-stream");
        CHECK(f.path.starts_with("/"));
        CHECK_FALSE(f.content.empty());
        uplot = uplot || f.path == "/vendor/uPlot.iife.min.js";
    }
    CHECK(uplot);
    CHECK(content_type_for("/js/main.js") == "text/javascript; charset=utf-8");
    CHECK(content_type_for("/console.css") == "text/css; charset=utf-8");
    CHECK(content_type_for("/favicon.svg") == "image/svg+xml");
}

TEST_CASE("a matching If-None-Match gets 304 without a body; another ETag gets the file", "[console]") {
    const std::string etag = *header(get("/js/main.js"), "ETag");
    auto same = get("/js/main.js", etag);
    CHECK(same.status == 304);
    CHECK(same.body.empty());
    CHECK(*header(same, "ETag") == etag);
    CHECK(get("/js/main.js", "\"other\", " + etag).status == 304);
    CHECK(get("/js/main.js", "W/" + etag).status == 304);
    auto other = get("/js/main.js", "\"0000000000000000\"");
    CHECK(other.status == 200);
    CHECK_FALSE(other.body.empty());
}

TEST_CASE("only embedded files are served: anything else is 404, whatever the path says", "[console]") {
    for (const char* path : {"/nothing.js", "/../CMakeLists.txt", "/%2e%2e/%2e%2e/etc/passwd", "/js/../index.html",
                             "/js", "/js/", "//index.html", "/index.html/", "/web/index.html", "/static_files.cpp",
                             "/node_modules/uplot/package.json", "/index.html%00.js"}) {
        INFO(path);
        auto r = get(path);
        CHECK(r.status == 404);
        CHECK(r.body.find("<") == std::string::npos);  // plain text, nothing to render
    }
    CHECK(get("/%zz").status == 400);
}

TEST_CASE("console files answer GET and HEAD; other methods get 405 with Allow", "[console]") {
    CHECK(get("/", {}, "HEAD").status == 200);
    for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS"}) {
        auto r = get("/", {}, m);
        CHECK(r.status == 405);
        REQUIRE(header(r, "Allow"));
        CHECK(*header(r, "Allow") == "GET, HEAD");
    }
}

TEST_CASE("the API serves the console outside /api without a login, and still guards /api", "[console][mgmt]") {
    warren::testing::TestBroker b;
    warren::mgmt::Api api{*b.broker, [](std::chrono::nanoseconds, std::function<void()>) {}, {5672}};
    auto ask = [&](std::string target) {
        HttpRequest r;
        r.method = "GET";
        r.target = std::move(target);
        r.peer_is_loopback = true;
        std::optional<HttpResponse> out;
        api.handle(r, [&](HttpResponse resp) { out = std::move(resp); });
        REQUIRE(out);
        return *out;
    };
    CHECK(ask("/").status == 200);
    CHECK(ask("/js/api.js").content_type == "text/javascript; charset=utf-8");
    CHECK(ask("/apix").status == 404);
    CHECK(ask("/api/overview").status == 401);
    CHECK(ask("/api").status == 401);
}
