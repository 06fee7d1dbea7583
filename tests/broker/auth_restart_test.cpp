// Users, vhosts, permissions, topic permissions and limits across a restart on the same data
// directory; the default user only on a fresh directory; a deleted vhost's messages removed.
#include <catch2/catch.hpp>

#include "broker/definitions.hpp"
#include "broker/durability.hpp"
#include "support/auth_test.hpp"
#include "support/storage_test.hpp"

using namespace warren::testing;

namespace {
std::unique_ptr<TestBroker> start(std::shared_ptr<warren::store::FaultFileSystem> fs, Config c = storage_config()) {
    auto b = std::make_unique<TestBroker>(c, fs);
    b->settle();
    return b;
}
}  // namespace

TEST_CASE("users, vhosts, permissions and limits survive a restart", "[auth][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    {
        auto b = start(fs);
        Broker& br = *b->broker;
        REQUIRE_FALSE(br.add_vhost("v2", {"the second", {"prod"}}));
        REQUIRE_FALSE(br.set_vhost_limits("v2", {10, 20}));
        REQUIRE_FALSE(br.add_user("u", "pw", {"management"}));
        REQUIRE_FALSE(br.set_user_limits("u", {3, 7}));
        REQUIRE_FALSE(br.set_permissions("u", "v2", "^c", "^w", "^r"));
        REQUIRE_FALSE(br.set_topic_permissions("u", "v2", "amq.topic", "^{username}\\.", ".*"));
        REQUIRE_FALSE(br.add_user("gone", "pw"));
        REQUIRE_FALSE(br.delete_user("gone"));
        REQUIRE_FALSE(br.set_password("guest", "changed"));
        b->settle();
    }
    auto b = start(crashed(*fs));
    const Broker& br = *b->broker;
    const VHost* v2 = b->broker->find_vhost("v2");
    REQUIRE(v2);
    CHECK(v2->settings().description == "the second");
    CHECK(v2->settings().tags == std::vector<std::string>{"prod"});
    CHECK(v2->limits() == VHostLimits{10, 20});
    const User* u = br.auth().find_user("u");
    REQUIRE(u);
    CHECK(u->tags == std::vector<std::string>{"management"});
    CHECK(u->limits == UserLimits{3, 7});
    CHECK_FALSE(br.auth().find_user("gone"));
    const Permissions* p = br.auth().find_permissions("u", "v2");
    REQUIRE(p);
    CHECK(p->write.pattern() == "^w");
    Access a = br.access("u", "v2");
    REQUIRE(a.topics);
    CHECK(a.topics->at("amq.topic").write_pattern == "^{username}\\.");
    CHECK(a.topics->at("amq.topic").write.matches("u.x"));
    CHECK(opened(*connect_as(*b, "u", "pw", "v2")));
    CHECK(opened(*connect_as(*b, "guest", "changed")));
    CHECK(connection_refusal(*connect_as(*b, "guest", "guest")).starts_with("403"));
}

TEST_CASE("a data directory keeps its users: the default user is created only on a fresh one", "[auth][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    {
        auto b = start(fs);
        CHECK(b->broker->auth().find_user("guest"));
        REQUIRE_FALSE(b->broker->add_user("admin", "pw", {"administrator"}));
        REQUIRE_FALSE(b->broker->delete_user("guest"));
        b->settle();
    }
    Config other = storage_config();
    other.default_user = "someone";
    auto b = start(crashed(*fs), other);
    CHECK_FALSE(b->broker->auth().find_user("guest"));
    CHECK_FALSE(b->broker->auth().find_user("someone"));
    CHECK(b->broker->auth().find_user("admin"));
}

TEST_CASE("a data directory from before users were stored gets the default user", "[auth][storage]") {
    // A format-1 snapshot: vhosts, exchanges, queues, bindings; no users.
    warren::broker::definitions::Definitions old;
    REQUIRE_FALSE(old.apply_snapshot(std::as_bytes(
        std::span(std::string_view(R"({"format":1,"next_vhost_id":2,"next_queue_id":1,"vhosts":[{"name":"/","id":1}],)"
                                   R"("exchanges":[],"queues":[],"bindings":[]})")))));
    CHECK_FALSE(old.users_stored);
    CHECK(old.vhosts.size() == 1);
}

TEST_CASE("a deleted vhost stays deleted, and its messages are removed", "[auth][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    std::uint32_t id = 0;
    {
        auto b = start(fs);
        REQUIRE_FALSE(b->broker->add_vhost("v2"));
        REQUIRE_FALSE(b->broker->set_permissions("guest", "v2", ".*", ".*", ".*"));
        id = b->broker->find_vhost("v2")->id();
        auto c = connect_as(*b, "guest", "guest", "v2");
        REQUIRE(opened(*c));
        c->open_channel(1);
        c->declare_queue(1, "d", {}, true);
        c->confirm_select(1);
        c->publish(1, "", "d", "m", persistent());
        b->settle();
        REQUIRE(c->take<BasicAck>().size() == 1);
        REQUIRE(fs->list("/data/vhosts/" + std::to_string(id)));
        REQUIRE_FALSE(b->broker->delete_vhost("v2"));
        b->settle();
        auto left = fs->list("/data/vhosts/" + std::to_string(id));
        CHECK((!left || left->empty()));
    }
    auto b = start(crashed(*fs));
    CHECK_FALSE(b->broker->find_vhost("v2"));
    REQUIRE_FALSE(b->broker->add_vhost("v2"));
    CHECK(b->broker->find_vhost("v2")->id() != id);
    CHECK_FALSE(b->broker->find_vhost("v2")->find_queue("d"));
}

// A full disk at start-up: the definitions snapshot written after recovery cannot be stored.
// The broker starts anyway on the log it just replayed, and what it records next survives.
TEST_CASE("a start whose definitions snapshot cannot be written keeps the current log", "[auth][storage]") {
    auto fs = std::make_shared<warren::store::FaultFileSystem>();
    {
        auto b = start(fs);
        REQUIRE_FALSE(b->broker->add_user("before", "pw", {"management"}));
        b->settle();
    }
    auto full = crashed(*fs);
    full->inject({warren::store::FaultFileSystem::Op::Write, 1, std::errc::no_space_on_device, 0, "snapshot.tmp"});
    {
        std::unique_ptr<TestBroker> b;
        REQUIRE_NOTHROW(b = start(full));
        CHECK(b->broker->auth().find_user("before"));
        REQUIRE_FALSE(b->broker->add_user("after", "pw", {"management"}));
        b->settle();
    }
    full->clear_faults();
    auto b = start(crashed(*full));
    CHECK(b->broker->auth().find_user("before"));
    CHECK(b->broker->auth().find_user("after"));
    CHECK(b->broker->auth().find_user("guest"));
}
