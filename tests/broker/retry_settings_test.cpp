// Retry settings without a broker: the backoff arithmetic (linear, constant, exponential, caps),
// jitter bounds, which returns wait for each type, how arguments and a policy resolve, and the
// texts for values out of range.
#include "broker/retry_settings.hpp"

#include <catch2/catch.hpp>

#include "broker/queue_args.hpp"

using namespace warren::broker;
using warren::protocol::FieldTable;
using warren::protocol::FieldValue;

namespace {

RetrySettings settings(std::optional<RetryType> type, std::optional<std::uint64_t> min,
                       std::optional<std::uint64_t> max = {}, std::optional<std::uint64_t> multiplier = {},
                       std::optional<std::uint64_t> jitter = {}) {
    RetryArgs a;
    a.type = type;
    a.min_ms = min;
    a.max_ms = max;
    a.multiplier = multiplier;
    a.jitter_percent = jitter;
    return resolve_retry(a);
}

std::string parse_error(FieldTable t) {
    QueueArgsResult r = parse_queue_args(t, "queue 'q' in vhost '/'");
    return r.args ? std::string() : r.error;
}

FieldTable make_args(std::initializer_list<std::pair<std::string, FieldValue>> entries) {
    FieldTable t;
    for (const auto& [k, v] : entries) t.set(k, v);
    return t;
}

}  // namespace

TEST_CASE("linear backoff: min times the attempt, capped at max", "[retry]") {
    RetrySettings s = settings(RetryType::All, 1000, 3500);
    CHECK(s.backoff_ms(1) == 1000);
    CHECK(s.backoff_ms(2) == 2000);
    CHECK(s.backoff_ms(3) == 3000);
    CHECK(s.backoff_ms(4) == 3500);
    CHECK(s.backoff_ms(65535) == 3500);
    CHECK(s.backoff_ms(0) == 1000);  // the first attempt at least
}

TEST_CASE("RabbitMQ 4.3's interface: with a type and no max, the delay stays at min", "[retry]") {
    RetrySettings s = settings(RetryType::Failed, 250);
    CHECK(s.max_ms == 250);
    CHECK(s.backoff_ms(1) == 250);
    CHECK(s.backoff_ms(7) == 250);
}

TEST_CASE("LavinMQ's interface: multiplier 1 is constant, 2 or more exponential, no cap unless max", "[retry]") {
    CHECK(settings({}, 100, {}, 1).backoff_ms(9) == 100);
    RetrySettings exp = settings({}, 100, {}, 2);
    CHECK(exp.backoff_ms(1) == 100);
    CHECK(exp.backoff_ms(2) == 200);
    CHECK(exp.backoff_ms(5) == 1600);
    CHECK(exp.backoff_ms(40) == max_retry_delay_ms);  // saturates at 2^32-1 ms, never wraps
    CHECK(settings({}, 100, 1000, 3).backoff_ms(4) == 1000);
    CHECK(settings({}, 100, {}, 4294967295ull).backoff_ms(3) == max_retry_delay_ms);
    // Without a multiplier or a type: linear, uncapped.
    CHECK(settings({}, 100).backoff_ms(50) == 5000);
}

TEST_CASE("jitter takes at most its share off the backoff, never adds", "[retry]") {
    RetrySettings s = settings(RetryType::All, 1000, 10000, {}, 30);
    for (std::uint64_t r : {0ull, 1ull, 299ull, 300ull, 301ull, 12345ull, ~0ull}) {
        std::uint64_t d = s.delay_ms(2, r);
        CHECK(d <= 2000);
        CHECK(d >= 1400);
    }
    CHECK(s.delay_ms(2, 0) == 2000);
    CHECK(s.delay_ms(2, 600) == 1400);  // the largest share: 30 % of 2000
    RetrySettings full = settings(RetryType::All, 1000, 1000, {}, 100);
    CHECK(full.delay_ms(1, 1000) == 0);
    CHECK(full.delay_ms(1, 1001) == 1000);
    RetrySettings none = settings(RetryType::All, 1000, 1000);
    CHECK(none.delay_ms(1, 777) == 1000);
}

TEST_CASE("which returns wait, by type", "[retry]") {
    using R = ReturnReason;
    auto waits = [](RetryType t, R r) { return settings(t, 10).applies_to(r); };
    for (R r : {R::Rejected, R::Nacked, R::ChannelClosed, R::Recovered, R::TimedOut}) {
        CHECK(waits(RetryType::All, r));
        CHECK_FALSE(settings(RetryType::Disabled, 10).applies_to(r));
    }
    // RabbitMQ 4.3: a reject and a lost channel are failed deliveries; a nack, basic.recover and
    // the consumer timeout are plain returns.
    CHECK(waits(RetryType::Failed, R::Rejected));
    CHECK(waits(RetryType::Failed, R::ChannelClosed));
    CHECK_FALSE(waits(RetryType::Failed, R::Nacked));
    CHECK_FALSE(waits(RetryType::Failed, R::TimedOut));
    CHECK(waits(RetryType::Returned, R::Nacked));
    CHECK(waits(RetryType::Returned, R::Recovered));
    CHECK(waits(RetryType::Returned, R::TimedOut));
    CHECK_FALSE(waits(RetryType::Returned, R::Rejected));
}

TEST_CASE("what turns retries on: a minimum (alone it means every return), unless the type says disabled", "[retry]") {
    CHECK(settings({}, 500).type == RetryType::All);      // LavinMQ's reading of min alone
    CHECK_FALSE(settings(RetryType::All, {}).enabled());  // RabbitMQ 4.3: no delay to compute
    CHECK_FALSE(settings(RetryType::Disabled, 500).enabled());
    CHECK_FALSE(settings({}, {}).enabled());
    CHECK(settings(RetryType::Returned, 500).type == RetryType::Returned);
}

TEST_CASE("a policy's type wins; min and max take the lower of argument and policy", "[retry]") {
    RetryArgs declared;
    declared.type = RetryType::Failed;
    declared.min_ms = 1000;
    declared.max_ms = 8000;
    RetryArgs policy;
    policy.type = RetryType::All;
    policy.min_ms = 2000;
    policy.max_ms = 5000;
    policy.jitter_percent = 10;
    RetrySettings s = resolve_retry(declared, &policy);
    CHECK(s.type == RetryType::All);
    CHECK(s.min_ms == 1000);
    CHECK(s.max_ms == 5000);
    CHECK(s.jitter_percent == 10);
    RetryArgs only_policy;
    only_policy.min_ms = 300;
    CHECK(resolve_retry(RetryArgs{}, &only_policy).min_ms == 300);
}

TEST_CASE("retry arguments are parsed with the queue's, and bad ones are refused naming the argument", "[retry]") {
    QueueArgsResult ok = parse_queue_args(make_args({{"x-delayed-retry-type", "returned"},
                                                     {"x-delayed-retry-min", std::int32_t{100}},
                                                     {"x-delayed-retry-max", std::int64_t{60000}},
                                                     {"x-delayed-retry-multiplier", std::uint8_t{2}},
                                                     {"x-delayed-retry-jitter", std::int16_t{20}}}),
                                          "queue 'q' in vhost '/'");
    REQUIRE(ok.args);
    CHECK(ok.args->retry.type == RetryType::Returned);
    CHECK(ok.args->retry.min_ms == 100u);
    CHECK(ok.args->retry.max_ms == 60000u);
    CHECK(ok.args->retry.multiplier == 2u);
    CHECK(ok.args->retry.jitter_percent == 20u);

    CHECK(parse_error(make_args({{"x-delayed-retry-type", "sometimes"}})) ==
          "invalid arg 'x-delayed-retry-type' for queue 'q' in vhost '/': \"'sometimes' is not a valid delayed retry "
          "type; it must be one of all, failed, returned, disabled\"");
    CHECK(parse_error(make_args({{"x-delayed-retry-type", std::int32_t{1}}})) ==
          "invalid arg 'x-delayed-retry-type' for queue 'q' in vhost '/': {unacceptable_type,signedint}");
    CHECK(parse_error(make_args({{"x-delayed-retry-min", std::int32_t{0}}})) ==
          "invalid arg 'x-delayed-retry-min' for queue 'q' in vhost '/': {value_zero,0}");
    CHECK(parse_error(make_args({{"x-delayed-retry-min", std::int32_t{-5}}})) ==
          "invalid arg 'x-delayed-retry-min' for queue 'q' in vhost '/': {value_negative,-5}");
    CHECK(parse_error(make_args({{"x-delayed-retry-min", "1000"}})) ==
          "invalid arg 'x-delayed-retry-min' for queue 'q' in vhost '/': \"expected integer, got longstr\"");
    CHECK(parse_error(make_args({{"x-delayed-retry-max", std::int64_t{4294967296}}})) ==
          "invalid arg 'x-delayed-retry-max' for queue 'q' in vhost '/': {value_too_large,4294967296}");
    CHECK(parse_error(make_args({{"x-delayed-retry-multiplier", std::int32_t{0}}})) ==
          "invalid arg 'x-delayed-retry-multiplier' for queue 'q' in vhost '/': {value_zero,0}");
    CHECK(parse_error(make_args({{"x-delayed-retry-jitter", std::int32_t{101}}})) ==
          "invalid arg 'x-delayed-retry-jitter' for queue 'q' in vhost '/': {value_too_large,101}");
    CHECK(parse_error(
              make_args({{"x-delayed-retry-min", std::int32_t{1000}}, {"x-delayed-retry-max", std::int32_t{500}}})) ==
          "invalid arg 'x-delayed-retry-max' for queue 'q' in vhost '/': \"500 is smaller than the minimum delay, "
          "1000\"");
    CHECK(parse_error(make_args({{"x-delayed-retry-jitter", std::int32_t{0}}})).empty());
}

TEST_CASE("a redeclare with other retry arguments is refused, as RabbitMQ 4.3 compares them", "[retry]") {
    FieldTable current = make_args({{"x-delayed-retry-min", std::int32_t{1000}}});
    CHECK(check_args_equivalence(current, make_args({{"x-delayed-retry-min", std::int64_t{1000}}}),
                                 "queue 'q' in vhost '/'") == std::nullopt);
    auto detail = check_args_equivalence(current, make_args({{"x-delayed-retry-min", std::int32_t{2000}}}),
                                         "queue 'q' in vhost '/'");
    REQUIRE(detail);
    CHECK(*detail ==
          "inequivalent arg 'x-delayed-retry-min' for queue 'q' in vhost '/': received '2000' but current is '1000'");
    CHECK(check_args_equivalence(current, FieldTable{}, "queue 'q' in vhost '/'"));
}
