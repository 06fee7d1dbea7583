// The Broker's admin API: users, vhosts, permissions and limits, validated field by field,
// effective at once, and what RabbitMQ does at login and connection.open with them.
#include <catch2/catch.hpp>

#include "support/auth_test.hpp"

using namespace warren::testing;

TEST_CASE("the default user is an administrator with full permissions on the default vhost", "[admin]") {
    TestBroker b;
    const User* guest = b.broker->auth().find_user("guest");
    REQUIRE(guest);
    CHECK(guest->tags == std::vector<std::string>{"administrator"});
    const Permissions* p = b.broker->auth().find_permissions("guest", "/");
    REQUIRE(p);
    CHECK(p->configure.pattern() == ".*");
    CHECK(p->write.pattern() == ".*");
    CHECK(p->read.pattern() == ".*");
}

TEST_CASE("a user added with a password logs in with it and only with it", "[admin][login]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "secret", {"monitoring"}));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    CHECK(b.broker->auth().find_user("u")->password.algorithm == HashAlgorithm::Sha256);
    CHECK(opened(*connect_as(b, "u", "secret")));
    auto wrong = connect_as(b, "u", "Secret");
    CHECK(wrong->take<ConnectionTune>().empty());
    CHECK(connection_refusal(*wrong) ==
          "403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker "
          "logfile.");
}

TEST_CASE("a blank password never logs in", "[admin][login]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", ""));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    CHECK(connection_refusal(*connect_as(b, "u", "")).starts_with("403 ACCESS_REFUSED"));
}

TEST_CASE("only the default user is limited to loopback", "[admin][login]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw"));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    CHECK(opened(*connect_as(b, "u", "pw", "/", false)));
    CHECK(connection_refusal(*connect_as(b, "guest", "guest", "/", false)).starts_with("403 ACCESS_REFUSED"));
}

TEST_CASE("a user without permissions in a vhost cannot open it", "[admin][vhost]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw"));
    auto c = connect_as(b, "u", "pw");
    CHECK_FALSE(opened(*c));
    auto close = c->connection_close();
    REQUIRE(close);
    CHECK(std::string(close->reply_text.view()) == "NOT_ALLOWED - access to vhost '/' refused for user 'u'");
    CHECK(close->class_id == 10);
    CHECK(close->method_id == 40);
}

TEST_CASE("a vhost that does not exist is not found", "[admin][vhost]") {
    TestBroker b;
    CHECK(connection_refusal(*connect_as(b, "guest", "guest", "nope")) == "530 NOT_ALLOWED - vhost nope not found");
}

TEST_CASE("a new vhost has its own exchanges and queues", "[admin][vhost]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_vhost("v2", {"second", {"qa"}}));
    REQUIRE_FALSE(b.broker->set_permissions("guest", "v2", ".*", ".*", ".*"));
    VHost* v2 = b.broker->find_vhost("v2");
    REQUIRE(v2);
    CHECK(v2->settings().description == "second");
    CHECK(v2->find_exchange("amq.topic"));
    auto c = connect_as(b, "guest", "guest", "v2");
    REQUIRE(opened(*c));
    c->open_channel(1);
    c->declare_queue(1, "q");
    CHECK(c->take<QueueDeclareOk>().size() == 1);
    CHECK(v2->find_queue("q"));
    CHECK_FALSE(b.broker->default_vhost().find_queue("q"));
}

TEST_CASE("deleting a vhost closes its connections with 320 and removes its queues", "[admin][vhost]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_vhost("v2"));
    REQUIRE_FALSE(b.broker->set_permissions("guest", "v2", ".*", ".*", ".*"));
    auto in_v2 = connect_as(b, "guest", "guest", "v2");
    REQUIRE(opened(*in_v2));
    in_v2->open_channel(1);
    in_v2->declare_queue(1, "q", {}, false, true);  // exclusive
    in_v2->declare_queue(1, "d", {}, true);
    in_v2->publish(1, "", "d", "m");
    in_v2->consume(1, "d", "t");
    in_v2->frames();
    TestClient in_default(b);

    REQUIRE_FALSE(b.broker->delete_vhost("v2"));
    CHECK(connection_refusal(*in_v2) == "320 CONNECTION_FORCED - vhost 'v2' is deleted");
    CHECK_FALSE(b.broker->find_vhost("v2"));
    CHECK_FALSE(b.broker->auth().find_permissions("guest", "v2"));
    in_v2->send(0, ConnectionCloseOk{});
    CHECK(in_v2->transport_closed());
    CHECK_FALSE(in_default.connection_close());
    in_default.open_channel(1);
    in_default.declare_queue(1, "still-serving");
    CHECK(in_default.take<QueueDeclareOk>().size() == 1);
    CHECK(b.broker->delete_vhost("v2")->kind == AdminError::Kind::NotFound);
}

TEST_CASE("a recreated vhost starts empty and without permissions", "[admin][vhost]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_vhost("v2"));
    REQUIRE_FALSE(b.broker->set_permissions("guest", "v2", ".*", ".*", ".*"));
    {
        auto c = connect_as(b, "guest", "guest", "v2");
        REQUIRE(opened(*c));
        c->open_channel(1);
        c->declare_queue(1, "q");
    }
    REQUIRE_FALSE(b.broker->delete_vhost("v2"));
    REQUIRE_FALSE(b.broker->add_vhost("v2"));
    CHECK_FALSE(b.broker->find_vhost("v2")->find_queue("q"));
    CHECK_FALSE(b.broker->auth().find_permissions("guest", "v2"));
}

TEST_CASE("deleting a user closes its connections with 320 and drops its permissions", "[admin]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw"));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    auto c = connect_as(b, "u", "pw");
    REQUIRE(opened(*c));
    TestClient guest(b);
    REQUIRE_FALSE(b.broker->delete_user("u"));
    CHECK(connection_refusal(*c) == "320 CONNECTION_FORCED - user 'u' is deleted");
    CHECK_FALSE(guest.connection_close());
    CHECK_FALSE(b.broker->auth().find_permissions("u", "/"));
    CHECK(connection_refusal(*connect_as(b, "u", "pw")).starts_with("403 ACCESS_REFUSED"));
}

TEST_CASE("a changed password applies to the next login", "[admin][login]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "old"));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    REQUIRE_FALSE(b.broker->set_password("u", "new"));
    CHECK(connection_refusal(*connect_as(b, "u", "old")).starts_with("403"));
    CHECK(opened(*connect_as(b, "u", "new")));
}

TEST_CASE("RabbitMQ's password hashes log in: SHA-256, SHA-512 and MD5", "[admin][login]") {
    // Salt 908DC60A, password "test12" (RabbitMQ's documented example, and its SHA-512 and MD5).
    TestBroker b;
    auto hash =
        GENERATE(std::pair<std::string, std::string>{"rabbit_password_hashing_sha256",
                                                     "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"},
                 std::pair<std::string, std::string>{
                     "rabbit_password_hashing_sha512",
                     "kI3GChuNuIYf8lRbCCxZjgjKwsY19ns6+uFO0zcXRBGA/XGJPYD8OWMy7EB8TaOmAzjP2azv84GbINYwX2cDWb4DHnc="},
                 std::pair<std::string, std::string>{"rabbit_password_hashing_md5", "kI3GChNpte2FApYFXScl+0dIluk="});
    UserSpec spec;
    spec.name = "u";
    spec.password_hash = hash.second;
    spec.hashing_algorithm = hash.first;
    REQUIRE_FALSE(b.broker->put_user(spec));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    CHECK(opened(*connect_as(b, "u", "test12")));
    CHECK(connection_refusal(*connect_as(b, "u", "test13")).starts_with("403"));
    CHECK(encode_password_hash(b.broker->auth().find_user("u")->password) == hash.second);
}

TEST_CASE("bad input is refused with the field it concerns, and nothing is applied", "[admin][validation]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw"));
    auto field_of = [](const AdminStatus& s) { return s ? s->field : std::string("(accepted)"); };
    CHECK(field_of(b.broker->add_vhost("")) == "name");
    CHECK(field_of(b.broker->add_vhost(std::string(256, 'v'))) == "name");
    CHECK(field_of(b.broker->add_vhost("v\xff")) == "name");
    CHECK(field_of(b.broker->add_vhost("v", {"", {"a,b"}})) == "tags");
    CHECK(field_of(b.broker->add_user("", "pw")) == "name");
    CHECK(field_of(b.broker->add_user("w", "pw", {" "})) == "tags");
    CHECK(b.broker->add_user("u", "pw")->kind == AdminError::Kind::Exists);
    CHECK(field_of(b.broker->set_permissions("u", "/", ".*", "(", ".*")) == "write");
    CHECK(field_of(b.broker->set_permissions("u", "/", "[", ".*", ".*")) == "configure");
    CHECK(field_of(b.broker->set_permissions("u", "/", ".*", ".*", "a{2,1}")) == "read");
    CHECK(field_of(b.broker->set_permissions("u", "nope", ".*", ".*", ".*")) == "vhost");
    CHECK(field_of(b.broker->set_permissions("nobody", "/", ".*", ".*", ".*")) == "user");
    CHECK(field_of(b.broker->set_topic_permissions("u", "/", "amq.topic", ".*", "(")) == "read");
    UserSpec bad_hash{"w", std::nullopt, "not base64!", "rabbit_password_hashing_sha256", {}};
    CHECK(field_of(b.broker->put_user(bad_hash)) == "password_hash");
    UserSpec short_hash{"w", std::nullopt, "kI3GChNpte2FApYFXScl+0dIluk=", "rabbit_password_hashing_sha256", {}};
    CHECK(field_of(b.broker->put_user(short_hash)) == "password_hash");
    UserSpec bad_algorithm{"w", std::nullopt, "", "rabbit_password_hashing_sha1", {}};
    CHECK(field_of(b.broker->put_user(bad_algorithm)) == "hashing_algorithm");

    const std::string text = b.broker->set_permissions("u", "/", ".*", "(", ".*")->text;
    CHECK(text.starts_with("field 'write': invalid regular expression '(': missing closing parenthesis"));
    CHECK_FALSE(b.broker->find_vhost("v"));
    CHECK_FALSE(b.broker->auth().find_user("w"));
    CHECK_FALSE(b.broker->auth().find_permissions("u", "/"));
    CHECK(b.broker->auth().find_user("u")->tags.empty());
}

TEST_CASE("tags are trimmed and kept once each", "[admin]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw", {" management", "policymaker ", "management"}));
    CHECK(b.broker->auth().find_user("u")->tags == std::vector<std::string>{"management", "policymaker"});
    REQUIRE_FALSE(b.broker->set_tags("u", {}));
    CHECK(b.broker->auth().find_user("u")->tags.empty());
}

TEST_CASE("the vhost's max-connections refuses connection.open at the limit", "[admin][limits]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->set_vhost_limits("/", {1, std::nullopt}));
    auto first = connect_as(b, "guest", "guest");
    REQUIRE(opened(*first));
    CHECK(connection_refusal(*connect_as(b, "guest", "guest")) ==
          "530 NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached");
    first.reset();
    CHECK(opened(*connect_as(b, "guest", "guest")));
    REQUIRE_FALSE(b.broker->set_vhost_limits("/", {-1, std::nullopt}));  // negative: no limit
    auto a = connect_as(b, "guest", "guest");
    CHECK(opened(*a));
    CHECK(opened(*connect_as(b, "guest", "guest")));
}

TEST_CASE("the vhost's max-queues refuses queue.declare of a new queue at the limit", "[admin][limits]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->set_vhost_limits("/", {std::nullopt, 1}));
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q1");
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
    c.declare_queue(1, "q1");  // it exists: fine
    REQUIRE(c.take<QueueDeclareOk>().size() == 1);
    c.declare_queue(1, "q2");
    CHECK(channel_refusal(c, 1) ==
          "406 PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '/' (1) is reached");
}

TEST_CASE("max-queues 0 allows no queue", "[admin][limits]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->set_vhost_limits("/", {std::nullopt, 0}));
    TestClient c(b);
    c.open_channel(1);
    c.declare_queue(1, "q");
    CHECK(channel_refusal(c, 1).starts_with("406 PRECONDITION_FAILED - cannot declare queue 'q'"));
}

TEST_CASE("the user's max-connections refuses connection.open at the limit", "[admin][limits]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->set_user_limits("guest", {1, std::nullopt}));
    auto first = connect_as(b, "guest", "guest");
    REQUIRE(opened(*first));
    CHECK(connection_refusal(*connect_as(b, "guest", "guest")) ==
          "530 NOT_ALLOWED - connection refused for user 'guest': user connection limit (1) is reached");
}

TEST_CASE("the user's max-channels closes the connection that opens one too many", "[admin][limits]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->set_user_limits("guest", {std::nullopt, 2}));
    TestClient a(b);
    a.open_channel(1);
    TestClient c(b);
    c.open_channel(1);
    c.send(2, ChannelOpen{});
    auto close = c.connection_close();
    REQUIRE(close);
    CHECK(std::string(close->reply_text.view()) ==
          "NOT_ALLOWED - number of channels opened for user 'guest' has reached the maximum allowed user limit of (2)");
    CHECK(a.take<ChannelOpenOk>().empty());
    CHECK_FALSE(a.connection_close());
}

TEST_CASE("the impersonator tag lets a user publish with another user_id", "[admin]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw", {"impersonator"}));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", ".*", ".*", ".*"));
    auto c = connect_as(b, "u", "pw");
    REQUIRE(opened(*c));
    c->open_channel(1);
    c->declare_queue(1, "q");
    BasicProperties props;
    props.user_id = "someone-else";
    props.set_flag(property_flag::user_id);
    c->publish(1, "", "q", "m", props);
    b.settle();
    CHECK(channel_refusal(*c, 1).empty());
    CHECK(b.queue("q")->message_count() == 1);
}
