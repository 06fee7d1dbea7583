// Queue argument validation at declare (RabbitMQ 3.10's rabbit_amqqueue:declare_args/0 and
// rabbit_channel's x-dead-letter-exchange check), through the protocol: each refusal is a
// channel.close 406 naming the argument and the queue.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "support/test_client.hpp"

using namespace warren::testing;

namespace {

// Declares "q" with the one argument and returns the channel.close text ("" if declared).
std::string declare_error(TestBroker& b, const FieldTable& args) {
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q", args);
    auto close = c.channel_close(1);
    if (!close) {
        CHECK(c.take<QueueDeclareOk>().size() == 1);
        return {};
    }
    CHECK(close->reply_code == 406);
    CHECK(close->class_id == 50);
    CHECK(close->method_id == 10);
    CHECK(b.queue("q") == nullptr);
    return text_of(*close);
}

std::string invalid(std::string_view key, std::string_view reason) {
    return fmt::format("PRECONDITION_FAILED - invalid arg '{}' for queue 'q' in vhost '/': {}", key, reason);
}

}  // namespace

TEST_CASE("integer arguments of another type are refused", "[queue_args]") {
    const std::string key = GENERATE("x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes",
                                     "x-max-priority");
    TestBroker b;
    CHECK(declare_error(b, table({{key, "10"}})) == invalid(key, "\"expected integer, got longstr\""));
    CHECK(declare_error(b, table({{key, true}})) == invalid(key, "\"expected integer, got bool\""));
    CHECK(declare_error(b, table({{key, 1.5}})) == invalid(key, "\"expected integer, got double\""));
}

TEST_CASE("integer arguments accept every integer type", "[queue_args]") {
    const FieldValue value = GENERATE(FieldValue(std::int8_t{5}), FieldValue(std::uint8_t{5}), FieldValue(std::int16_t{5}),
                                      FieldValue(std::uint16_t{5}), FieldValue(std::int32_t{5}),
                                      FieldValue(std::uint32_t{5}), FieldValue(std::int64_t{5}));
    TestBroker b;
    CHECK(declare_error(b, table({{"x-message-ttl", value}, {"x-max-length", value}})).empty());
}

TEST_CASE("negative values are refused", "[queue_args]") {
    const std::string key = GENERATE("x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes",
                                     "x-max-priority");
    TestBroker b;
    CHECK(declare_error(b, table({{key, std::int32_t{-1}}})) == invalid(key, "{value_negative,-1}"));
}

TEST_CASE("x-expires 0 is refused", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-expires", std::int32_t{0}}})) == invalid("x-expires", "{value_zero,0}"));
}

TEST_CASE("a TTL above RabbitMQ's largest timer is refused", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-message-ttl", std::int64_t{1} << 40}})) ==
          invalid("x-message-ttl", "{value_too_large,1099511627776}"));
    CHECK(declare_error(b, table({{"x-message-ttl", std::int64_t{4294967295}}})).empty());
}

TEST_CASE("x-max-priority accepts 0 to 255", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-max-priority", std::int32_t{256}}})) ==
          invalid("x-max-priority", "{max_value_exceeded,256}"));
    CHECK(declare_error(b, table({{"x-max-priority", std::int32_t{255}}})).empty());
    TestBroker b2;
    CHECK(declare_error(b2, table({{"x-max-priority", std::int32_t{0}}})).empty());
}

TEST_CASE("x-overflow accepts RabbitMQ's three behaviours only", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-overflow", "foo"}})) == invalid("x-overflow", "invalid_overflow"));
    CHECK(declare_error(b, table({{"x-overflow", std::int32_t{1}}})) ==
          invalid("x-overflow", "{unacceptable_type,signedint}"));
    for (const char* v : {"drop-head", "reject-publish", "reject-publish-dlx"}) {
        TestBroker ok;
        INFO(v);
        CHECK(declare_error(ok, table({{"x-overflow", v}})).empty());
    }
}

TEST_CASE("x-dead-letter-exchange of the wrong type gets RabbitMQ's other sentence", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-dead-letter-exchange", std::int32_t{1}}})) ==
          "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'");
}

TEST_CASE("x-dead-letter-exchange may name a missing exchange", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-dead-letter-exchange", "nowhere"}})).empty());
}

TEST_CASE("x-dead-letter-routing-key needs a dead-letter exchange and a string", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-dead-letter-routing-key", "k"}})) ==
          invalid("x-dead-letter-routing-key", "routing_key_but_no_dlx_defined"));
    CHECK(declare_error(b, table({{"x-dead-letter-exchange", "dlx"}, {"x-dead-letter-routing-key", std::int32_t{1}}})) ==
          invalid("x-dead-letter-routing-key", "{unacceptable_type,signedint}"));
    CHECK(declare_error(b, table({{"x-dead-letter-exchange", "dlx"}, {"x-dead-letter-routing-key", "k"}})).empty());
}

TEST_CASE("x-queue-type accepts classic and quorum", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-queue-type", "foo"}})) ==
          invalid("x-queue-type", "\"unsupported queue type 'foo'\""));
    CHECK(declare_error(b, table({{"x-queue-type", std::int32_t{1}}})) ==
          invalid("x-queue-type", "{unacceptable_type,signedint}"));
    CHECK(declare_error(b, table({{"x-queue-type", "classic"}})).empty());
}

TEST_CASE("x-single-active-consumer must be a bool", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-single-active-consumer", std::int32_t{1}}})) ==
          invalid("x-single-active-consumer", "{unacceptable_type,signedint}"));
    CHECK(declare_error(b, table({{"x-single-active-consumer", "true"}})) ==
          invalid("x-single-active-consumer", "{unacceptable_type,longstr}"));
    CHECK(declare_error(b, table({{"x-single-active-consumer", true}})).empty());
}

TEST_CASE("x-queue-mode accepts default and lazy, and is otherwise ignored", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-queue-mode", "foo"}})) ==
          invalid("x-queue-mode", "\"unsupported queue mode 'foo'\""));
    CHECK(declare_error(b, table({{"x-queue-mode", "lazy"}})).empty());
}

TEST_CASE("unknown arguments and ha- policy keys are accepted", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-foo-bar", "x"}, {"x-ha-policy", "all"}, {"x-queue-version", std::int32_t{2}}}))
              .empty());
}

// DECISIONS.md: x-delivery-limit works on every queue (RabbitMQ 3.10 refuses it on classic).
TEST_CASE("x-delivery-limit is accepted on a classic queue", "[queue_args]") {
    TestBroker b;
    CHECK(declare_error(b, table({{"x-delivery-limit", std::int32_t{3}}})).empty());
    TestBroker b2;
    CHECK(declare_error(b2, table({{"x-delivery-limit", std::int32_t{-1}}})) ==
          invalid("x-delivery-limit", "{value_negative,-1}"));
}

TEST_CASE("a consumer x-priority that is not an integer gets 406", "[queue_args][consume]") {
    TestBroker b;
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    c.consume(1, "q", "", false, table({{"x-priority", "high"}}));
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(text_of(*close) == invalid("x-priority", "\"expected integer, got longstr\""));
    CHECK(close->class_id == 60);
    CHECK(close->method_id == 20);
}
