// The users, vhosts, permissions and limits endpoints without sockets (api_auth.cpp): changes go
// through the broker's admin API and are in force at once; the tag rules decide who sees what.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "broker/base64.hpp"
#include "broker/broker.hpp"
#include "mgmt/api.hpp"
#include "support/test_client.hpp"

using namespace warren::testing;
using warren::mgmt::Api;
using warren::mgmt::HttpRequest;
using warren::mgmt::HttpResponse;
using json = nlohmann::json;

namespace {

std::string basic(std::string_view user, std::string_view password) {
    std::string pair = std::string(user) + ":" + std::string(password);
    return "Basic " + warren::broker::base64_encode(std::as_bytes(std::span(pair.data(), pair.size())));
}

struct Harness {
    TestBroker b;
    Api api{*b.broker, [](std::chrono::nanoseconds, std::function<void()> f) { f(); }, {5672}};

    HttpResponse send(std::string method, std::string target, std::string body = {},
                      std::string auth = basic("guest", "guest")) {
        HttpRequest r;
        r.method = std::move(method);
        r.target = std::move(target);
        r.body = std::move(body);
        r.peer_is_loopback = true;
        r.peer_address = "127.0.0.1:1";
        r.headers.emplace_back("authorization", auth);
        std::optional<HttpResponse> out;
        api.handle(r, [&](HttpResponse resp) { out = std::move(resp); });
        b.settle();
        REQUIRE(out);
        return *out;
    }
    json get(std::string target, std::string auth = basic("guest", "guest")) {
        return json::parse(send("GET", std::move(target), {}, std::move(auth)).body);
    }
};

}  // namespace

TEST_CASE("a user made through the API logs in with its password and its tags decide", "[mgmt][auth]") {
    Harness h;
    CHECK(h.send("PUT", "/api/users/ann", R"({"password": "pw", "tags": "management"})").status == 201);
    CHECK(h.send("PUT", "/api/users/ann", R"({"password": "pw", "tags": "management"})").status == 204);
    CHECK(h.get("/api/whoami", basic("ann", "pw")) == json{{"name", "ann"}, {"tags", {"management"}}});
    CHECK(h.send("GET", "/api/whoami", {}, basic("ann", "wrong")).status == 401);
    // Not an administrator: no users, and a vhost without permissions is not in its list.
    auto refused = h.send("GET", "/api/users", {}, basic("ann", "pw"));
    CHECK(refused.status == 401);
    CHECK(json::parse(refused.body)["reason"] == "Not administrator user");
    CHECK(h.get("/api/vhosts", basic("ann", "pw")) == json::array());
    CHECK(h.send("PUT", "/api/permissions/%2F/ann", R"({"configure": ".*", "write": ".*", "read": ".*"})").status ==
          201);
    CHECK(h.get("/api/vhosts", basic("ann", "pw")).size() == 1);
    // No tag at all: 401 for everything.
    CHECK(h.send("PUT", "/api/users/ann", R"({"password": "pw", "tags": ""})").status == 204);
    auto none = h.send("GET", "/api/overview", {}, basic("ann", "pw"));
    CHECK(none.status == 401);
    CHECK(json::parse(none.body)["reason"] == "Not management user");
}

TEST_CASE("a path naming a vhost without permissions is refused, whatever the tags", "[mgmt][auth]") {
    Harness h;
    REQUIRE(!h.b.broker->add_vhost("other"));
    REQUIRE(!h.b.broker->add_user("mon", "pw", {"monitoring"}));
    REQUIRE(!h.b.broker->set_permissions("mon", "/", ".*", ".*", ".*"));
    auto r = h.send("GET", "/api/queues/other", {}, basic("mon", "pw"));
    CHECK(r.status == 401);
    CHECK(json::parse(r.body)["reason"] == "User not authorised to access virtual host");
    CHECK(h.get("/api/vhosts", basic("mon", "pw")).size() == 2);  // monitoring lists them all
    CHECK(h.send("GET", "/api/queues/%2F", {}, basic("mon", "pw")).status == 200);
}

TEST_CASE("permissions, limits and vhosts through the API are in the broker at once", "[mgmt][auth]") {
    Harness h;
    CHECK(h.send("PUT", "/api/vhosts/v1", R"({"description": "d", "tags": ["a"]})").status == 201);
    REQUIRE(h.b.broker->find_vhost("v1"));
    CHECK(h.b.broker->find_vhost("v1")->settings().description == "d");
    CHECK(h.b.broker->auth().find_permissions("guest", "v1"));  // the creator's, as at RabbitMQ
    CHECK(h.send("PUT", "/api/vhost-limits/v1/max-queues", R"({"value": 3})").status == 204);
    CHECK(h.b.broker->find_vhost("v1")->limits().max_queues == 3);
    CHECK(h.get("/api/vhost-limits/v1") == json::parse(R"([{"vhost": "v1", "value": {"max-queues": 3}}])"));
    CHECK(h.send("DELETE", "/api/vhost-limits/v1/max-nope").status == 204);  // nothing to clear
    CHECK(h.b.broker->find_vhost("v1")->limits().max_queues == 3);
    CHECK(h.send("PUT", "/api/users/bob", R"({"password": "pw", "tags": ""})").status == 201);
    auto missing = h.send("PUT", "/api/permissions/v1/bob", R"({"configure": ".*"})");
    CHECK(missing.status == 400);
    CHECK(json::parse(missing.body)["reason"] == "[{key_missing,write},{key_missing,read}]");
    CHECK(h.send("PUT", "/api/permissions/v1/bob", R"({"configure": "^x", "write": "", "read": ".*"})").status == 201);
    CHECK(h.b.broker->auth().find_permissions("bob", "v1")->configure.pattern() == "^x");
    CHECK(h.send("PUT", "/api/user-limits/bob/max-channels", R"({"value": 2})").status == 204);
    CHECK(h.b.broker->auth().find_user("bob")->limits.max_channels == 2);
    CHECK(h.send("DELETE", "/api/vhosts/v1").status == 204);
    CHECK_FALSE(h.b.broker->find_vhost("v1"));
    CHECK(h.send("DELETE", "/api/vhosts/v1").status == 404);
    CHECK(h.send("DELETE", "/api/users/bob").status == 204);
    CHECK_FALSE(h.b.broker->auth().find_user("bob"));
}
