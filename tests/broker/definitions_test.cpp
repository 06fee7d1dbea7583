// The definitions log's records and snapshot: round trips, deletes that take bindings along,
// and bad records refused with a reason.
#include <catch2/catch.hpp>

#include "broker/definitions.hpp"
#include "support/test_client.hpp"

using namespace warren::broker::definitions;
using warren::testing::table;

namespace {
std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

Definitions replay(std::initializer_list<std::string> records) {
    Definitions d;
    for (const auto& r : records) REQUIRE_FALSE(d.apply_record(bytes_of(r)));
    return d;
}
}  // namespace

TEST_CASE("definitions records replay into vhosts, exchanges, queues and bindings", "[definitions]") {
    auto args = table({{"x-message-ttl", std::int32_t{60000}}, {"x-dead-letter-exchange", std::string("dlx")}});
    Definitions d = replay({vhost_record({"/", 1}), exchange_record({1, "x", "topic", false, true, {}}),
                            queue_record({1, "q", 7, true, args}),
                            binding_record({1, "x", "q", false, "a.#", table({{"k", true}})})});
    REQUIRE(d.vhosts.size() == 1);
    CHECK(d.vhosts[0].name == "/");
    CHECK(d.next_vhost_id == 2);
    REQUIRE(d.exchanges.size() == 1);
    CHECK(d.exchanges[0].type == "topic");
    CHECK(d.exchanges[0].internal);
    REQUIRE(d.queues.size() == 1);
    CHECK(d.queues[0].id == 7);
    CHECK(d.queues[0].auto_delete);
    CHECK(d.queues[0].arguments == args);  // types survive: a signed 32-bit TTL stays one
    CHECK(d.next_queue_id == 8);
    REQUIRE(d.bindings.size() == 1);
    CHECK(d.bindings[0].routing_key == "a.#");
}

TEST_CASE("deleting a queue or an exchange removes the bindings that involve it", "[definitions]") {
    Definitions d = replay({exchange_record({1, "x", "direct", false, false, {}}),
                            exchange_record({1, "y", "fanout", false, false, {}}), queue_record({1, "q", 1, false, {}}),
                            binding_record({1, "x", "q", false, "k", {}}), binding_record({1, "x", "y", true, "", {}}),
                            binding_record({1, "y", "q", false, "", {}})});
    CHECK(d.bindings.size() == 3);
    REQUIRE_FALSE(d.apply_record(bytes_of(queue_delete_record(1, "q", 1))));
    CHECK(d.bindings.size() == 1);  // x -> y is left
    REQUIRE_FALSE(d.apply_record(bytes_of(exchange_delete_record(1, "y"))));
    CHECK(d.bindings.empty());
    CHECK(d.exchanges.size() == 1);
    CHECK(d.queues.empty());
    CHECK(d.next_queue_id == 2);  // ids are never reused
}

TEST_CASE("a queue deleted and declared again has its new id", "[definitions]") {
    Definitions d = replay({queue_record({1, "q", 1, false, {}}), queue_delete_record(1, "q", 1),
                            queue_record({1, "q", 2, false, {}})});
    REQUIRE(d.queues.size() == 1);
    CHECK(d.queues[0].id == 2);
    // A stale delete of the old id does not remove the new queue.
    REQUIRE_FALSE(d.apply_record(bytes_of(queue_delete_record(1, "q", 1))));
    CHECK(d.queues.size() == 1);
}

TEST_CASE("binding records are idempotent and unbind removes exactly one binding", "[definitions]") {
    StoredBinding b{1, "x", "q", false, "k", {}};
    StoredBinding other{1, "x", "q", false, "k", table({{"x-match", std::string("any")}})};
    Definitions d = replay({binding_record(b), binding_record(b), binding_record(other)});
    CHECK(d.bindings.size() == 2);
    REQUIRE_FALSE(d.apply_record(bytes_of(binding_delete_record(b))));
    REQUIRE(d.bindings.size() == 1);
    CHECK(d.bindings[0] == other);
}

TEST_CASE("a snapshot holds the whole state and replaces what was replayed before it", "[definitions]") {
    Definitions d = replay({vhost_record({"/", 1}), vhost_record({"billing", 4}),
                            exchange_record({4, "clicks", "fanout", false, false, {}}),
                            queue_record({4, "settle", 9, false, table({{"x-max-length", std::int64_t{10}}})}),
                            binding_record({4, "clicks", "settle", false, "", {}})});
    std::string snap = snapshot(d);
    Definitions e = replay({queue_record({1, "stale", 1, false, {}})});
    REQUIRE_FALSE(e.apply_snapshot(bytes_of(snap)));
    CHECK(e.vhosts.size() == 2);
    CHECK(e.queues.size() == 1);
    CHECK(e.queues[0].name == "settle");
    CHECK(e.queues[0].arguments == d.queues[0].arguments);
    CHECK(e.bindings == d.bindings);
    CHECK(e.next_queue_id == d.next_queue_id);
    CHECK(e.next_vhost_id == d.next_vhost_id);
}

TEST_CASE("bad definitions records are refused with the reason", "[definitions]") {
    Definitions d;
    auto problem = [&](const std::string& r) { return d.apply_record(bytes_of(r)).value_or(""); };
    CHECK(problem("not json") == "not JSON");
    CHECK(problem("[1,2]") == "not a JSON object");
    CHECK(problem(R"({"op":"frobnicate"})") == "unknown op 'frobnicate'");
    CHECK(problem(R"({"op":"queue","vhost":1,"name":"q","auto_delete":false,"arguments":""})") == "'id' is missing");
    CHECK(problem(R"({"op":"queue","vhost":1,"name":"q","id":-3,"auto_delete":false,"arguments":""})") ==
          "'id' is not a 32-bit unsigned number");
    CHECK(problem(R"({"op":"queue","vhost":1,"name":"q","id":3,"auto_delete":false,"arguments":"!!"})") ==
          "'arguments' is not base64");
    // Valid base64 of bytes that are not a field table (a key length running past the end).
    CHECK(problem(R"({"op":"queue","vhost":1,"name":"q","id":3,"auto_delete":false,"arguments":"BWFi"})") ==
          "'arguments' is not a field table");
    CHECK(problem(R"({"op":"binding","vhost":1,"source":"x","destination":"q","destination_type":"topic","routing_key":"","arguments":""})") ==
          "'destination_type' is neither queue nor exchange");
    CHECK(d.queues.empty());
    CHECK(d.apply_snapshot(bytes_of(R"({"format":5})")).value_or("") == "unknown snapshot format");
}
