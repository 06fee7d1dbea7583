// Definitions export and the full import: a file exported by RabbitMQ 3.10.8 (made by
// tests/fixtures/definitions/make_rabbitmq_export.py) imports into Warren and exports back
// equivalent; Warren's own export imports into a fresh broker and exports the same again.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "broker/queue.hpp"
#include "support/auth_test.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;
using json = nlohmann::json;

namespace {

std::string fixture_text() {
    std::ifstream in(std::string(WARREN_TEST_FIXTURES) + "/definitions/rabbitmq-3.10.json");
    REQUIRE(in);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A comparable form of a definitions document: every list sorted, the forms 3.10 and later
// versions both write made one (tags as lists, vhost limits and operator policy definitions
// as objects), and what one side writes and the other never does left out (versions, product,
// an exchange's "internal": false).
json normalized(json doc) {
    json out = json::object();
    for (const char* key : {"users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters",
                            "policies", "queues", "exchanges", "bindings"}) {
        json list = doc.contains(key) ? doc[key] : json::array();
        for (json& e : list) {
            if (e.contains("tags") && e["tags"].is_string()) {
                json tags = json::array();
                std::stringstream s(e["tags"].get<std::string>());
                for (std::string t; std::getline(s, t, ',');) tags.push_back(t);
                e["tags"] = tags;
            }
            if (e.contains("metadata") && e["metadata"]["tags"].is_string()) {
                json tags = json::array();
                std::stringstream s(e["metadata"]["tags"].get<std::string>());
                for (std::string t; std::getline(s, t, ',');) tags.push_back(t);
                e["metadata"]["tags"] = tags;
            }
            auto pairs_to_object = [](json& v) {
                if (!v.is_array()) return;
                json o = json::object();
                for (const json& p : v) o[p[0].get<std::string>()] = p[1];
                v = o;
            };
            if (std::string(key) == "vhosts") pairs_to_object(e["limits"]);
            if (std::string(key) == "parameters" && e["component"] == "operator_policy")
                pairs_to_object(e["value"]["definition"]);
            if (std::string(key) == "exchanges" && e.value("internal", false) == false) e.erase("internal");
            if (e.contains("tags")) std::sort(e["tags"].begin(), e["tags"].end());
        }
        std::sort(list.begin(), list.end(), [](const json& a, const json& b) { return a.dump() < b.dump(); });
        out[key] = list;
    }
    return out;
}

void require_imported(Broker& broker, const std::string& text) {
    auto error = broker.import_definitions(text);
    INFO((error ? error->text : ""));
    REQUIRE_FALSE(error);
}

}  // namespace

TEST_CASE("a RabbitMQ 3.10 export imports into Warren and exports back equivalent", "[definitions][export]") {
    TestBroker b;
    const std::string text = fixture_text();
    require_imported(*b.broker, text);
    json exported = b.broker->export_definitions();
    for (const char* key : {"rabbit_version", "rabbitmq_version", "product_name", "product_version"})
        CHECK(exported.contains(key));
    json expected = normalized(json::parse(text));
    json got = normalized(exported);
    for (const auto& [key, value] : expected.items()) {
        INFO(key);
        CHECK(got[key].dump(2) == value.dump(2));
    }
}

TEST_CASE("what RabbitMQ's file sets works in Warren once imported", "[definitions][export]") {
    TestBroker b;
    require_imported(*b.broker, fixture_text());
    VHost* billing = b.broker->find_vhost("billing");
    REQUIRE(billing);
    CHECK(billing->settings().description == "invoices and payments");
    CHECK(billing->limits() == VHostLimits{100, 50});
    Queue* work = billing->find_queue("billing.work");
    REQUIRE(work);
    CHECK(work->policy()->name == "billing-limits");  // priority 5 over billing-ttl's 1
    CHECK(work->operator_policy()->name == "cap");
    CHECK(work->args().max_length == 500u);        // the argument is below both policies' 1000 and 5000
    CHECK(work->args().message_ttl_ms == 30000u);  // the argument; billing-ttl does not apply
    CHECK(work->args().overflow == Overflow::RejectPublish);
    CHECK(work->args().dead_letter_routing_key == "dead");
    CHECK(work->args().delivery_limit == 10u);  // the operator policy alone
    Queue* quorum = billing->find_queue("billing.quorum");
    REQUIRE(quorum);
    CHECK(quorum->args().type == QueueType::Quorum);
    CHECK(quorum->args().delivery_limit == 3u);
    CHECK(billing->find_exchange("billing.events")->alternate_exchange == "billing.unrouted");
    CHECK(b.broker->find_vhost("/")->find_queue("lazy.jobs")->args().delivery_limit == 7u);
    CHECK(b.broker->global_parameters().at("cluster_name") == "\"warren-fixture\"");
    CHECK(opened(*connect_as(b, "alice", "alice-secret", "billing")));
}

TEST_CASE("Warren's export imports into a fresh broker and exports the same again", "[definitions][export]") {
    TestBroker first;
    require_imported(*first.broker, fixture_text());
    json once = first.broker->export_definitions();
    TestBroker second;
    require_imported(*second.broker, once.dump());
    CHECK(second.broker->export_definitions().dump(2) == once.dump(2));
}

TEST_CASE("an import is all or nothing, and its error names the entry", "[definitions][import]") {
    TestBroker b;
    json doc = json::parse(fixture_text());
    doc["bindings"].push_back({{"source", "billing.events"},
                               {"vhost", "billing"},
                               {"destination", "nowhere"},
                               {"destination_type", "queue"},
                               {"routing_key", "k"},
                               {"arguments", json::object()}});
    auto error = b.broker->import_definitions(doc.dump());
    REQUIRE(error);
    CHECK(error->text ==
          "binding from exchange 'billing.events' to queue 'nowhere' (key 'k') in vhost 'billing': queue 'nowhere' "
          "does not exist");
    CHECK_FALSE(b.broker->find_vhost("billing"));
    CHECK_FALSE(b.broker->auth().find_user("alice"));
    CHECK(b.broker->list_policies(PolicyKind::Policy).empty());
}

TEST_CASE("an import refuses what Warren cannot honour, naming it", "[definitions][import]") {
    TestBroker b;
    auto refused = [&](json doc) {
        auto e = b.broker->import_definitions(doc.dump());
        return e ? e->text : std::string();
    };
    CHECK(
        refused({{"parameters",
                  {{{"vhost", "/"},
                    {"component", "federation-upstream"},
                    {"name", "up"},
                    {"value", {{"uri", "amqp://"}}}}}}}) ==
        "parameter 'up' of component 'federation-upstream' in vhost '/': Warren has no 'federation-upstream' component "
        "(it takes vhost-limits and operator_policy parameters)");
    CHECK(refused({{"queues",
                    {{{"vhost", "/"},
                      {"name", "s"},
                      {"durable", false},
                      {"auto_delete", false},
                      {"arguments", {{"x-queue-type", "stream"}}}}}}}) ==
          "queue 's' in vhost '/': a stream queue is durable and not auto-delete");
    CHECK(refused({{"queues",
                    {{{"vhost", "/"},
                      {"name", "s"},
                      {"arguments", {{"x-queue-type", "stream"}, {"x-delayed-retry-type", "all"}}}}}}}) ==
          "invalid arg 'x-delayed-retry-type' for queue 's' in vhost '/' of queue type rabbit_stream_queue");
    CHECK(refused({{"exchanges",
                    {{{"vhost", "/"},
                      {"name", "h"},
                      {"type", "x-consistent-hash"},
                      {"arguments", {{"hash-header", "a"}, {"hash-property", "message_id"}}}}}}}) ==
          "exchange 'h' in vhost '/': hash-header and hash-property are mutually exclusive");
    CHECK(refused({{"policies",
                    {{{"vhost", "/"},
                      {"name", "p"},
                      {"pattern", "^q"},
                      {"apply-to", "queues"},
                      {"priority", 0},
                      {"definition", {{"max-priority", 3}}}}}}}) ==
          "policy 'p' in vhost '/': [{<<\"max-priority\">>,3}] are not recognised policy settings");
    CHECK(refused({{"global_parameters", {{{"name", "mqtt_port_to_vhost_mapping"}, {"value", json::object()}}}}}) ==
          "global parameter 'mqtt_port_to_vhost_mapping': Warren knows only cluster_name");
    CHECK(refused({{"exchanges", {{{"vhost", "nope"}, {"name", "x"}, {"type", "direct"}, {"durable", true}}}}}) ==
          "exchange 'x': vhost 'nope' does not exist");
    CHECK(refused({{"exchanges", {{{"vhost", "/"}, {"name", "x"}, {"type", "x-unknown"}}}}}) ==
          "exchange 'x' in vhost '/': unknown exchange type 'x-unknown'");
    CHECK(b.broker->default_vhost().queues().empty());
}

TEST_CASE("a stream queue is exported with its type and imported as a stream", "[definitions][import][stream]") {
    TestBroker a;
    json doc{{"queues",
              {{{"vhost", "/"},
                {"name", "s"},
                {"durable", true},
                {"auto_delete", false},
                {"arguments", {{"x-queue-type", "stream"}, {"x-max-age", "7D"}}}}}}};
    REQUIRE_FALSE(a.broker->import_definitions(doc.dump()));
    warren::broker::Queue* q = a.broker->default_vhost().find_queue("s");
    REQUIRE(q);
    CHECK(q->stream());
    json exported = a.broker->export_definitions();
    json back;
    for (const json& e : exported["queues"])
        if (e["name"] == "s") back = e;
    CHECK(back["type"] == "stream");
    CHECK(back["arguments"]["x-queue-type"] == "stream");

    TestBroker b;
    REQUIRE_FALSE(b.broker->import_definitions(json{{"queues", json::array({back})}}.dump()));
    warren::broker::Queue* again = b.broker->default_vhost().find_queue("s");
    REQUIRE(again);
    CHECK(again->stream());
}

TEST_CASE("existing queues and exchanges are left as they are, amq.* ones skipped", "[definitions][import]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    FieldTable args;
    args.set("x-max-length", std::int64_t{9});
    c.declare_queue(1, "q", args, true);
    json doc = {{"queues",
                 {{{"vhost", "/"}, {"name", "q"}, {"durable", true}, {"arguments", {{"x-max-length", 1}}}},
                  {{"vhost", "/"}, {"name", "amq.q"}, {"durable", true}}}},
                {"exchanges", {{{"vhost", "/"}, {"name", "amq.direct"}, {"type", "topic"}}}}};
    REQUIRE_FALSE(b.broker->import_definitions(doc.dump()));
    CHECK(b.queue("q")->args().max_length == 9u);
    CHECK_FALSE(b.queue("amq.q"));
    CHECK(b.broker->default_vhost().find_exchange("amq.direct")->type == warren::exchanges::ExchangeType::Direct);
}

TEST_CASE("imported durable definitions and policies survive a restart", "[definitions][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    json before;
    {
        TestBroker b(storage_config(), fs);
        b.settle();
        require_imported(*b.broker, fixture_text());
        b.settle();
        before = b.broker->export_definitions();
    }
    TestBroker b(storage_config(), crashed(*fs));
    b.settle();
    json after = b.broker->export_definitions();
    // Transient queues are gone, as after a RabbitMQ restart; everything else is back.
    before["queues"].erase(std::remove_if(before["queues"].begin(), before["queues"].end(),
                                          [](const json& q) { return q["durable"] == false; }),
                           before["queues"].end());
    before["bindings"].erase(std::remove_if(before["bindings"].begin(), before["bindings"].end(),
                                            [](const json& bd) { return bd["destination"] == "transient"; }),
                             before["bindings"].end());
    CHECK(normalized(after).dump(2) == normalized(before).dump(2));
}
