// The dead-letter workbench's HTTP side without sockets (mgmt/api_workbench.cpp): a redrive of
// a whole long queue runs in pieces across loop turns and meets each message once, a queue
// deleted between pieces ends it with what was done, and a durable redrive is answered only
// once its copies are stored.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "broker/vhost.hpp"
#include "mgmt/api.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;
using warren::mgmt::Api;
using warren::mgmt::HttpRequest;
using warren::mgmt::HttpResponse;
using json = nlohmann::json;

namespace {

struct Harness {
    std::shared_ptr<warren::store::FaultFileSystem> fs = std::make_shared<warren::store::FaultFileSystem>();
    TestBroker b;
    TestClient c;
    std::vector<std::function<void()>> posted;
    std::optional<HttpResponse> answer;
    Api api{*b.broker,
            [this](std::chrono::nanoseconds, std::function<void()> f) { posted.push_back(std::move(f)); },
            {5672}};

    explicit Harness(Config config = {}) : b(config, config.data_dir.empty() ? nullptr : fs), c(b) {
        c.open_channel(1);
    }

    // Starts a request; the answer lands in `answer`, now or after turns run by hand.
    void start(std::string method, std::string target, std::string body = {}) {
        answer.reset();
        HttpRequest r;
        r.method = std::move(method);
        r.target = std::move(target);
        r.body = std::move(body);
        r.peer_is_loopback = true;
        r.peer_address = "127.0.0.1:1";
        r.headers.emplace_back("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=");  // guest:guest
        api.handle(r, [this](HttpResponse resp) { answer = std::move(resp); });
    }
    // Runs one posted piece (a loop turn); false when there is none.
    bool turn() {
        if (posted.empty()) return false;
        auto f = std::move(posted.front());
        posted.erase(posted.begin());
        f();
        return true;
    }
    json body() const { return json::parse(answer->body); }

    void declare(std::string_view name, bool durable = false) {
        c.declare_queue(1, name, {}, durable);
        c.take<QueueDeclareOk>();
    }
};

}  // namespace

TEST_CASE("a redrive of a long queue runs in pieces across loop turns and moves each message once",
          "[mgmt][workbench]") {
    Harness h;
    h.declare("dead");
    h.declare("retry");
    h.c.bind_queue(1, "retry", "amq.direct", "again");
    h.c.take<QueueBindOk>();
    for (int i = 0; i < 2500; ++i) h.c.publish(1, "", "dead", std::to_string(i));
    REQUIRE(h.b.queue("dead")->message_count() == 2500);

    h.start("POST", "/api/queues/%2F/dead/messages/redrive",
            R"({"all": true, "target": {"exchange": "amq.direct", "routing_key": "again"}})");
    CHECK_FALSE(h.answer);  // the first 1,000, then a piece posted
    CHECK(h.b.queue("retry")->message_count() == 1000);
    int turns = 0;
    while (!h.answer && h.turn()) ++turns;
    REQUIRE(h.answer);
    CHECK(turns == 2);
    CHECK(h.answer->status == 200);
    CHECK(h.body() ==
          json{{"dry_run", false}, {"matched", 2500}, {"redriven", 2500}, {"failed", 0}, {"failures", json::array()}});
    CHECK(h.b.queue("dead")->message_count() == 0);
    auto bodies = drain_bodies(h.c, 1, "retry");
    REQUIRE(bodies.size() == 2500);
    CHECK(bodies.front() == "0");
    CHECK(bodies.back() == "2499");
}

TEST_CASE("a redrive back into the same queue, in pieces, meets each message once", "[mgmt][workbench]") {
    Harness h;
    h.declare("loop");
    for (int i = 0; i < 1500; ++i) h.c.publish(1, "", "loop", std::to_string(i));
    h.start("POST", "/api/queues/%2F/loop/messages/redrive",
            R"({"all": true, "target": {"exchange": "", "routing_key": "loop"}})");
    while (!h.answer && h.turn()) {
    }
    REQUIRE(h.answer);
    CHECK(h.body()["redriven"] == 1500);
    auto bodies = drain_bodies(h.c, 1, "loop");
    REQUIRE(bodies.size() == 1500);
    CHECK(bodies.front() == "0");
}

TEST_CASE("a queue deleted between the pieces of a redrive ends it with what was done", "[mgmt][workbench]") {
    Harness h;
    h.declare("dead");
    h.declare("retry");
    h.c.bind_queue(1, "retry", "amq.direct", "again");
    h.c.take<QueueBindOk>();
    for (int i = 0; i < 1500; ++i) h.c.publish(1, "", "dead", "m");
    h.start("POST", "/api/queues/%2F/dead/messages/delete", R"({"all": true})");
    CHECK_FALSE(h.answer);
    h.c.delete_queue(1, "dead");
    h.turn();
    REQUIRE(h.answer);
    CHECK(h.answer->status == 200);
    CHECK(h.body()["deleted"] == 1000);
}

TEST_CASE("a durable redrive is answered only once its copies are stored", "[mgmt][workbench][storage]") {
    Harness h(storage_config());
    h.declare("dead", true);
    h.declare("retry", true);
    h.c.bind_queue(1, "retry", "amq.direct", "again");
    h.c.take<QueueBindOk>();
    h.c.publish(1, "", "dead", "a", persistent());
    h.c.publish(1, "", "dead", "b", persistent());
    h.b.settle();

    h.b.block_on_syncs = false;
    h.fs->hold_syncs(true);
    h.start("POST", "/api/queues/%2F/dead/messages/redrive",
            R"({"all": true, "target": {"exchange": "amq.direct", "routing_key": "again"}})");
    h.b.settle();  // the turn ends: the copies are written, their fdatasync held
    h.fs->wait_for_held_syncs(1);
    CHECK_FALSE(h.answer);
    CHECK(h.b.queue("retry")->message_count() == 2);
    h.fs->hold_syncs(false);
    h.b.block_on_syncs = true;
    h.b.settle();
    REQUIRE(h.answer);
    CHECK(h.answer->status == 200);
    CHECK(h.body()["redriven"] == 2);
}
