// A RabbitMQ 3.10 definitions file's users, vhosts, permissions, topic permissions and limits,
// imported with working passwords; a bad file is refused whole, naming what is wrong.
#include <catch2/catch.hpp>

#include "support/auth_test.hpp"

using namespace warren::testing;

namespace {
// As `rabbitmqctl export_definitions` writes it (3.10: tags as one string).
constexpr std::string_view rabbit_file = R"({
  "rabbit_version": "3.10.8",
  "users": [{"name": "alice", "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "management,policymaker",
             "limits": {"max-connections": 5}}],
  "vhosts": [{"name": "orders", "description": "order flow", "tags": ["prod"]}],
  "permissions": [{"user": "alice", "vhost": "orders", "configure": "^alice\\.", "write": ".*", "read": ".*"}],
  "topic_permissions": [{"user": "alice", "vhost": "orders", "exchange": "amq.topic", "write": "^a", "read": ".*"}],
  "parameters": [{"vhost": "orders", "component": "vhost-limits", "name": "limits",
                  "value": {"max-connections": 100, "max-queues": 10}}],
  "queues": [], "exchanges": [], "bindings": [], "policies": [], "global_parameters": []
})";
}  // namespace

TEST_CASE("a RabbitMQ definitions file imports users, vhosts, permissions and limits", "[admin][import]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->import_definitions(rabbit_file));
    const User* alice = b.broker->auth().find_user("alice");
    REQUIRE(alice);
    CHECK(alice->tags == std::vector<std::string>{"management", "policymaker"});
    CHECK(alice->limits.max_connections == 5);
    VHost* orders = b.broker->find_vhost("orders");
    REQUIRE(orders);
    CHECK(orders->settings().description == "order flow");
    CHECK(orders->limits() == VHostLimits{100, 10});
    auto c = connect_as(b, "alice", "test12", "orders");
    REQUIRE(opened(*c));
    c->open_channel(1);
    c->declare_queue(1, "bob.q");
    CHECK(channel_refusal(*c, 1) ==
          "403 ACCESS_REFUSED - access to queue 'bob.q' in vhost 'orders' refused for user 'alice'");
}

TEST_CASE("a definitions file with one bad entry changes nothing", "[admin][import]") {
    TestBroker b;
    std::string bad(rabbit_file);
    bad.replace(bad.find("\"^alice\\\\.\""), 11, "\"(\"");
    auto error = b.broker->import_definitions(bad);
    REQUIRE(error);
    CHECK(error->field == "configure");
    CHECK_FALSE(b.broker->auth().find_user("alice"));
    CHECK_FALSE(b.broker->find_vhost("orders"));

    auto unknown_user = b.broker->import_definitions(
        R"({"permissions": [{"user": "nobody", "vhost": "/", "configure": "", "write": "", "read": ""}]})");
    REQUIRE(unknown_user);
    CHECK(unknown_user->field == "user");
    CHECK(b.broker->import_definitions("[1]")->text == "not a JSON object");
}
