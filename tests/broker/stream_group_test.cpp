// Consumer groups on super stream partitions (x-stream-group): partition mod members in rank
// order, rebalance on join and leave, a partition handed over only once its previous owner's
// deliveries are settled or returned, offsets tracked under the group's name, independent groups.
#include "broker/stream_group.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "broker/stream.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;

namespace {

constexpr int partitions = 3;

std::string part(int i) {
    return "ss-" + std::to_string(i);
}

void declare_partitions(TestClient& c) {
    c.open_channel(1);
    for (int i = 0; i < partitions; ++i) {
        c.declare_queue(1, part(i), table({{"x-queue-type", std::string("stream")}}), true);
        REQUIRE(c.take<QueueDeclareOk>().size() == 1);
    }
}

FieldTable group_args(std::string group) {
    return table({{"x-stream-group", std::move(group)}, {"x-stream-offset", std::string("first")}});
}

// A member: one connection, one channel, a consumer on every partition (tag "<group>-<i>").
struct Member {
    Member(TestBroker& b, const std::string& group, std::uint16_t prefetch = 10) : c(b) {
        c.open_channel(1);
        c.qos(1, prefetch);
        for (int i = 0; i < partitions; ++i)
            c.consume(1, part(i), group + "-" + std::to_string(i), false, group_args(group));
        c.take<BasicConsumeOk>();
    }
    TestClient c;
};

// Bodies by partition, from one batch of deliveries.
std::map<std::string, std::vector<std::string>> by_partition(const std::vector<Delivery>& ds) {
    std::map<std::string, std::vector<std::string>> out;
    for (const Delivery& d : ds) out[d.consumer_tag().substr(d.consumer_tag().rfind('-') + 1)].push_back(d.body);
    return out;
}

void publish(TestBroker& b, TestClient& c, int partition, std::initializer_list<std::string> bodies) {
    for (const auto& body : bodies) c.publish(1, "", part(partition), body);
    b.settle();
}

}  // namespace

TEST_CASE("group assignment: partition numbers from the name, partition mod members", "[streams][groups]") {
    CHECK(warren::broker::partition_index("clicks-3") == 3);
    CHECK(warren::broker::partition_index("my-clicks-12") == 12);
    CHECK(warren::broker::partition_index("clicks") == 0);
    CHECK(warren::broker::partition_index("clicks-") == 0);
    CHECK(warren::broker::partition_index("clicks-x1") == 0);
    CHECK(warren::broker::partition_index("clicks-99999999999999999999") == 0);  // no overflow
    // 6 partitions: 1 member reads all; 2 alternate; 5: the first reads 0 and 5; 7: the last waits.
    std::vector<std::size_t> five;
    for (std::uint64_t p = 0; p < 6; ++p) five.push_back(warren::broker::owner_index(p, 5));
    CHECK(five == std::vector<std::size_t>{0, 1, 2, 3, 4, 0});
    for (std::uint64_t p = 0; p < 6; ++p) CHECK(warren::broker::owner_index(p, 7) == p);
    CHECK(warren::broker::owner_index(4, 1) == 0);
}

TEST_CASE("one member of a group reads every partition; a second group reads everything too", "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    publish(b, admin, 0, {"a0", "a1"});
    publish(b, admin, 2, {"c0"});
    Member g(b, "settle");
    Member h(b, "analytics");
    auto got = by_partition(g.c.deliveries());
    CHECK(got == std::map<std::string, std::vector<std::string>>{{"0", {"a0", "a1"}}, {"2", {"c0"}}});
    CHECK(by_partition(h.c.deliveries()) == got);
}

TEST_CASE("a joining member takes its partitions only after the previous owner's deliveries are acked",
          "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    Member first(b, "g");
    publish(b, admin, 1, {"b0", "b1"});
    auto before = first.c.deliveries();
    REQUIRE(by_partition(before)["1"] == std::vector<std::string>{"b0", "b1"});
    // A second member: partition 1 goes to it (1 mod 2), 0 and 2 stay with the first.
    Member second(b, "g");
    publish(b, admin, 1, {"b2"});
    publish(b, admin, 0, {"a0"});
    CHECK(by_partition(first.c.deliveries())["0"] == std::vector<std::string>{"a0"});
    CHECK(second.c.deliveries().empty());  // b0 and b1 are still the first member's, unacked
    first.c.ack(1, before[0].delivery_tag());
    b.settle();
    CHECK(second.c.deliveries().empty());
    first.c.ack(1, before[1].delivery_tag());
    b.settle();
    // Everything the first member had is settled: the second goes on after b1, not before.
    CHECK(by_partition(second.c.deliveries())["1"] == std::vector<std::string>{"b2"});
    CHECK(first.c.deliveries().empty());
}

TEST_CASE("a member that leaves with unacked deliveries: the next owner reads them again, in order",
          "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    Member first(b, "g");
    Member second(b, "g");  // owns partition 1
    publish(b, admin, 1, {"b0", "b1", "b2"});
    auto got = second.c.deliveries();
    REQUIRE(got.size() == 3);
    second.c.ack(1, got[0].delivery_tag());
    b.settle();
    CHECK(b.queue(part(1))->stream()->tracked_offset("g") == 0u);
    second.c.close_channel(1);  // b1 and b2 go back
    auto again = first.c.deliveries();
    CHECK(by_partition(again)["1"] == std::vector<std::string>{"b1", "b2"});
}

TEST_CASE("a member that cancels and then acks hands over with nothing read twice", "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    Member first(b, "g");
    Member second(b, "g");
    publish(b, admin, 1, {"b0", "b1"});
    auto got = second.c.deliveries();
    REQUIRE(got.size() == 2);
    for (int i = 0; i < partitions; ++i) second.c.cancel(1, "g-" + std::to_string(i));
    second.c.take<BasicCancelOk>();
    publish(b, admin, 1, {"b2"});
    CHECK(first.c.deliveries().empty());  // the cancelled member's deliveries are not settled yet
    second.c.ack(1, got[1].delivery_tag(), true);
    b.settle();
    CHECK(by_partition(first.c.deliveries())["1"] == std::vector<std::string>{"b2"});
    CHECK(b.queue(part(1))->stream()->tracked_offset("g") == 1u);
}

TEST_CASE("members beyond the partition count wait, and take over when one leaves", "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    std::vector<std::unique_ptr<Member>> members;
    for (int i = 0; i < 4; ++i) members.push_back(std::make_unique<Member>(b, "g"));
    for (int p = 0; p < partitions; ++p) publish(b, admin, p, {"m" + std::to_string(p)});
    for (int i = 0; i < 3; ++i) {
        auto got = members[i]->c.deliveries();
        REQUIRE(got.size() == 1);
        CHECK(got[0].body == "m" + std::to_string(i));
        members[i]->c.ack(1, got[0].delivery_tag());
    }
    CHECK(members[3]->c.deliveries().empty());
    members[1]->c.close_connection();
    members.erase(members.begin() + 1);
    b.settle();
    // Members 0, 2, 3 now: partition 1 goes to the old member 2, partition 2 to the idle one.
    publish(b, admin, 1, {"n1"});
    publish(b, admin, 2, {"n2"});
    CHECK(by_partition(members[1]->c.deliveries())["1"] == std::vector<std::string>{"n1"});
    CHECK(by_partition(members[2]->c.deliveries())["2"] == std::vector<std::string>{"n2"});
}

TEST_CASE("a slow member keeps its partition's later messages from everyone until it settles", "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    Member slow(b, "g", 1);  // prefetch 1: one message at a time
    publish(b, admin, 1, {"b0", "b1", "b2"});
    auto first = slow.c.deliveries();
    REQUIRE(first.size() == 1);
    Member fast(b, "g");  // wants partition 1
    CHECK(fast.c.deliveries().empty());
    CHECK(slow.c.deliveries().empty());  // it stopped reading partition 1 at the rebalance
    slow.c.ack(1, first[0].delivery_tag());
    b.settle();
    CHECK(by_partition(fast.c.deliveries())["1"] == std::vector<std::string>{"b1", "b2"});
    CHECK(slow.c.deliveries().empty());
}

TEST_CASE("x-stream-group: bad values and non-stream queues get 406", "[streams][groups]") {
    TestBroker b;
    TestClient c(b);
    declare_partitions(c);
    c.qos(1, 10);
    c.consume(1, part(0), "a", false, table({{"x-stream-group", std::int64_t{5}}}));
    auto close = c.channel_close(1);
    REQUIRE(close);
    CHECK(close->reply_code == 406);
    CHECK(text_of(*close) ==
          "PRECONDITION_FAILED - invalid arg 'x-stream-group' for queue 'ss-0' in vhost '/': "
          "expected a group name (a string of 1 to 255 bytes), got long");
    c.close_ok(1);
    c.open_channel(1);
    c.qos(1, 10);
    c.consume(1, part(0), "a", false,
              table({{"x-stream-group", std::string("g")}, {"x-stream-consumer-name", std::string("n")}}));
    close = c.channel_close(1);
    REQUIRE(close);
    CHECK(text_of(*close) ==
          "PRECONDITION_FAILED - invalid arg 'x-stream-consumer-name' for queue 'ss-0' in vhost '/': a group "
          "member's offset is tracked under its group's name; omit x-stream-consumer-name");
    c.close_ok(1);
    c.open_channel(1);
    c.declare_queue(1, "classic");
    c.take<QueueDeclareOk>();
    c.consume(1, "classic", "a", false, table({{"x-stream-group", std::string("g")}}));
    close = c.channel_close(1);
    REQUIRE(close);
    CHECK(text_of(*close) ==
          "PRECONDITION_FAILED - invalid arg 'x-stream-group' for queue 'classic' in vhost '/': "
          "consumer groups read stream queues only");
}

TEST_CASE("a group resumes after a restart from the offsets tracked under its name", "[streams][groups][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    {
        TestBroker b(storage_config(), fs);
        TestClient admin(b);
        declare_partitions(admin);
        publish(b, admin, 0, {"a0", "a1", "a2"});
        Member m(b, "g");
        auto got = m.c.deliveries();
        REQUIRE(got.size() == 3);
        m.c.ack(1, got[1].delivery_tag(), true);
        b.advance(std::chrono::seconds(1));
        b.settle();
    }
    TestBroker b(storage_config(), fs);
    Member m(b, "g");
    CHECK(by_partition(m.c.deliveries())["0"] == std::vector<std::string>{"a2"});
    Member other(b, "h");
    CHECK(by_partition(other.c.deliveries())["0"] == std::vector<std::string>{"a0", "a1", "a2"});
}

TEST_CASE("basic.recover on a group member: it reads the returned deliveries again, in order", "[streams][groups]") {
    TestBroker b;
    TestClient admin(b);
    declare_partitions(admin);
    Member m(b, "g");
    publish(b, admin, 0, {"a0", "a1", "a2"});
    auto got = m.c.deliveries();
    REQUIRE(got.size() == 3);
    m.c.ack(1, got[0].delivery_tag());
    BasicRecover recover;
    recover.requeue = true;
    m.c.send(1, recover);
    b.settle();
    // a1 and a2 came back: the member reads from a1 again, and the group's offset goes on.
    CHECK(by_partition(m.c.deliveries())["0"] == std::vector<std::string>{"a1", "a2"});
    CHECK(b.queue(part(0))->stream()->tracked_offset("g") == 0u);
}
