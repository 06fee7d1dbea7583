// BindingSet and DestinationList: binding identity (RabbitMQ's sorted arguments), the
// per-destination chains, and O(1) removal from a routing point's list.
#include <catch2/catch.hpp>

#include "exchanges/binding_set.hpp"
#include "routing_support.hpp"

namespace warren::exchanges {
namespace {

using namespace test;

TEST_CASE("canonical arguments sort by key bytes and keep repeated keys in order", "[routing]") {
    struct Row {
        const char* what;
        FieldTable in, out;
    };
    const Row rows[] = {
        {"empty", {}, {}},
        {"already sorted", table({{"a", 1}, {"b", 2}}), table({{"a", 1}, {"b", 2}})},
        {"reversed", table({{"b", 2}, {"a", 1}}), table({{"a", 1}, {"b", 2}})},
        // lists:keysort is stable: a repeated key keeps its order.
        {"repeated key", table({{"k", 2}, {"a", 0}, {"k", 1}}), table({{"a", 0}, {"k", 2}, {"k", 1}})},
        // Erlang compares binaries bytewise: upper case sorts before lower, high bytes last.
        {"byte order", table({{"b", 1}, {"\xc3\xa9", 2}, {"B", 3}}), table({{"B", 3}, {"b", 1}, {"\xc3\xa9", 2}})},
    };
    for (const Row& row : rows) {
        INFO(row.what);
        CHECK(canonical_arguments(row.in) == row.out);
    }
}

TEST_CASE("binding identity compares argument values with their types", "[routing]") {
    // RabbitMQ's stored binding holds {Key, TypeAtom, Value}: int8 1 and int32 1 differ.
    BindingSet set;
    CHECK(set.insert(queue(1), "k", table({{"n", std::int8_t{1}}})).second);
    CHECK(set.insert(queue(1), "k", table({{"n", std::int32_t{1}}})).second);
    CHECK(set.insert(queue(1), "k", table({{"n", "1"}})).second);
    CHECK_FALSE(set.insert(queue(1), "k", table({{"n", std::int32_t{1}}})).second);
    CHECK(set.size() == 3);
    CHECK(set.find(queue(1), "k", table({{"n", std::int8_t{1}}})) != no_binding);
    CHECK(set.find(queue(1), "k", table({{"n", std::int16_t{1}}})) == no_binding);
    CHECK(set.find(queue(1), "K", table({{"n", std::int8_t{1}}})) == no_binding);
    CHECK(set.find(queue(2), "k", table({{"n", std::int8_t{1}}})) == no_binding);
}

TEST_CASE("insert returns the existing id for an identical binding", "[routing]") {
    BindingSet set;
    auto [a, added_a] = set.insert(queue(1), "k", table({{"x", 1}, {"y", 2}}));
    auto [b, added_b] = set.insert(queue(1), "k", table({{"y", 2}, {"x", 1}}));
    CHECK(added_a);
    CHECK_FALSE(added_b);
    CHECK(a == b);
    CHECK(set[a].binding.arguments == table({{"x", 1}, {"y", 2}}));
}

TEST_CASE("ids_for lists a destination's bindings through erasures", "[routing]") {
    BindingSet set;
    std::vector<BindingId> ids;
    for (int i = 0; i < 6; ++i) ids.push_back(set.insert(queue(i % 2), "k" + std::to_string(i), {}).first);
    // Erase the head, a middle and the tail of queue 0's chain (ids 0, 2, 4; newest first).
    set.erase(ids[4]);
    std::vector<BindingId> found;
    set.ids_for(queue(0), found);
    std::sort(found.begin(), found.end());
    CHECK(found == std::vector<BindingId>{ids[0], ids[2]});
    set.erase(ids[0]);
    set.ids_for(queue(0), found);
    CHECK(found == std::vector<BindingId>{ids[2]});
    set.erase(ids[2]);
    set.ids_for(queue(0), found);
    CHECK(found.empty());
    CHECK_FALSE(set.has_destination(queue(0)));
    CHECK(set.has_destination(queue(1)));
    CHECK(set.size() == 3);

    // Freed slots are reused and chained afresh.
    BindingId again = set.insert(queue(0), "new", {}).first;
    CHECK((again == ids[0] || again == ids[2] || again == ids[4]));
    set.ids_for(queue(0), found);
    CHECK(found == std::vector<BindingId>{again});
    CHECK(set[again].binding.routing_key == "new");
}

TEST_CASE("DestinationList removes from the middle and keeps positions right", "[routing]") {
    BindingSet set;
    DestinationList list;
    std::vector<BindingId> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(set.insert(queue(i), "k", {}).first);
        list.add(set, ids.back());
    }
    list.remove(set, ids[1]);  // the last entry moves into its place
    list.remove(set, ids[4]);  // which is then removed by its new position
    list.remove(set, ids[0]);
    std::vector<Destination> out;
    list.append_to(out);
    std::vector<std::uint64_t> got;
    for (auto& d : out) got.push_back(d.id);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::uint64_t>{2, 3});
    CHECK(list.size() == 2);
}

}  // namespace
}  // namespace warren::exchanges
