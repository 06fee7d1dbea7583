// Exchange types by name, the factory, and the binding contract every type shares: identity
// is (destination, routing key, arguments), bind and unbind are idempotent, remove_destination
// drops a deleted queue's bindings (rabbit_binding.erl).
#include <catch2/catch.hpp>

#include "exchanges/exchange.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;

TEST_CASE("exchange type names parse and print as exchange.declare spells them", "[routing]") {
    struct Row {
        std::string_view name;
        std::optional<ExchangeType> type;
    };
    const Row rows[] = {
        {"direct", ExchangeType::Direct},
        {"fanout", ExchangeType::Fanout},
        {"topic", ExchangeType::Topic},
        {"headers", ExchangeType::Headers},
        {"Direct", std::nullopt},  // the registry lookup is case-sensitive
        {"TOPIC", std::nullopt},
        {"", std::nullopt},
        {"x-delayed-message", std::nullopt},  // a plugin type we do not have
        {"direct ", std::nullopt},
    };
    for (const Row& row : rows) {
        INFO("name: \"" << row.name << "\"");
        CHECK(parse_exchange_type(row.name) == row.type);
        if (row.type) CHECK(exchange_type_name(*row.type) == row.name);
    }
}

TEST_CASE("make_exchange builds an exchange of the requested type, empty", "[routing]") {
    for (ExchangeType type : {ExchangeType::Direct, ExchangeType::Fanout, ExchangeType::Topic, ExchangeType::Headers}) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        REQUIRE(x != nullptr);
        CHECK(x->type() == type);
        CHECK(x->binding_count() == 0);
        CHECK(route_ids(*x, "anything").empty());
    }
}

// Each type, given bindings that all match the message: a key equal to the routing key, and
// for headers an empty argument table (x-match all with nothing to compare matches everything).
const ExchangeType all_types[] = {ExchangeType::Direct, ExchangeType::Fanout, ExchangeType::Topic,
                                  ExchangeType::Headers};

TEST_CASE("binding twice is a no-op and unbinding twice is a no-op, for every type", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        CHECK(x->bind(queue(1), "k", {}));
        CHECK_FALSE(x->bind(queue(1), "k", {}));
        CHECK(x->binding_count() == 1);
        CHECK(route_ids(*x, "k") == std::vector<std::uint64_t>{1});

        CHECK(x->unbind(queue(1), "k", {}));
        CHECK_FALSE(x->unbind(queue(1), "k", {}));
        CHECK(x->binding_count() == 0);
        CHECK_FALSE(x->has_binding_to(queue(1)));
        CHECK(route_ids(*x, "k").empty());
    }
}

TEST_CASE("the same key with different arguments is a second binding, for every type", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        // x- arguments, so that the headers exchange (x-match all) compares nothing in either.
        CHECK(x->bind(queue(1), "k", table({{"x-note", "a"}})));
        CHECK(x->bind(queue(1), "k", table({{"x-note", "b"}})));
        CHECK(x->binding_count() == 2);
        // Two bindings to the same queue: listed twice, the caller de-duplicates.
        CHECK(route_ids(*x, "k") == std::vector<std::uint64_t>{1, 1});

        // Unbinding needs the arguments too.
        CHECK_FALSE(x->unbind(queue(1), "k", {}));
        CHECK(x->unbind(queue(1), "k", table({{"x-note", "a"}})));
        CHECK(x->binding_count() == 1);
        CHECK(route_ids(*x, "k") == std::vector<std::uint64_t>{1});
    }
}

TEST_CASE("arguments in another order name the same binding (RabbitMQ sorts them)", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        CHECK(x->bind(queue(1), "k", table({{"x-a", 1}, {"x-b", 2}})));
        CHECK_FALSE(x->bind(queue(1), "k", table({{"x-b", 2}, {"x-a", 1}})));
        CHECK(x->unbind(queue(1), "k", table({{"x-b", 2}, {"x-a", 1}})));
        CHECK(x->binding_count() == 0);
    }
}

TEST_CASE("a queue and an exchange with the same id are different destinations", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        CHECK(x->bind(queue(7), "k", {}));
        CHECK(x->bind(exchange(7), "k", {}));
        CHECK(x->binding_count() == 2);
        std::vector<Destination> out;
        x->route(RoutingInput{"k", {}}, out);
        CHECK(std::count(out.begin(), out.end(), queue(7)) == 1);
        CHECK(std::count(out.begin(), out.end(), exchange(7)) == 1);
        CHECK(x->remove_destination(queue(7)) == 1);
        CHECK(x->has_binding_to(exchange(7)));
        CHECK_FALSE(x->has_binding_to(queue(7)));
    }
}

TEST_CASE("remove_destination drops every binding to a deleted queue and no other", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        for (int i = 0; i < 50; ++i) {
            std::string key = "k" + std::to_string(i % 5);
            x->bind(queue(1), key, table({{"x-n", i}}));
            x->bind(queue(2), key, table({{"x-n", i}}));
        }
        REQUIRE(x->binding_count() == 100);
        CHECK(x->remove_destination(queue(1)) == 50);
        CHECK(x->remove_destination(queue(1)) == 0);
        CHECK(x->binding_count() == 50);
        CHECK_FALSE(x->has_binding_to(queue(1)));
        CHECK(x->has_binding_to(queue(2)));
        auto routed = routed_set(*x, "k3");
        CHECK(routed == std::vector<std::uint64_t>{2});
        for (const Binding& b : bindings_of(*x)) CHECK(b.destination == queue(2));
    }
}

TEST_CASE("for_each_binding lists each binding with its key and arguments", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        x->bind(queue(1), "a", {});
        x->bind(queue(2), "b", table({{"x-z", 1}, {"x-y", "s"}}));
        x->bind(exchange(3), "", {});
        auto all = bindings_of(*x);
        REQUIRE(all.size() == 3);
        auto find = [&](const Destination& d) {
            return *std::find_if(all.begin(), all.end(), [&](const Binding& b) { return b.destination == d; });
        };
        CHECK(find(queue(1)).routing_key == "a");
        CHECK(find(queue(1)).arguments.empty());
        CHECK(find(exchange(3)).routing_key == "");
        // Stored sorted by key, as RabbitMQ lists them.
        CHECK(find(queue(2)).arguments == table({{"x-y", "s"}, {"x-z", 1}}));
    }
}

TEST_CASE("a slot freed by unbind is reused without disturbing other bindings", "[routing]") {
    for (ExchangeType type : all_types) {
        INFO(exchange_type_name(type));
        auto x = make_exchange(type);
        x->bind(queue(1), "k", {});
        x->bind(queue(2), "k", {});
        x->bind(queue(3), "k", {});
        x->unbind(queue(1), "k", {});
        x->bind(queue(4), "k", {});
        CHECK(route_ids(*x, "k") == std::vector<std::uint64_t>{2, 3, 4});
        x->unbind(queue(3), "k", {});
        CHECK(route_ids(*x, "k") == std::vector<std::uint64_t>{2, 4});
    }
}

}  // namespace
}  // namespace warren::exchanges
