// DirectExchange: exact, case- and byte-sensitive routing-key match (rabbit_exchange_type_direct).
#include <catch2/catch.hpp>

#include "exchanges/direct_exchange.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;

TEST_CASE("direct routes on exact key equality", "[routing]") {
    DirectExchange x;
    x.bind(queue(1), "orders", {});
    x.bind(queue(2), "Orders", {});
    x.bind(queue(3), "", {});
    x.bind(queue(4), "orders.*", {});  // no wildcards in a direct exchange
    x.bind(queue(5), "#", {});
    x.bind(queue(6), std::string_view("a\0b", 3), {});
    struct Row {
        std::string_view key;
        std::vector<std::uint64_t> expected;
    };
    const Row rows[] = {
        {"orders", {1}},
        {"Orders", {2}},
        {"", {3}},
        {"orders.eu", {}},
        {"orders.*", {4}},
        {"#", {5}},
        {"anything", {}},
        {"orders ", {}},
        {std::string_view("a\0b", 3), {6}},
        {"a", {}},
    };
    for (const Row& row : rows) {
        INFO("routing key: " << row.key);
        CHECK(route_ids(x, row.key) == row.expected);
    }
}

TEST_CASE("direct with many bindings per key and many keys", "[routing]") {
    DirectExchange x;
    // 2,000 queues on one key, and 20,000 keys with one queue each.
    for (std::uint64_t q = 0; q < 2000; ++q) x.bind(queue(q), "shared", {});
    for (std::uint64_t k = 0; k < 20000; ++k) x.bind(queue(100000 + k), "key." + std::to_string(k), {});
    CHECK(x.binding_count() == 22000);

    auto shared = route_ids(x, "shared");
    REQUIRE(shared.size() == 2000);
    CHECK(shared.front() == 0);
    CHECK(shared.back() == 1999);
    CHECK(route_ids(x, "key.12345") == std::vector<std::uint64_t>{112345});
    CHECK(route_ids(x, "key.20000").empty());

    // Unbind every third queue from the shared key, from the middle of the list.
    std::size_t removed = 0;
    for (std::uint64_t q = 0; q < 2000; q += 3, ++removed) REQUIRE(x.unbind(queue(q), "shared", {}));
    shared = route_ids(x, "shared");
    CHECK(shared.size() == 2000 - removed);
    for (std::uint64_t id : shared) CHECK(id % 3 != 0);

    // The last binding on a key goes, and the key with it.
    CHECK(x.unbind(queue(112345), "key.12345", {}));
    CHECK(route_ids(x, "key.12345").empty());
    CHECK(x.bind(queue(9), "key.12345", {}));
    CHECK(route_ids(x, "key.12345") == std::vector<std::uint64_t>{9});
}

TEST_CASE("direct keeps other keys' bindings when a queue is removed", "[routing]") {
    DirectExchange x;
    x.bind(queue(1), "a", {});
    x.bind(queue(1), "b", {});
    x.bind(queue(2), "a", {});
    CHECK(x.remove_destination(queue(1)) == 2);
    CHECK(route_ids(x, "a") == std::vector<std::uint64_t>{2});
    CHECK(route_ids(x, "b").empty());
}

TEST_CASE("direct unbind of an unknown binding changes nothing", "[routing]") {
    DirectExchange x;
    x.bind(queue(1), "a", {});
    CHECK_FALSE(x.unbind(queue(1), "b", {}));
    CHECK_FALSE(x.unbind(queue(2), "a", {}));
    CHECK_FALSE(x.unbind(queue(1), "a", table({{"x", 1}})));
    CHECK(route_ids(x, "a") == std::vector<std::uint64_t>{1});
}

}  // namespace
}  // namespace warren::exchanges
