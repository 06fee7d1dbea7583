// Messages: one allocation holding header, properties and body; the (exchange, routing key)
// pair is interned and shared by every message published with it.
#include <catch2/catch.hpp>

#include "broker/message.hpp"

using namespace warren::broker;

namespace {
MessageRef make(std::string_view exchange, std::string_view key) {
    warren::protocol::ByteBuffer props;
    warren::protocol::encode_properties(props, {});
    return Message::create(exchange, key, props.span(), 0);
}
}  // namespace

TEST_CASE("messages published with the same exchange and key share one address", "[message]") {
    const std::size_t before = MessageAddress::live_count();
    {
        MessageRef a = make("x", "a.very.long.routing.key.that.would.cost.bytes");
        MessageRef b = make("x", "a.very.long.routing.key.that.would.cost.bytes");
        MessageRef c = make("y", "a.very.long.routing.key.that.would.cost.bytes");
        MessageRef d = make("x", "other");
        CHECK(MessageAddress::live_count() == before + 3);
        CHECK(a->routing_key() == "a.very.long.routing.key.that.would.cost.bytes");
        CHECK(c->exchange() == "y");
        CHECK(d->routing_key() == "other");
        a.reset();
        CHECK(b->exchange() == "x");
        CHECK(MessageAddress::live_count() == before + 3);
    }
    CHECK(MessageAddress::live_count() == before);
}

TEST_CASE("an exchange and key pair is told apart from another with the same bytes", "[message]") {
    // ("ab", "c") and ("a", "bc") concatenate to the same bytes; the length prefix keeps them apart.
    MessageRef one = make("ab", "c");
    MessageRef two = make("a", "bc");
    CHECK(one->exchange() == "ab");
    CHECK(one->routing_key() == "c");
    CHECK(two->exchange() == "a");
    CHECK(two->routing_key() == "bc");
}

TEST_CASE("a stored message costs its header, properties and body in one block", "[message]") {
    warren::protocol::ByteBuffer props;
    warren::protocol::encode_properties(props, {});
    MessageRef m = Message::create("", "queue-with-a-fairly-long-name", props.span(), 16);
    CHECK(m->memory_size() == sizeof(Message) + props.size() + 16);
    CHECK(sizeof(Message) == 40);  // the header includes where the message is stored
}
