// Policies on their own (policy.hpp): RabbitMQ 3.10's validation texts (recorded from a 3.10.8
// node with rabbitmqctl set_policy), which policy matches, and the precedence between a queue's
// arguments, its policy and its operator policy.
#include "broker/policy.hpp"

#include <catch2/catch.hpp>

using namespace warren::broker;
using warren::protocol::FieldTable;

namespace {

std::string refusal(std::string definition, PolicyKind kind = PolicyKind::Policy, std::string pattern = "^q",
                    std::string apply_to = "all") {
    auto made = make_policy({"/", "p", std::move(pattern), std::move(apply_to), 0, std::move(definition)}, kind);
    if (auto* e = std::get_if<PolicyError>(&made)) return e->text;
    return "";
}

Policy policy(std::string name, std::string definition, std::int64_t priority = 0, std::string pattern = "^q",
              std::string apply_to = "all", PolicyKind kind = PolicyKind::Policy) {
    auto made = make_policy(
        {"/", std::move(name), std::move(pattern), std::move(apply_to), priority, std::move(definition)}, kind);
    REQUIRE(std::holds_alternative<Policy>(made));
    return std::get<Policy>(std::move(made));
}

const Policy* ptr_of(const Policy& p) {
    return &p;
}

PolicyRef ref(Policy p) {
    return std::make_shared<const Policy>(std::move(p));
}

QueueArgs parsed(const FieldTable& t) {
    return *parse_queue_args(t, "queue 'q' in vhost '/'").args;
}

}  // namespace

TEST_CASE("a policy's values are checked with RabbitMQ's texts", "[policy]") {
    CHECK(refusal(R"({"message-ttl":-1})") == "-1 is not a valid message TTL");
    CHECK(refusal(R"({"expires":0})") == "0 is not a valid queue expiry");
    CHECK(refusal(R"({"max-length":"x"})") == "<<\"x\">> is not a valid maximum length");
    CHECK(refusal(R"({"max-length-bytes":1.5})") == "1.5 is not a valid maximum length in bytes");
    CHECK(refusal(R"({"overflow":"x"})") == "<<\"x\">> is not a valid overflow value");
    CHECK(refusal(R"({"queue-mode":"x"})") == "<<\"x\">> is not a valid queue-mode value");
    CHECK(refusal(R"({"delivery-limit":-1})") == "-1 is not a valid delivery limit");
    CHECK(refusal(R"({"dead-letter-exchange":1})") == "1 is not a valid dead letter exchange name");
    CHECK(refusal(R"({"dead-letter-routing-key":1})") == "1 is not a valid dead letter routing key");
    CHECK(refusal(R"({"alternate-exchange":1})") == "1 is not a valid alternate exchange name");
    CHECK(refusal(R"({"ha-mode":"bogus"})") == "<<\"bogus\">> is not a valid ha-mode value");
    CHECK(refusal(R"({"queue-master-locator":"x"})") == "<<\"x\">> invalid queue-master-locator value");
    CHECK(refusal("{}") == "no policy provided");
}

TEST_CASE("unknown keys are refused together, as RabbitMQ lists them", "[policy]") {
    CHECK(refusal(R"({"foo":1,"bar":2})") == "[{<<\"bar\">>,2},{<<\"foo\">>,1}] are not recognised policy settings");
    CHECK(refusal(R"({"max-priority":3})") == "[{<<\"max-priority\">>,3}] are not recognised policy settings");
    CHECK(refusal(R"({"single-active-consumer":true})") ==
          "[{<<\"single-active-consumer\">>,true}] are not recognised policy settings");
    // A known key with a bad value is reported before unknown ones.
    CHECK(refusal(R"({"foo":1,"message-ttl":-1})") == "-1 is not a valid message TTL");
}

TEST_CASE("operator policies take only RabbitMQ's operator keys", "[policy]") {
    CHECK(refusal(R"({"dead-letter-exchange":"x"})", PolicyKind::Operator) ==
          "[{<<\"dead-letter-exchange\">>,<<\"x\">>}] are not recognised policy settings");
    CHECK(refusal(R"({"queue-mode":"lazy"})", PolicyKind::Operator) ==
          "[{<<\"queue-mode\">>,<<\"lazy\">>}] are not recognised policy settings");
    CHECK(refusal(R"({"overflow":"reject-publish"})", PolicyKind::Operator) ==
          "[{<<\"overflow\">>,<<\"reject-publish\">>}] are not recognised policy settings");
    CHECK(refusal(R"({"max-length":5,"message-ttl":1000,"expires":100000,"max-length-bytes":100,"delivery-limit":3,)"
                  R"("max-in-memory-length":1})",
                  PolicyKind::Operator) == "");
}

TEST_CASE("the pattern and apply-to are checked", "[policy]") {
    CHECK(refusal(R"({"max-length":1})", PolicyKind::Policy, "^q", "foo") ==
          "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'");
    CHECK(refusal(R"({"max-length":1})", PolicyKind::Policy, "(")
              .starts_with("pattern should be regular expression but is invalid: "));
    CHECK(refusal(R"([1])").starts_with("definition must be a dictionary"));
}

TEST_CASE("known keys Warren does not act on are accepted and listed as ignored", "[policy]") {
    Policy p = policy("ha", R"({"ha-mode":"all","ha-sync-mode":"automatic","queue-version":2,"max-age":"1D"})");
    CHECK(p.keys.ignored == std::vector<std::string>{"ha-mode", "ha-sync-mode", "max-age", "queue-version"});
    Policy lazy = policy("lazy", R"({"queue-mode":"lazy"})");
    CHECK(lazy.keys.queue_mode == "lazy");
    CHECK(lazy.keys.ignored.empty());
}

TEST_CASE("the matching policy of highest priority applies; a tie goes to the first name", "[policy]") {
    std::vector<PolicyRef> list{
        ref(policy("low", R"({"max-length":1})", 1, "^q")), ref(policy("high", R"({"max-length":2})", 5, "^q\\.a")),
        ref(policy("c", R"({"max-length":3})", 0, "")), ref(policy("b", R"({"max-length":4})", 0, "^x$")),
        ref(policy("a", R"({"max-length":5})", 0, "^x$"))};
    CHECK((*match_policy(list, "q.a", true))->name == "high");
    CHECK((*match_policy(list, "q.b", true))->name == "low");
    CHECK((*match_policy(list, "x", true))->name == "a");
    // An empty pattern matches every name (re:run with an empty pattern).
    CHECK((*match_policy(list, "zzz", true))->name == "c");
}

TEST_CASE("apply-to limits a policy to queues or to exchanges", "[policy]") {
    std::vector<PolicyRef> list{ref(policy("qs", R"({"max-length":1})", 0, "", "queues")),
                                ref(policy("xs", R"({"alternate-exchange":"ae"})", 0, "", "exchanges"))};
    CHECK((*match_policy(list, "n", true))->name == "qs");
    CHECK((*match_policy(list, "n", false))->name == "xs");
    std::vector<PolicyRef> none{ref(policy("qs", R"({"max-length":1})", 0, "", "queues"))};
    CHECK(match_policy(none, "n", false) == nullptr);
}

TEST_CASE("numeric limits take the smallest of argument, policy and operator policy", "[policy][precedence]") {
    FieldTable declared;
    declared.set("x-max-length", std::int64_t{500});
    declared.set("x-message-ttl", std::int64_t{30000});
    Policy p = policy("p", R"({"max-length":1000,"message-ttl":1000,"expires":900000,"max-length-bytes":50})");
    Policy op =
        policy("o", R"({"max-length":2,"message-ttl":20000,"expires":800000})", 0, "^q", "all", PolicyKind::Operator);
    QueueArgs a = effective_queue_args(parsed(declared), declared, &p, &op);
    CHECK(a.max_length == 2u);         // operator policy below argument and policy
    CHECK(a.message_ttl_ms == 1000u);  // policy below argument and operator policy
    CHECK(a.expires_ms == 800000u);    // no argument: the smaller of the two policies
    CHECK(a.max_length_bytes == 50u);  // the policy alone
    QueueArgs only_policy = effective_queue_args(parsed(declared), declared, &p, nullptr);
    CHECK(only_policy.max_length == 500u);  // the argument is smaller
}

TEST_CASE("the argument wins for dead-lettering and overflow; operator policies cannot set them",
          "[policy][precedence]") {
    FieldTable declared;
    declared.set("x-dead-letter-exchange", std::string("argdlx"));
    Policy p =
        policy("p", R"({"dead-letter-exchange":"poldlx","dead-letter-routing-key":"k","overflow":"reject-publish"})");
    QueueArgs a = effective_queue_args(parsed(declared), declared, &p, nullptr);
    CHECK(a.dead_letter_exchange == "argdlx");
    CHECK(a.dead_letter_routing_key == "k");  // each key on its own: no argument for this one
    CHECK(a.overflow == Overflow::RejectPublish);
    FieldTable drop;
    drop.set("x-overflow", std::string("drop-head"));
    CHECK(effective_queue_args(parsed(drop), drop, &p, nullptr).overflow == Overflow::DropHead);
}

TEST_CASE("a policy's delivery-limit replaces a quorum queue's default one", "[policy][precedence]") {
    FieldTable quorum;
    quorum.set("x-queue-type", std::string("quorum"));
    CHECK(parsed(quorum).delivery_limit == 20u);
    Policy p = policy("p", R"({"delivery-limit":50})");
    CHECK(effective_queue_args(parsed(quorum), quorum, &p, nullptr).delivery_limit == 50u);
    quorum.set("x-delivery-limit", std::int64_t{3});
    CHECK(effective_queue_args(parsed(quorum), quorum, &p, nullptr).delivery_limit == 3u);
}

TEST_CASE("an exchange's alternate-exchange argument wins over its policy", "[policy][precedence]") {
    Policy p = policy("p", R"({"alternate-exchange":"pol-ae"})");
    FieldTable none, with;
    with.set("alternate-exchange", std::string("arg-ae"));
    CHECK(effective_alternate_exchange(none, &p) == "pol-ae");
    CHECK(effective_alternate_exchange(with, &p) == "arg-ae");
    CHECK(effective_alternate_exchange(none, nullptr) == std::nullopt);
}

TEST_CASE("the effective definition merges both policies as the management API shows it", "[policy]") {
    Policy p = policy("p", R"({"max-length":10,"dead-letter-exchange":"d"})");
    Policy op = policy("o", R"({"max-length":2,"message-ttl":5})", 0, "^q", "all", PolicyKind::Operator);
    CHECK(effective_policy_definition(&p, &op) == R"({"dead-letter-exchange":"d","max-length":2,"message-ttl":5})");
    CHECK(effective_policy_definition(nullptr, nullptr) == "{}");
}

TEST_CASE("the delayed-retry keys are checked with RabbitMQ 4.3's texts", "[policy][retry]") {
    CHECK(refusal(R"({"delayed-retry-type":"sometimes","delayed-retry-min":1})") ==
          "<<\"sometimes\">> is not a valid delayed retry type. Must be one of: all, failed, returned, disabled");
    CHECK(refusal(R"({"delayed-retry-min":0})") ==
          "0 is not a valid delayed retry minimum delay. Must be a positive integer (at most 4294967295)");
    CHECK(refusal(R"({"delayed-retry-max":"5"})") ==
          "<<\"5\">> is not a valid delayed retry maximum delay. Must be a positive integer (at most 4294967295)");
    CHECK(refusal(R"({"delayed-retry-min":4294967296})") ==
          "4294967296 is not a valid delayed retry minimum delay. Must be a positive integer (at most 4294967295)");
    CHECK(refusal(R"({"delayed-retry-multiplier":0})") ==
          "0 is not a valid delayed retry multiplier. Must be a positive integer");
    CHECK(refusal(R"({"delayed-retry-jitter":101})") ==
          "101 is not a valid delayed retry jitter. Must be an integer from 0 to 100");
    // rabbit_quorum_queue:validate_delayed_retry_constraints/1.
    CHECK(refusal(R"({"delayed-retry-type":"failed"})") ==
          "delayed-retry-min is required when delayed-retry-type is failed");
    CHECK(refusal(R"({"delayed-retry-type":"disabled"})") == "");
    CHECK(refusal(R"({"delayed-retry-min":500,"delayed-retry-max":100})") ==
          "delayed-retry-max (100) must not be smaller than delayed-retry-min (500)");
    Policy p = policy("p", R"({"delayed-retry-type":"returned","delayed-retry-min":100,"delayed-retry-max":800,)"
                           R"("delayed-retry-multiplier":2,"delayed-retry-jitter":10})");
    CHECK(p.keys.retry == RetryArgs{RetryType::Returned, 100, 800, 2, 10});
    // Operator policies take RabbitMQ's three keys, not LavinMQ's multiplier nor Warren's jitter.
    CHECK(refusal(R"({"delayed-retry-type":"all","delayed-retry-min":10,"delayed-retry-max":20})",
                  PolicyKind::Operator) == "");
    CHECK(refusal(R"({"delayed-retry-multiplier":2})", PolicyKind::Operator) ==
          "[{<<\"delayed-retry-multiplier\">>,2}] are not recognised policy settings");
}

TEST_CASE("LavinMQ's delayed-message key takes a boolean", "[policy][delayed]") {
    CHECK(refusal(R"({"delayed-message":"yes"})") == "<<\"yes\">> is not a valid delayed-message value");
    CHECK(policy("p", R"({"delayed-message":true})").keys.delayed_message == true);
    CHECK(policy_delays(nullptr) == false);
    CHECK(policy_delays(ptr_of(policy("p", R"({"delayed-message":false})"))) == false);
    CHECK(refusal(R"({"delayed-message":true})", PolicyKind::Operator) ==
          "[{<<\"delayed-message\">>,true}] are not recognised policy settings");
}

TEST_CASE(
    "retry keys merge as rabbit_quorum_queue merges them: the operator's type, the larger minimum, the "
    "smaller maximum",
    "[policy][retry][precedence]") {
    Policy p = policy("p", R"({"delayed-retry-type":"all","delayed-retry-min":100,"delayed-retry-max":5000,)"
                           R"("delayed-retry-multiplier":2})");
    Policy op = policy("o", R"({"delayed-retry-type":"failed","delayed-retry-min":300,"delayed-retry-max":2000})", 0,
                       "^q", "all", PolicyKind::Operator);
    CHECK(effective_retry_policy(&p, &op) == RetryArgs{RetryType::Failed, 300, 2000, 2, std::nullopt});
    CHECK(effective_retry_policy(&p, nullptr) == p.keys.retry);
    CHECK(effective_retry_policy(nullptr, nullptr).empty());
    CHECK(
        effective_policy_definition(&p, &op) ==
        R"({"delayed-retry-max":2000,"delayed-retry-min":300,"delayed-retry-multiplier":2,"delayed-retry-type":"failed"})");
    // Against the arguments (resolve_retry): the policy's type wins, min and max take the lower.
    RetryArgs declared{RetryType::Returned, 50, 10000, std::nullopt, 20};
    RetryArgs merged = effective_retry_policy(&p, &op);
    RetrySettings s = resolve_retry(declared, &merged);
    CHECK(s.type == RetryType::Failed);
    CHECK(s.min_ms == 50);
    CHECK(s.max_ms == 2000);
    CHECK(s.multiplier == 2u);
    CHECK(s.jitter_percent == 20);
}
