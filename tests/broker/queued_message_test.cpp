// QueuedMessage packs seq and delivery count into one word: 24 bytes per queued message.
#include <catch2/catch.hpp>

#include "broker/queued_message.hpp"

using warren::broker::QueuedMessage;

TEST_CASE("a queued message keeps a 48-bit seq beside its delivery count", "[queue]") {
    const std::uint64_t big_seq = (std::uint64_t{1} << 48) - 5;
    QueuedMessage m({}, big_seq);
    CHECK(m.seq() == big_seq);
    CHECK(m.delivery_count() == 0);
    CHECK_FALSE(m.redelivered());
    m.count_return();
    m.count_return();
    CHECK(m.seq() == big_seq);
    CHECK(m.delivery_count() == 2);
    CHECK(m.redelivered());
}

TEST_CASE("the delivery count saturates instead of spilling into the seq", "[queue]") {
    QueuedMessage m({}, 42);
    for (int i = 0; i < 70000; ++i) m.count_return();
    CHECK(m.delivery_count() == 0xFFFF);
    CHECK(m.seq() == 42);
}
