// FanoutExchange: every binding gets the message, whatever the keys (rabbit_exchange_type_fanout).
#include <catch2/catch.hpp>

#include "exchanges/fanout_exchange.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;

TEST_CASE("fanout ignores the routing key of the message and of the binding", "[routing]") {
    FanoutExchange x;
    x.bind(queue(1), "", {});
    x.bind(queue(2), "orders.eu", {});
    x.bind(queue(3), "#", {});
    const std::string_view keys[] = {"", "orders.eu", "something.else", "#", std::string_view("\0", 1)};
    for (std::string_view key : keys) {
        INFO("routing key: " << key);
        CHECK(route_ids(x, key) == std::vector<std::uint64_t>{1, 2, 3});
    }
}

TEST_CASE("fanout lists a destination once per binding", "[routing]") {
    FanoutExchange x;
    CHECK(x.bind(queue(1), "a", {}));
    CHECK(x.bind(queue(1), "b", {}));  // another key is another binding, though unused by routing
    CHECK_FALSE(x.bind(queue(1), "a", {}));
    CHECK(route_ids(x, "zzz") == std::vector<std::uint64_t>{1, 1});
    CHECK(x.unbind(queue(1), "b", {}));
    CHECK(route_ids(x, "zzz") == std::vector<std::uint64_t>{1});
}

TEST_CASE("fanout with many bindings routes to all and unbinds any of them", "[routing]") {
    FanoutExchange x;
    for (std::uint64_t i = 0; i < 1000; ++i) x.bind(queue(i), "", {});
    CHECK(route_ids(x, "").size() == 1000);
    for (std::uint64_t i = 0; i < 1000; i += 2) CHECK(x.unbind(queue(i), "", {}));
    auto ids = route_ids(x, "");
    REQUIRE(ids.size() == 500);
    for (std::uint64_t id : ids) CHECK(id % 2 == 1);
}

TEST_CASE("fanout headers are irrelevant", "[routing]") {
    FanoutExchange x;
    x.bind(queue(1), "", table({{"x-match", "any"}, {"h", 1}}));
    Headers headers(table({{"h", 2}}));
    CHECK(route_ids(x, "", headers) == std::vector<std::uint64_t>{1});
}

}  // namespace
}  // namespace warren::exchanges
