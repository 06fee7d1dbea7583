// Policies through the Broker's admin API and their effect on queues and exchanges that exist
// already and on those declared later: each key, the precedence, clearing, the API's errors,
// and a restart keeping them.
#include <catch2/catch.hpp>

#include "support/auth_test.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;
using namespace std::chrono_literals;

namespace {

PolicySpec spec(std::string name, std::string pattern, std::string definition, std::int64_t priority = 0,
                std::string apply_to = "all") {
    return {"/", std::move(name), std::move(pattern), std::move(apply_to), priority, std::move(definition)};
}

// A client on channel 1 with queue "dlq" (dead letters arrive there through "dlx", a fanout).
std::unique_ptr<TestClient> client(TestBroker& b) {
    auto c = std::make_unique<TestClient>(b);
    c->open_channel(1);
    c->declare_exchange(1, "dlx", "fanout");
    c->declare_queue(1, "dlq");
    c->bind_queue(1, "dlq", "dlx", "");
    return c;
}

}  // namespace

TEST_CASE("a policy's message-ttl expires what an existing queue receives from then on", "[policy][ttl]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    c->publish(1, "", "q", "before");
    REQUIRE_FALSE(b.broker->set_policy(spec("ttl", "^q$", R"({"message-ttl":100,"dead-letter-exchange":"dlx"})")));
    c->publish(1, "", "q", "after");
    b.advance(150ms);
    // As in RabbitMQ, a message keeps the expiry it was enqueued with: "before" has none.
    CHECK(drain_bodies(*c, 1, "q") == std::vector<std::string>{"before"});
    CHECK(drain_bodies(*c, 1, "dlq") == std::vector<std::string>{"after"});
}

TEST_CASE("a policy's dead-letter-exchange takes rejected messages of an existing queue", "[policy][dlx]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    c->publish(1, "", "q", "m");
    REQUIRE_FALSE(b.broker->set_policy(spec("dl", "^q$", R"({"dead-letter-exchange":"dlx"})")));
    c->get(1, "q");
    auto got = c->deliveries();
    REQUIRE(got.size() == 1);
    c->reject(1, got[0].delivery_tag(), false);
    CHECK(drain_bodies(*c, 1, "dlq") == std::vector<std::string>{"m"});
}

TEST_CASE("a policy's max-length drops from the head of an existing queue at once", "[policy][maxlen]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    for (auto body : {"0", "1", "2", "3", "4"}) c->publish(1, "", "q", body);
    REQUIRE_FALSE(b.broker->set_policy(spec("ml", "^q$", R"({"max-length":2,"dead-letter-exchange":"dlx"})")));
    CHECK(b.queue("q")->message_count() == 2);
    CHECK(drain_bodies(*c, 1, "dlq") == std::vector<std::string>{"0", "1", "2"});
    CHECK(drain_bodies(*c, 1, "q") == std::vector<std::string>{"3", "4"});
}

TEST_CASE("clearing a policy gives the queue back its own arguments", "[policy][maxlen]") {
    TestBroker b;
    auto c = client(b);
    FieldTable args;
    args.set("x-max-length", std::int64_t{3});
    c->declare_queue(1, "q", args);
    REQUIRE_FALSE(b.broker->set_policy(spec("ml", "^q$", R"({"max-length":1})")));
    CHECK(b.queue("q")->args().max_length == 1u);
    REQUIRE_FALSE(b.broker->clear_policy("/", "ml"));
    CHECK(b.queue("q")->args().max_length == 3u);
    CHECK_FALSE(b.queue("q")->policy());
    c->publish_n(1, "", "q", 5);
    CHECK(b.queue("q")->message_count() == 3);
}

TEST_CASE("an operator policy caps a policy's limit; the policy's other keys still apply", "[policy][precedence]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q$", R"({"max-length":10,"dead-letter-exchange":"dlx"})")));
    REQUIRE_FALSE(b.broker->set_operator_policy(spec("cap", ".*", R"({"max-length":2})")));
    c->publish_n(1, "", "q", 4);
    CHECK(b.queue("q")->message_count() == 2);
    CHECK(drain_bodies(*c, 1, "dlq").size() == 2);
    CHECK(b.queue("q")->policy()->name == "p");
    CHECK(b.queue("q")->operator_policy()->name == "cap");
}

TEST_CASE("the higher priority policy wins, and a new one of higher priority takes over at once",
          "[policy][precedence]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    REQUIRE_FALSE(b.broker->set_policy(spec("wide", ".*", R"({"max-length":5})", 1)));
    CHECK(b.queue("q")->policy()->name == "wide");
    REQUIRE_FALSE(b.broker->set_policy(spec("narrow", "^q$", R"({"message-ttl":1000})", 0)));
    CHECK(b.queue("q")->policy()->name == "wide");  // lower priority: not applied, keys not merged
    CHECK_FALSE(b.queue("q")->args().message_ttl_ms);
    REQUIRE_FALSE(b.broker->set_policy(spec("narrow", "^q$", R"({"message-ttl":1000})", 2)));
    CHECK(b.queue("q")->policy()->name == "narrow");
    CHECK(b.queue("q")->args().message_ttl_ms == 1000u);
    CHECK_FALSE(b.queue("q")->args().max_length);
}

TEST_CASE("a queue declared after the policy gets it, and its arguments keep precedence", "[policy][precedence]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q", R"({"max-length":10,"overflow":"reject-publish"})")));
    auto c = client(b);
    FieldTable args;
    args.set("x-overflow", std::string("drop-head"));
    c->declare_queue(1, "q1", args);
    c->declare_queue(1, "q2");
    CHECK(b.queue("q1")->args().overflow == Overflow::DropHead);
    CHECK(b.queue("q2")->args().overflow == Overflow::RejectPublish);
    CHECK(b.queue("q2")->args().max_length == 10u);
}

TEST_CASE("a policy's overflow reject-publish nacks publishes to a full queue", "[policy][maxlen]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    c->confirm_select(1);
    c->take<ConfirmSelectOk>();
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q$", R"({"max-length":1,"overflow":"reject-publish"})")));
    c->publish(1, "", "q", "a");
    c->publish(1, "", "q", "b");
    CHECK(c->take<BasicAck>().size() == 1);
    CHECK(c->take<BasicNack>().size() == 1);
}

TEST_CASE("a policy's expires deletes an idle existing queue", "[policy][expires]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q$", R"({"expires":1000})")));
    b.advance(999ms);
    CHECK(b.queue("q"));
    b.advance(2ms);
    CHECK_FALSE(b.queue("q"));
}

TEST_CASE("a policy's delivery-limit dead-letters a message returned too often", "[policy][delivery_limit]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q$", R"({"delivery-limit":1,"dead-letter-exchange":"dlx"})")));
    c->publish(1, "", "q", "m");
    for (int i = 0; i < 2; ++i) {
        c->get(1, "q");
        auto got = c->deliveries();
        REQUIRE(got.size() == 1);
        c->nack(1, got[0].delivery_tag(), false, true);
    }
    CHECK(b.queue("q")->message_count() == 0);
    CHECK(drain_bodies(*c, 1, "dlq") == std::vector<std::string>{"m"});
}

TEST_CASE("a policy's alternate-exchange takes what an existing exchange cannot route", "[policy][ae]") {
    TestBroker b;
    auto c = client(b);
    c->declare_exchange(1, "x", "direct");
    c->declare_exchange(1, "ae", "fanout");
    c->declare_queue(1, "unrouted");
    c->bind_queue(1, "unrouted", "ae", "");
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "^x$", R"({"alternate-exchange":"ae"})", 0, "exchanges")));
    c->publish(1, "x", "nowhere", "m");
    CHECK(drain_bodies(*c, 1, "unrouted") == std::vector<std::string>{"m"});
    // A redeclare as declared is still equivalent: the policy's value is not an argument.
    c->declare_exchange(1, "x", "direct");
    CHECK(c->take<ChannelClose>().empty());
    REQUIRE_FALSE(b.broker->clear_policy("/", "p"));
    c->publish(1, "x", "nowhere", "m2");
    CHECK(drain_bodies(*c, 1, "unrouted").empty());
}

TEST_CASE("apply-to exchanges leaves queues alone", "[policy]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "q");
    REQUIRE_FALSE(b.broker->set_policy(spec("p", "", R"({"max-length":1})", 0, "exchanges")));
    CHECK_FALSE(b.queue("q")->policy());
    CHECK(b.broker->default_vhost().find_exchange("dlx")->policy->name == "p");
}

TEST_CASE("the policy API names the field and keeps RabbitMQ's texts", "[policy][admin]") {
    TestBroker b;
    auto e = b.broker->set_policy(spec("p", "^q", R"({"foo":1})"));
    REQUIRE(e);
    CHECK(e->kind == AdminError::Kind::Invalid);
    CHECK(e->field == "definition");
    CHECK(e->text == "[{<<\"foo\">>,1}] are not recognised policy settings");
    PolicySpec other_vhost = spec("p", "^q", R"({"max-length":1})");
    other_vhost.vhost = "nope";
    CHECK(b.broker->set_policy(other_vhost)->kind == AdminError::Kind::NotFound);
    auto missing = b.broker->clear_policy("/", "p");
    REQUIRE(missing);
    CHECK(missing->kind == AdminError::Kind::NotFound);
    CHECK(missing->text == "Parameter does not exist");
    CHECK(b.broker->set_policy(spec("", "^q", R"({"max-length":1})"))->field == "name");
    CHECK(b.broker->set_operator_policy(spec("o", "^q", R"({"overflow":"drop-head"})"))->field == "definition");
}

TEST_CASE("policies are listed by vhost, priority and name", "[policy][admin]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_vhost("v2"));
    REQUIRE_FALSE(b.broker->set_policy(spec("b", "^q", R"({"max-length":1})", 1)));
    REQUIRE_FALSE(b.broker->set_policy(spec("a", "^q", R"({"max-length":1})", 1)));
    REQUIRE_FALSE(b.broker->set_policy(spec("c", "^q", R"({"max-length":1})", 7)));
    PolicySpec in_v2 = spec("z", "", R"({"max-length":1})");
    in_v2.vhost = "v2";
    REQUIRE_FALSE(b.broker->set_policy(in_v2));
    REQUIRE_FALSE(b.broker->set_operator_policy(spec("o", "", R"({"max-length":1})")));
    std::vector<std::string> names;
    for (const auto& l : b.broker->list_policies(PolicyKind::Policy)) names.push_back(l.vhost + ":" + l.policy->name);
    CHECK(names == std::vector<std::string>{"/:c", "/:a", "/:b", "v2:z"});
    CHECK(b.broker->list_policies(PolicyKind::Policy, "v2").size() == 1);
    CHECK(b.broker->list_policies(PolicyKind::Operator).size() == 1);
}

TEST_CASE("policies and operator policies survive a restart and apply to the recovered queues", "[policy][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        b.settle();
        auto c = client(b);
        c->declare_queue(1, "q", {}, true);
        REQUIRE_FALSE(b.broker->set_policy(spec("p", "^q$", R"({"max-length":3,"ha-mode":"all"})", 4, "queues")));
        REQUIRE_FALSE(b.broker->set_policy(spec("gone", "^q$", R"({"max-length":1})")));
        REQUIRE_FALSE(b.broker->clear_policy("/", "gone"));
        REQUIRE_FALSE(b.broker->set_operator_policy(spec("o", ".*", R"({"max-length":2})")));
        REQUIRE_FALSE(b.broker->set_global_parameter("cluster_name", "\"c1\""));
        b.settle();
    }
    // Twice: the first start replays the records, the second reads the snapshot it wrote.
    auto image = crashed(*fs);
    {
        TestBroker once(storage_config(), image);
        once.settle();
        REQUIRE(once.queue("q")->policy());
    }
    TestBroker b(storage_config(), crashed(*image));
    b.settle();
    auto listed = b.broker->list_policies(PolicyKind::Policy);
    REQUIRE(listed.size() == 1);
    const Policy& p = *listed[0].policy;
    CHECK(p.name == "p");
    CHECK(p.priority == 4);
    CHECK(p.apply_to == PolicyApplyTo::Queues);
    CHECK(p.definition == R"({"ha-mode":"all","max-length":3})");
    REQUIRE(b.broker->list_policies(PolicyKind::Operator).size() == 1);
    Queue* q = b.queue("q");
    REQUIRE(q);
    CHECK(q->policy()->name == "p");
    CHECK(q->args().max_length == 2u);
    CHECK(b.broker->global_parameters().at("cluster_name") == "\"c1\"");
}

TEST_CASE("policies leave stream queues alone", "[policy][stream]") {
    TestBroker b;
    auto c = client(b);
    c->declare_queue(1, "s", table({{"x-queue-type", "stream"}}), true);
    for (const char* body : {"a", "b", "c"}) c->publish(1, "", "s", body);
    // A classic queue's keys must never reach a stream: this one would delete it after 100 ms
    // and cut it to one message.
    REQUIRE_FALSE(b.broker->set_policy(spec("all", ".*", R"({"expires":100,"max-length":1,"message-ttl":10})")));
    b.advance(300ms);
    auto* q = b.broker->default_vhost().find_queue("s");
    REQUIRE(q);
    CHECK(q->message_count() == 3);
    CHECK_FALSE(q->args().expires_ms);
    CHECK_FALSE(q->policy());
}
