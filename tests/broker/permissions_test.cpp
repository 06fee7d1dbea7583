// Permission checks on every AMQP operation, where rabbit_channel makes them and with
// RabbitMQ 3.10's texts (docs/rabbitmq-reference.md, "permissions"): configure, write and
// read patterns per user and vhost, the default exchange as 'amq.default', topic permissions.
#include <catch2/catch.hpp>

#include "support/auth_test.hpp"

using namespace warren::testing;

namespace {

// A broker with user 'u' (password 'pw') whose permissions on '/' are the three patterns.
struct Fixture {
    TestBroker b;
    std::unique_ptr<TestClient> c;
    explicit Fixture(std::string_view configure, std::string_view write, std::string_view read) {
        REQUIRE_FALSE(b.broker->add_user("u", "pw"));
        REQUIRE_FALSE(b.broker->set_permissions("u", "/", configure, write, read));
        // Resources made by the administrator, for the user to use.
        TestClient admin(b);
        admin.open_channel(1);
        admin.declare_queue(1, "q");
        admin.declare_queue(1, "other");
        admin.declare_exchange(1, "x", "direct");
        admin.declare_exchange(1, "y", "fanout");
        admin.bind_queue(1, "q", "x", "k");
        admin.publish(1, "", "q", "m1");
        admin.close_connection();
        b.settle();
        c = connect_as(b, "u", "pw");
        REQUIRE(opened(*c));
        c->open_channel(1);
        c->frames();
    }
    std::string refusal() { return channel_refusal(*c, 1); }
};

constexpr std::string_view nothing = "^$";
const std::string refused_exchange_x = "403 ACCESS_REFUSED - access to exchange 'x' in vhost '/' refused for user 'u'";
const std::string refused_queue_q = "403 ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'";

ExchangeDeclare exchange_declare(std::string_view name, std::string_view type, bool passive = false) {
    ExchangeDeclare m;
    m.exchange = name;
    m.type = type;
    m.passive = passive;
    return m;
}

}  // namespace

TEST_CASE("exchange.declare needs configure on the exchange", "[permissions]") {
    Fixture allowed("^new$", nothing, nothing);
    allowed.c->send(1, exchange_declare("new", "direct"));
    CHECK(allowed.c->take<ExchangeDeclareOk>().size() == 1);

    Fixture refused("^other$", ".*", ".*");
    refused.c->send(1, exchange_declare("x", "direct"));
    CHECK(refused.refusal() == refused_exchange_x);
}

TEST_CASE("exchange.declare passive needs no permission", "[permissions]") {
    Fixture f(nothing, nothing, nothing);
    f.c->send(1, exchange_declare("x", "direct", true));
    CHECK(f.c->take<ExchangeDeclareOk>().size() == 1);
}

TEST_CASE("an amq.* exchange name is refused after the configure check", "[permissions]") {
    Fixture no_configure(nothing, nothing, nothing);
    no_configure.c->send(1, exchange_declare("amq.new", "direct"));
    CHECK(no_configure.refusal() ==
          "403 ACCESS_REFUSED - access to exchange 'amq.new' in vhost '/' refused for user 'u'");

    Fixture configure(".*", nothing, nothing);
    configure.c->send(1, exchange_declare("amq.new", "direct"));
    CHECK(configure.refusal() == "403 ACCESS_REFUSED - exchange name 'amq.new' contains reserved prefix 'amq.*'");
}

TEST_CASE("exchange.declare with an alternate exchange needs read on it and write on the alternate", "[permissions]") {
    FieldTable args;
    args.set("alternate-exchange", std::string("y"));
    auto declare = exchange_declare("new", "direct");
    ByteBuffer encoded = encode_table_body(args);
    declare.arguments = TableView::trusted(encoded.span());

    Fixture allowed(".*", "^y$", "^new$");
    allowed.c->send(1, declare);
    CHECK(allowed.c->take<ExchangeDeclareOk>().size() == 1);

    Fixture no_read(".*", "^y$", nothing);
    no_read.c->send(1, declare);
    CHECK(no_read.refusal() == "403 ACCESS_REFUSED - access to exchange 'new' in vhost '/' refused for user 'u'");

    Fixture no_write(".*", nothing, ".*");
    no_write.c->send(1, declare);
    CHECK(no_write.refusal() == "403 ACCESS_REFUSED - access to exchange 'y' in vhost '/' refused for user 'u'");
}

TEST_CASE("exchange.delete needs configure on the exchange", "[permissions]") {
    Fixture allowed("^x$", nothing, nothing);
    allowed.c->send(1, ExchangeDelete{0, "x", false, false});
    CHECK(allowed.c->take<ExchangeDeleteOk>().size() == 1);

    Fixture refused("^y$", ".*", ".*");
    refused.c->send(1, ExchangeDelete{0, "x", false, false});
    CHECK(refused.refusal() == refused_exchange_x);
}

TEST_CASE("exchange.bind needs write on the destination and read on the source", "[permissions]") {
    ExchangeBind bind;
    bind.destination = "y";
    bind.source = "x";
    bind.routing_key = "k";

    Fixture allowed(nothing, "^y$", "^x$");
    allowed.c->send(1, bind);
    CHECK(allowed.c->take<ExchangeBindOk>().size() == 1);

    Fixture no_write(".*", "^x$", ".*");
    no_write.c->send(1, bind);
    CHECK(no_write.refusal() == "403 ACCESS_REFUSED - access to exchange 'y' in vhost '/' refused for user 'u'");

    Fixture no_read(".*", ".*", "^y$");
    no_read.c->send(1, bind);
    CHECK(no_read.refusal() == refused_exchange_x);
}

TEST_CASE("exchange.bind to the default exchange is refused as amq.default before the default-exchange rule",
          "[permissions]") {
    ExchangeBind bind;
    bind.destination = "";
    bind.source = "x";
    Fixture f(".*", nothing, ".*");
    f.c->send(1, bind);
    CHECK(f.refusal() == "403 ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'");
}

TEST_CASE("exchange.unbind needs write on the destination and read on the source", "[permissions]") {
    ExchangeUnbind unbind;
    unbind.destination = "y";
    unbind.source = "x";
    unbind.routing_key = "k";

    Fixture allowed(nothing, "^y$", "^x$");
    allowed.c->send(1, unbind);
    CHECK(allowed.c->take<ExchangeUnbindOk>().size() == 1);

    Fixture refused(nothing, nothing, "^x$");
    refused.c->send(1, unbind);
    CHECK(refused.refusal() == "403 ACCESS_REFUSED - access to exchange 'y' in vhost '/' refused for user 'u'");
}

TEST_CASE("queue.declare needs configure on the queue", "[permissions]") {
    Fixture allowed("^new$", nothing, nothing);
    allowed.c->declare_queue(1, "new");
    CHECK(allowed.c->take<QueueDeclareOk>().size() == 1);

    Fixture redeclare("^other$", ".*", ".*");
    redeclare.c->declare_queue(1, "q");
    CHECK(redeclare.refusal() == refused_queue_q);
}

TEST_CASE("a server-named queue needs configure on its amq.gen name", "[permissions]") {
    Fixture allowed("^amq\\.gen-", nothing, nothing);
    allowed.c->declare_queue(1, "");
    CHECK(allowed.c->take<QueueDeclareOk>().size() == 1);

    Fixture refused("^q$", nothing, nothing);
    refused.c->declare_queue(1, "");
    CHECK(refused.refusal().starts_with("403 ACCESS_REFUSED - access to queue 'amq.gen-"));
}

TEST_CASE("queue.declare passive needs no permission", "[permissions]") {
    Fixture f(nothing, nothing, nothing);
    QueueDeclare m;
    m.queue = "q";
    m.passive = true;
    f.c->send(1, m);
    CHECK(f.c->take<QueueDeclareOk>().size() == 1);
}

TEST_CASE("queue.declare with a dead-letter exchange needs read on the queue and write on the exchange",
          "[permissions]") {
    FieldTable args;
    args.set("x-dead-letter-exchange", std::string("y"));

    Fixture allowed("^new$", "^y$", "^new$");
    allowed.c->declare_queue(1, "new", args);
    CHECK(allowed.c->take<QueueDeclareOk>().size() == 1);

    Fixture no_write("^new$", nothing, "^new$");
    no_write.c->declare_queue(1, "new", args);
    CHECK(no_write.refusal() == "403 ACCESS_REFUSED - access to exchange 'y' in vhost '/' refused for user 'u'");

    Fixture no_read("^new$", "^y$", nothing);
    no_read.c->declare_queue(1, "new", args);
    CHECK(no_read.refusal() == "403 ACCESS_REFUSED - access to queue 'new' in vhost '/' refused for user 'u'");
}

TEST_CASE("queue.bind needs write on the queue and read on the exchange", "[permissions]") {
    Fixture allowed(nothing, "^q$", "^x$");
    allowed.c->bind_queue(1, "q", "x", "k2");
    CHECK(allowed.c->take<QueueBindOk>().size() == 1);

    Fixture no_write(".*", "^x$", ".*");
    no_write.c->bind_queue(1, "q", "x", "k2");
    CHECK(no_write.refusal() == refused_queue_q);

    Fixture no_read(".*", ".*", "^q$");
    no_read.c->bind_queue(1, "q", "x", "k2");
    CHECK(no_read.refusal() == refused_exchange_x);
}

TEST_CASE("queue.bind to the default exchange is refused by its own rule once write is granted", "[permissions]") {
    Fixture f(nothing, ".*", nothing);
    f.c->bind_queue(1, "q", "", "k");
    CHECK(f.refusal() == "403 ACCESS_REFUSED - operation not permitted on the default exchange");
}

TEST_CASE("queue.unbind needs write on the queue and read on the exchange", "[permissions]") {
    Fixture allowed(nothing, "^q$", "^x$");
    allowed.c->send(1, QueueUnbind{0, "q", "x", "k", {}});
    CHECK(allowed.c->take<QueueUnbindOk>().size() == 1);

    Fixture refused(nothing, "^q$", nothing);
    refused.c->send(1, QueueUnbind{0, "q", "x", "k", {}});
    CHECK(refused.refusal() == refused_exchange_x);
}

TEST_CASE("queue.purge needs read on the queue", "[permissions]") {
    Fixture allowed(nothing, nothing, "^q$");
    allowed.c->purge_queue(1, "q");
    CHECK(allowed.c->take<QueuePurgeOk>().size() == 1);

    Fixture refused(".*", ".*", nothing);
    refused.c->purge_queue(1, "q");
    CHECK(refused.refusal() == refused_queue_q);
}

TEST_CASE("queue.delete needs configure on the queue", "[permissions]") {
    Fixture allowed("^q$", nothing, nothing);
    allowed.c->delete_queue(1, "q");
    CHECK(allowed.c->take<QueueDeleteOk>().size() == 1);

    Fixture refused(nothing, ".*", ".*");
    refused.c->delete_queue(1, "q");
    CHECK(refused.refusal() == refused_queue_q);
}

TEST_CASE("basic.publish needs write on the exchange", "[permissions]") {
    Fixture allowed(nothing, "^x$", nothing);
    allowed.c->confirm_select(1);
    allowed.c->publish(1, "x", "k", "m");
    CHECK(allowed.c->take<BasicAck>().size() == 1);
    CHECK(allowed.b.queue("q")->message_count() == 2);

    Fixture refused(".*", nothing, ".*");
    refused.c->publish(1, "x", "k", "m");
    CHECK(refused.refusal() == refused_exchange_x);
    CHECK(refused.b.queue("q")->message_count() == 1);
}

TEST_CASE("publishing to the default exchange needs write on amq.default", "[permissions]") {
    Fixture allowed(nothing, "^amq\\.default$", nothing);
    allowed.c->publish(1, "", "q", "m");
    allowed.b.settle();
    CHECK(allowed.b.queue("q")->message_count() == 2);

    Fixture refused(nothing, "^q$", nothing);
    refused.c->publish(1, "", "q", "m");
    CHECK(refused.refusal() ==
          "403 ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'");
}

TEST_CASE("a refused publish names basic.publish in channel.close", "[permissions]") {
    Fixture f(nothing, nothing, nothing);
    f.c->publish(1, "x", "k", "m");
    auto close = f.c->channel_close(1);
    REQUIRE(close);
    CHECK(close->class_id == 60);
    CHECK(close->method_id == 40);
}

TEST_CASE("basic.consume needs read on the queue", "[permissions]") {
    Fixture allowed(nothing, nothing, "^q$");
    allowed.c->consume(1, "q", "t", true);
    CHECK(allowed.c->take<BasicConsumeOk>().size() == 1);

    Fixture refused(".*", ".*", "^other$");
    refused.c->consume(1, "q", "t", true);
    CHECK(refused.refusal() == refused_queue_q);
}

TEST_CASE("basic.get needs read on the queue", "[permissions]") {
    Fixture allowed(nothing, nothing, "^q$");
    allowed.c->get(1, "q", true);
    CHECK(allowed.c->deliveries().size() == 1);

    Fixture refused(".*", ".*", nothing);
    refused.c->get(1, "q", true);
    CHECK(refused.refusal() == refused_queue_q);
}

TEST_CASE("a direct reply-to consumer needs no permission", "[permissions]") {
    Fixture f(nothing, nothing, nothing);
    f.c->consume(1, "amq.rabbitmq.reply-to", "t", true);
    CHECK(f.c->take<BasicConsumeOk>().size() == 1);
}

TEST_CASE("patterns are unanchored PCRE as RabbitMQ's", "[permissions]") {
    Fixture f(nothing, "x|y", "(?i)^Q$");
    f.c->publish(1, "x", "k", "m");
    f.c->get(1, "q", true);
    CHECK(f.c->deliveries().size() == 1);
    CHECK(f.refusal().empty());
}

TEST_CASE("a permission change applies to open channels at once", "[permissions]") {
    Fixture f(nothing, ".*", ".*");
    f.c->publish(1, "x", "k", "m");
    f.b.settle();
    CHECK(f.b.queue("q")->message_count() == 2);
    // Granted and cached; then revoked.
    REQUIRE_FALSE(f.b.broker->set_permissions("u", "/", nothing, "^y$", ".*"));
    f.c->publish(1, "x", "k", "m");
    CHECK(f.refusal() == refused_exchange_x);
    CHECK(f.b.queue("q")->message_count() == 2);
}

TEST_CASE("cleared permissions refuse every operation of an open connection", "[permissions]") {
    Fixture f(".*", ".*", ".*");
    REQUIRE_FALSE(f.b.broker->clear_permissions("u", "/"));
    f.c->get(1, "q", true);
    CHECK(f.refusal() == refused_queue_q);
}

TEST_CASE("topic permissions check the routing key of a publish to a topic exchange", "[permissions][topic]") {
    Fixture f(nothing, ".*", ".*");
    REQUIRE_FALSE(f.b.broker->set_topic_permissions("u", "/", "amq.topic", "^a\\.", "^a\\."));
    f.c->confirm_select(1);
    f.c->publish(1, "amq.topic", "a.b", "m");
    CHECK(f.c->take<BasicAck>().size() == 1);
    f.c->publish(1, "amq.topic", "b.c", "m");
    CHECK(f.refusal() ==
          "403 ACCESS_REFUSED - access to topic 'b.c' in exchange 'amq.topic' in vhost '/' refused for user 'u'");
}

TEST_CASE("topic permissions do not apply to other exchange types or other topic exchanges", "[permissions][topic]") {
    Fixture f(".*", ".*", ".*");
    REQUIRE_FALSE(f.b.broker->set_topic_permissions("u", "/", "x", "^$", "^$"));
    REQUIRE_FALSE(f.b.broker->set_topic_permissions("u", "/", "amq.direct", "^$", "^$"));
    f.c->publish(1, "x", "anything", "m");          // direct: not checked
    f.c->publish(1, "amq.topic", "anything", "m");  // topic, without topic permissions
    f.c->publish(1, "amq.direct", "anything", "m");
    f.b.settle();
    CHECK(f.refusal().empty());
}

TEST_CASE("topic permissions check the binding key of queue.bind with read", "[permissions][topic]") {
    Fixture f(".*", ".*", ".*");
    REQUIRE_FALSE(f.b.broker->set_topic_permissions("u", "/", "amq.topic", ".*", "^{username}\\."));
    f.c->bind_queue(1, "q", "amq.topic", "u.#");
    CHECK(f.c->take<QueueBindOk>().size() == 1);
    f.c->bind_queue(1, "q", "amq.topic", "other.#");
    CHECK(f.refusal() ==
          "403 ACCESS_REFUSED - access to topic 'other.#' in exchange 'amq.topic' in vhost '/' refused for user 'u'");
}

TEST_CASE("a topic permission change applies to the next publish", "[permissions][topic]") {
    Fixture f(nothing, ".*", nothing);
    f.c->publish(1, "amq.topic", "a", "m");
    f.b.settle();
    REQUIRE(f.refusal().empty());
    REQUIRE_FALSE(f.b.broker->set_topic_permissions("u", "/", "amq.topic", "^b$", ""));
    f.c->publish(1, "amq.topic", "a", "m");
    CHECK(f.refusal().starts_with("403 ACCESS_REFUSED - access to topic 'a'"));
}

TEST_CASE("permissions in one vhost say nothing about another", "[permissions][vhost]") {
    Fixture f(".*", ".*", ".*");
    REQUIRE_FALSE(f.b.broker->add_vhost("v2"));
    auto c = connect_as(f.b, "u", "pw", "v2");
    CHECK_FALSE(opened(*c));
    CHECK(connection_refusal(*c) == "530 NOT_ALLOWED - access to vhost 'v2' refused for user 'u'");
}

TEST_CASE("empty patterns open the vhost and allow nothing in it", "[permissions]") {
    TestBroker b;
    REQUIRE_FALSE(b.broker->add_user("u", "pw"));
    REQUIRE_FALSE(b.broker->set_permissions("u", "/", "", "", ""));
    auto c = connect_as(b, "u", "pw");
    REQUIRE(opened(*c));
    c->open_channel(1);
    c->declare_queue(1, "q");
    CHECK(channel_refusal(*c, 1) == "403 ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'");
}
