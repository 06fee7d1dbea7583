// The consistent-hash exchange: the plugin's declare and binding checks and texts, same key to
// the same destination while bindings stay put, weights, few keys moving when a binding comes
// or goes, hash-header and hash-property, and the even spread of the jump hash.
#include "exchanges/consistent_hash_exchange.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "protocol/basic_properties.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;

std::uint64_t route_one(const ConsistentHashExchange& x, std::string_view key, const Headers& headers = {},
                        std::span<const std::byte> properties = {}) {
    std::vector<Destination> out;
    x.route(RoutingInput{key, headers.view(), properties}, out);
    REQUIRE(out.size() == 1);
    return out[0].id;
}

ConsistentHashExchange with_queues(int n, std::string_view weight = "1") {
    ConsistentHashExchange x(HashSource{});
    for (int i = 1; i <= n; ++i) x.bind(queue(static_cast<std::uint64_t>(i)), weight, {});
    return x;
}

TEST_CASE("x-consistent-hash parses as an exchange type and is built with its arguments", "[routing][chx]") {
    CHECK(parse_exchange_type("x-consistent-hash") == ExchangeType::ConsistentHash);
    CHECK(exchange_type_name(ExchangeType::ConsistentHash) == "x-consistent-hash");
    auto x = make_exchange(ExchangeType::ConsistentHash, table({{"hash-header", FieldValue("h")}}));
    REQUIRE(x);
    CHECK(x->type() == ExchangeType::ConsistentHash);
}

TEST_CASE("exchange arguments are checked as the plugin's validate/1 does", "[routing][chx]") {
    auto check = [](const FieldTable& args) { return validate_exchange_arguments(ExchangeType::ConsistentHash, args); };
    CHECK_FALSE(check({}));
    CHECK_FALSE(check(table({{"hash-header", FieldValue("h")}})));
    for (const char* p : {"correlation_id", "message_id", "timestamp"})
        CHECK_FALSE(check(table({{"hash-property", FieldValue(p)}})));
    CHECK(check(table({{"hash-property", FieldValue("app_id")}})) == "Unsupported property: app_id");
    CHECK(check(table({{"hash-header", FieldValue("h")}, {"hash-property", FieldValue("message_id")}})) ==
          "hash-header and hash-property are mutually exclusive");
    // Other types do not look at these arguments.
    CHECK_FALSE(validate_exchange_arguments(ExchangeType::Direct, table({{"hash-property", FieldValue("x")}})));
}

TEST_CASE("the binding key is a weight: an Erlang integer of at least 1", "[routing][chx]") {
    ConsistentHashExchange x(HashSource{});
    for (std::string_view ok : {"1", "10", "+2", "007", "4294967295"}) CHECK_FALSE(x.validate_binding_key(ok));
    CHECK(x.validate_binding_key("abc") == "The binding key must be an integer: <<\"abc\">>");
    CHECK(x.validate_binding_key("") == "The binding key must be an integer: <<>>");
    CHECK(x.validate_binding_key("1 ") == "The binding key must be an integer: <<\"1 \">>");
    CHECK(x.validate_binding_key("1.5") == "The binding key must be an integer: <<\"1.5\">>");
    CHECK(x.validate_binding_key("0") == "The binding key must be greater than 0");
    CHECK(x.validate_binding_key("-3") == "The binding key must be greater than 0");
    CHECK(x.validate_binding_key("000") == "The binding key must be greater than 0");
    CHECK(x.validate_binding_key("4294967296") == "The binding key must be at most 4294967295");
    CHECK(x.validate_binding_key("99999999999999999999999") == "The binding key must be at most 4294967295");
    // Other exchange types accept any key.
    CHECK_FALSE(make_exchange(ExchangeType::Direct)->validate_binding_key("abc"));
}

TEST_CASE("no bindings routes nowhere; one binding takes every message", "[routing][chx]") {
    ConsistentHashExchange x(HashSource{});
    CHECK(route_ids(x, "k").empty());
    x.bind(queue(7), "3", {});
    for (std::string k : {"a", "b", "", "a much longer routing key"}) CHECK(route_one(x, k) == 7);
}

TEST_CASE("the same routing key reaches the same queue every time", "[routing][chx]") {
    auto x = with_queues(10);
    for (int i = 0; i < 1000; ++i) {
        std::string key = "order-" + std::to_string(i);
        std::uint64_t first = route_one(x, key);
        for (int r = 0; r < 3; ++r) CHECK(route_one(x, key) == first);
    }
}

TEST_CASE("bindings made in the same order give the same ring, so keys map the same way", "[routing][chx]") {
    auto a = with_queues(5);
    auto b = with_queues(5);
    for (int i = 0; i < 500; ++i) {
        std::string key = std::to_string(i);
        CHECK(route_one(a, key) == route_one(b, key));
    }
}

TEST_CASE("a queue with twice the weight gets about twice the messages", "[routing][chx]") {
    ConsistentHashExchange x(HashSource{});
    x.bind(queue(1), "1", {});
    x.bind(queue(2), "2", {});
    std::map<std::uint64_t, int> count;
    for (int i = 0; i < 30000; ++i) ++count[route_one(x, "k" + std::to_string(i))];
    CHECK(count[1] > 9000);
    CHECK(count[1] < 11000);
    CHECK(count[2] > 19000);
    CHECK(count[2] < 21000);
}

TEST_CASE("adding a binding moves keys only to the new queue", "[routing][chx]") {
    auto x = with_queues(4);
    std::vector<std::uint64_t> before;
    for (int i = 0; i < 5000; ++i) before.push_back(route_one(x, std::to_string(i)));
    x.bind(queue(5), "1", {});
    int moved = 0;
    for (int i = 0; i < 5000; ++i) {
        std::uint64_t now = route_one(x, std::to_string(i));
        if (now != before[static_cast<std::size_t>(i)]) {
            ++moved;
            CHECK(now == 5);
        }
    }
    CHECK(moved > 800);  // about a fifth
    CHECK(moved < 1200);
}

TEST_CASE("removing the last binding moves only its keys; the others stay", "[routing][chx]") {
    auto x = with_queues(5);
    std::vector<std::uint64_t> before;
    for (int i = 0; i < 5000; ++i) before.push_back(route_one(x, std::to_string(i)));
    CHECK(x.unbind(queue(5), "1", {}));
    for (int i = 0; i < 5000; ++i) {
        std::uint64_t was = before[static_cast<std::size_t>(i)];
        std::uint64_t now = route_one(x, std::to_string(i));
        if (was != 5) CHECK(now == was);
        CHECK(now != 5);
    }
}

TEST_CASE("a second binding to a queue on the ring does not add buckets; it takes over when the first goes",
          "[routing][chx]") {
    ConsistentHashExchange x(HashSource{});
    x.bind(queue(1), "1", {});
    x.bind(queue(2), "1", {});
    CHECK(x.bucket_count() == 2);
    CHECK(x.bind(queue(1), "5", {}));  // a binding of its own, not on the ring
    CHECK(x.binding_count() == 3);
    CHECK(x.bucket_count() == 2);
    CHECK(x.unbind(queue(1), "1", {}));
    CHECK(x.bucket_count() == 6);  // queue 1 back, with weight 5, after queue 2
    std::vector<std::uint64_t> order;
    x.for_each_binding([&](const Binding& b) { order.push_back(b.destination.id); });
    CHECK(order == std::vector<std::uint64_t>{2, 1});
    CHECK(x.remove_destination(queue(1)) == 1);
    CHECK(x.bucket_count() == 1);
    CHECK(route_one(x, "any") == 2);
}

TEST_CASE("for_each_binding lists the ring in order, so a replay rebuilds the same ring", "[routing][chx]") {
    ConsistentHashExchange x(HashSource{});
    for (int i = 1; i <= 4; ++i) x.bind(queue(static_cast<std::uint64_t>(i)), std::to_string(i), {});
    x.unbind(queue(2), "2", {});
    x.bind(queue(9), "3", {});  // reuses the freed slot, yet comes last on the ring
    ConsistentHashExchange replay(HashSource{});
    x.for_each_binding([&](const Binding& b) { replay.bind(b.destination, b.routing_key, b.arguments); });
    REQUIRE(replay.bucket_count() == x.bucket_count());
    for (int i = 0; i < 2000; ++i) CHECK(route_one(replay, std::to_string(i)) == route_one(x, std::to_string(i)));
}

TEST_CASE("hash-header routes on the header's value; a message without it still routes, always alike",
          "[routing][chx]") {
    ConsistentHashExchange x(consistent_hash_source(table({{"hash-header", FieldValue("user")}})));
    for (int i = 1; i <= 10; ++i) x.bind(queue(static_cast<std::uint64_t>(i)), "1", {});
    std::map<std::uint64_t, int> seen;
    for (int i = 0; i < 200; ++i) {
        Headers h(table({{"user", FieldValue("u" + std::to_string(i))}}));
        std::uint64_t q = route_one(x, "rk-" + std::to_string(i), h);
        // The routing key plays no part.
        CHECK(route_one(x, "other", h) == q);
        ++seen[q];
    }
    CHECK(seen.size() == 10);
    std::uint64_t none = route_one(x, "a");
    CHECK(route_one(x, "b") == none);
}

TEST_CASE("hash-property routes on message_id, correlation_id or the timestamp", "[routing][chx]") {
    for (const char* name : {"message_id", "correlation_id", "timestamp"}) {
        INFO(name);
        ConsistentHashExchange x(consistent_hash_source(table({{"hash-property", FieldValue(name)}})));
        for (int i = 1; i <= 10; ++i) x.bind(queue(static_cast<std::uint64_t>(i)), "1", {});
        std::map<std::uint64_t, int> seen;
        for (int i = 0; i < 200; ++i) {
            protocol::BasicProperties p;
            std::string id = "id-" + std::to_string(i);
            if (std::string_view(name) == "message_id") {
                p.set_flag(protocol::property_flag::message_id);
                p.message_id = id;
            } else if (std::string_view(name) == "correlation_id") {
                p.set_flag(protocol::property_flag::correlation_id);
                p.correlation_id = id;
            } else {
                p.set_flag(protocol::property_flag::timestamp);
                p.timestamp = 1700000000u + static_cast<std::uint64_t>(i);
            }
            protocol::ByteBuffer bytes;
            protocol::encode_properties(bytes, p);
            std::uint64_t q = route_one(x, "k", {}, bytes.span());
            CHECK(route_one(x, "another key", {}, bytes.span()) == q);
            ++seen[q];
        }
        CHECK(seen.size() == 10);
        // No such property: one fixed destination.
        protocol::ByteBuffer empty;
        protocol::encode_properties(empty, protocol::BasicProperties{});
        CHECK(route_one(x, "a", {}, empty.span()) == route_one(x, "b", {}, empty.span()));
    }
}

TEST_CASE("jump_consistent_hash stays in range and spreads keys evenly", "[routing][chx]") {
    CHECK(jump_consistent_hash(12345, 1) == 0);
    std::array<int, 10> count{};
    for (std::uint64_t i = 0; i < 100000; ++i) {
        std::uint64_t b = jump_consistent_hash(consistent_hash_of(std::to_string(i)), 10);
        REQUIRE(b < 10);
        ++count[b];
    }
    for (int c : count) {
        CHECK(c > 9500);
        CHECK(c < 10500);
    }
    // Huge rings (a binding of weight 2^32 - 1) still give buckets in range.
    for (std::uint64_t i = 0; i < 100; ++i)
        CHECK(jump_consistent_hash(consistent_hash_of(std::to_string(i)), 0xFFFFFFFFu) < 0xFFFFFFFFu);
}

}  // namespace
}  // namespace warren::exchanges
