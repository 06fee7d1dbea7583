// The management API without sockets: requests straight into mgmt::Api, answered now or after
// the pieces it posts (run here by hand, as loop turns). Authentication, tag rules, lists built
// in bounded pieces, and changes through the broker.
#include "mgmt/api.hpp"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "broker/vhost.hpp"
#include "mgmt/url.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using warren::mgmt::Api;
using warren::mgmt::HttpRequest;
using warren::mgmt::HttpResponse;
using json = nlohmann::json;

namespace {

struct Harness {
    TestBroker b;
    std::vector<std::function<void()>> posted;
    Api api{*b.broker,
            [this](std::chrono::nanoseconds, std::function<void()> f) { posted.push_back(std::move(f)); },
            {5672}};

    // Sends a request; `turns` counts the loop turns (posted pieces) it took to answer.
    std::optional<HttpResponse> send(std::string method, std::string target, std::string body = {},
                                     std::string auth = "Basic Z3Vlc3Q6Z3Vlc3Q=", int* turns = nullptr) {
        HttpRequest r;
        r.method = std::move(method);
        r.target = std::move(target);
        r.body = std::move(body);
        r.peer_is_loopback = true;
        r.peer_address = "127.0.0.1:1";
        if (!auth.empty()) r.headers.emplace_back("authorization", auth);
        std::optional<HttpResponse> out;
        api.handle(r, [&](HttpResponse resp) { out = std::move(resp); });
        int n = 0;
        while (!out && !posted.empty()) {
            auto f = std::move(posted.front());
            posted.erase(posted.begin());
            f();
            ++n;
        }
        if (turns) *turns = n;
        return out;
    }
};

}  // namespace

TEST_CASE("requests without valid credentials get 401 with a Basic challenge", "[mgmt]") {
    Harness h;
    auto r = h.send("GET", "/api/overview", {}, "");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->headers.at(0).first == "WWW-Authenticate");
    CHECK(h.send("GET", "/api/overview", {}, "Basic Z3Vlc3Q6d3Jvbmc=")->status == 401);  // guest:wrong
    CHECK(h.send("GET", "/api/overview", {}, "Bearer x")->status == 401);
    CHECK(h.send("GET", "/api/overview")->status == 200);
}

TEST_CASE("tags follow RabbitMQ's rules", "[mgmt]") {
    using warren::mgmt::allows;
    using warren::mgmt::Need;
    CHECK(allows({"administrator"}, Need::Administrator));
    CHECK(allows({"monitoring"}, Need::Monitoring));
    CHECK(allows({"monitoring"}, Need::Management));
    CHECK_FALSE(allows({"monitoring"}, Need::Administrator));
    CHECK_FALSE(allows({"monitoring"}, Need::Policymaker));
    CHECK(allows({"policymaker"}, Need::Policymaker));
    CHECK(allows({"management"}, Need::Management));
    CHECK_FALSE(allows({"management"}, Need::Monitoring));
    CHECK_FALSE(allows({}, Need::Management));
    CHECK_FALSE(allows({"impersonator"}, Need::Management));
}

TEST_CASE("a list of 500 queues is built in pieces across loop turns", "[mgmt]") {
    Harness h;
    auto& vh = h.b.broker->default_vhost();
    for (int i = 0; i < 500; ++i) vh.add_queue(fmt::format("q{:03}", i), {}, {}, {}, 0);
    int turns = 0;
    auto r = h.send("GET", "/api/queues", {}, "Basic Z3Vlc3Q6Z3Vlc3Q=", &turns);
    REQUIRE(r);
    CHECK(r->status == 200);
    // 200 a turn: the first piece at once, two more on later turns.
    CHECK(turns == 2);
    json list = json::parse(r->body);
    REQUIRE(list.size() == 500);
    CHECK(list[0]["name"] == "q000");
    CHECK(list[499]["name"] == "q499");
}

TEST_CASE("a queue deleted while its list is being built is left out", "[mgmt]") {
    Harness h;
    auto& vh = h.b.broker->default_vhost();
    for (int i = 0; i < 300; ++i) vh.add_queue(fmt::format("q{:03}", i), {}, {}, {}, 0);
    HttpRequest r;
    r.method = "GET";
    r.target = "/api/queues/%2F?columns=name";
    r.peer_is_loopback = true;
    r.headers.emplace_back("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=");
    std::optional<HttpResponse> out;
    h.api.handle(r, [&](HttpResponse resp) { out = std::move(resp); });
    REQUIRE_FALSE(out);
    vh.delete_queue(*vh.find_queue("q250"));
    while (!out && !h.posted.empty()) {
        auto f = std::move(h.posted.front());
        h.posted.erase(h.posted.begin());
        f();
    }
    REQUIRE(out);
    json list = json::parse(out->body);
    CHECK(list.size() == 299);
    CHECK(list[0] == json{{"name", "q000"}});
}

TEST_CASE("queues are declared, checked for equivalence, purged and deleted through the API", "[mgmt]") {
    Harness h;
    CHECK(h.send("PUT", "/api/queues/%2F/q", R"({"durable":false,"arguments":{"x-max-length":5}})")->status == 201);
    CHECK(h.send("PUT", "/api/queues/%2F/q", R"({"durable":false,"arguments":{"x-max-length":5}})")->status == 204);
    auto different = h.send("PUT", "/api/queues/%2F/q", R"({"durable":false,"arguments":{"x-max-length":6}})");
    CHECK(different->status == 400);
    CHECK(h.send("PUT", "/api/queues/%2F/bad", "{nope")->status == 400);
    CHECK(h.send("PUT", "/api/queues/%2F/amq.x", "{}")->status == 403);
    CHECK(h.send("PUT", "/api/queues/nope/q", "{}")->status == 404);
    auto q = json::parse(h.send("GET", "/api/queues/%2F/q")->body);
    CHECK(q["arguments"] == json{{"x-max-length", 5}});
    CHECK(q["durable"] == false);
    TestClient c(h.b);
    c.open_channel(1);
    c.publish_n(1, "", "q", 3);
    CHECK(json::parse(h.send("GET", "/api/queues/%2F/q")->body)["messages_ready"] == 3);
    CHECK(h.send("DELETE", "/api/queues/%2F/q/contents")->status == 204);
    CHECK(h.b.queue("q")->message_count() == 0);
    CHECK(h.send("DELETE", "/api/queues/%2F/q")->status == 204);
    CHECK(h.b.queue("q") == nullptr);
    CHECK(h.send("DELETE", "/api/queues/%2F/q")->status == 404);
}

TEST_CASE("get takes every message before requeueing, so none is taken twice", "[mgmt]") {
    Harness h;
    TestClient c(h.b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.publish_n(1, "", "q", 3);
    auto r = h.send("POST", "/api/queues/%2F/q/get", R"({"count":5,"ackmode":"ack_requeue_true","encoding":"auto"})");
    REQUIRE(r->status == 200);
    json got = json::parse(r->body);
    REQUIRE(got.size() == 3);
    CHECK(got[0]["payload"] == "m1");
    CHECK(got[2]["payload"] == "m3");
    CHECK(got[0]["message_count"] == 2);
    CHECK(h.b.queue("q")->message_count() == 3);
    auto once =
        h.send("POST", "/api/queues/%2F/q/get", R"({"count":1,"ackmode":"ack_requeue_false","encoding":"auto"})");
    CHECK(json::parse(once->body)[0]["redelivered"] == true);
    CHECK(h.b.queue("q")->message_count() == 2);
}

TEST_CASE("URL targets: segments decoded after splitting, query strings with plus", "[mgmt]") {
    auto t = warren::mgmt::parse_target("/api/queues/%2F/a%20b?name=x+y&page=2");
    REQUIRE(t);
    CHECK(t->segments == std::vector<std::string>{"api", "queues", "/", "a b"});
    CHECK(t->param("name") == "x y");
    CHECK(t->param("page") == "2");
    CHECK_FALSE(warren::mgmt::parse_target("/api/queues/%2"));
    CHECK_FALSE(warren::mgmt::parse_target("/api/queues/%zz"));
}

TEST_CASE("the definitions export is built in pieces too, and lists what was declared", "[mgmt]") {
    Harness h;
    auto& vh = h.b.broker->default_vhost();
    for (int i = 0; i < 450; ++i) vh.add_queue(fmt::format("q{:03}", i), {}, {}, {}, 0);
    CHECK(h.send("PUT", "/api/exchanges/%2F/x", R"({"type":"fanout","durable":false})")->status == 201);
    CHECK(h.send("POST", "/api/bindings/%2F/e/x/q/q001", R"({"routing_key":"k","arguments":{"a":1}})")->status == 201);
    int turns = 0;
    auto r = h.send("GET", "/api/definitions", {}, "Basic Z3Vlc3Q6Z3Vlc3Q=", &turns);
    REQUIRE(r->status == 200);
    CHECK(turns == 2);  // 450 queues and 7 exchanges, 200 a turn
    json d = json::parse(r->body);
    CHECK(d["queues"].size() == 450);
    CHECK(d["exchanges"] == json::parse(R"([{"name":"x","vhost":"/","type":"fanout","durable":false,
                                              "auto_delete":false,"internal":false,"arguments":{}}])"));
    CHECK(d["bindings"] == json::parse(R"([{"source":"x","vhost":"/","destination":"q001","destination_type":"queue",
                                             "routing_key":"k","arguments":{"a":1}}])"));
    CHECK(d["users"][0]["name"] == "guest");
}

TEST_CASE("queues and delayed exchanges show their delayed messages; the plugin's type is listed as declared",
          "[mgmt][delayed]") {
    Harness h;
    TestClient c(h.b);
    c.open_channel(1);
    c.declare_exchange(1, "later", "x-delayed-message", table({{"x-delayed-type", std::string("topic")}}));
    c.declare_queue(1, "jobs", table({{"x-delayed-retry-min", std::int32_t{60000}}}));
    ByteBuffer headers = encode_table_body(table({{"x-delay", std::int32_t{5000}}}));
    BasicProperties p;
    p.headers = TableView::trusted(headers.span());
    p.set_flag(property_flag::headers);
    c.publish(1, "later", "k", "m", p);
    c.publish(1, "", "jobs", "job");
    c.consume(1, "jobs", "w");
    c.nack(1, c.deliveries().at(0).delivery_tag(), false, true);
    auto later = json::parse(h.send("GET", "/api/exchanges/%2F/later")->body);
    CHECK(later["type"] == "x-delayed-message");
    CHECK(later["messages_delayed"] == 1);
    CHECK_FALSE(json::parse(h.send("GET", "/api/exchanges/%2F/amq.direct")->body).contains("messages_delayed"));
    auto jobs = json::parse(h.send("GET", "/api/queues/%2F/jobs")->body);
    CHECK(jobs["messages_delayed"] == 1);
    CHECK(jobs["messages_ready"] == 0);
    auto overview = json::parse(h.send("GET", "/api/overview")->body);
    CHECK(overview["queue_totals"]["messages_delayed"] == 1);
    CHECK(overview["queue_totals"]["exchange_messages_delayed"] == 1);
}
