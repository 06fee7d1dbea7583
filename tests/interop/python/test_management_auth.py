"""The management API's users, vhosts, permissions, topic permissions and limits: created,
read back, changed and deleted through HTTP, with RabbitMQ's status codes and reasons for bad
input, its tag rules (management sees the vhosts it has permissions in, monitoring sees all,
only administrator changes users, vhosts and permissions, no tag gets 401), and the effect on
AMQP logins. Runs against RabbitMQ 3.10 with its management plugin under --broker rabbitmq.
"""
import unittest

import pika

import brokers
import mgmt_http
from helpers import unique
from mgmt_http import quote

m = None
ALL = {"configure": ".*", "write": ".*", "read": ".*"}


def setUpModule():
    global m
    m = mgmt_http.start()


def tearDownModule():
    m.stop()


def new_user(tags="management", password=None):
    name = unique("u")
    m.ok("PUT", "/api/users/" + name, {"password": password or name, "tags": tags})
    return name


def new_vhost():
    name = unique("v")
    m.ok("PUT", "/api/vhosts/" + quote(name), {})
    return name


def amqp_login(user, password, vhost="/"):
    """Opens and closes an AMQP connection; the exception pika raises when refused."""
    params = pika.ConnectionParameters(m.broker.host, m.broker.port, vhost,
                                       pika.PlainCredentials(user, password), connection_attempts=1)
    try:
        pika.BlockingConnection(params).close()
        return None
    except pika.exceptions.AMQPError as e:
        return e


class UserTests(unittest.TestCase):
    def test_put_get_delete_user_and_log_in_with_it(self):
        name = unique("u")
        path = "/api/users/" + name
        self.assertEqual(m.request("PUT", path, {"password": "s3cret", "tags": "management"})[0], 201)
        self.assertEqual(m.request("PUT", path, {"password": "s3cret", "tags": "management,monitoring"})[0], 204)
        status, u, _ = m.get(path)
        self.assertEqual(status, 200)
        self.assertEqual(u["name"], name)
        self.assertEqual(sorted(u["tags"]), ["management", "monitoring"])
        self.assertEqual(u["hashing_algorithm"], "rabbit_password_hashing_sha256")
        self.assertIsInstance(u["password_hash"], str)
        self.assertEqual(u["limits"], {})
        self.assertIn(name, [x["name"] for x in m.get("/api/users")[1]])
        self.assertIn(name, [x["name"] for x in m.get("/api/users/without-permissions")[1]])
        m.ok("PUT", "/api/permissions/%2F/" + name, ALL)
        self.assertIsNone(amqp_login(name, "s3cret"))
        self.assertIsNotNone(amqp_login(name, "wrong"))
        self.assertEqual(m.request("DELETE", path)[0], 204)
        self.assertEqual(m.get(path)[0], 404)
        self.assertEqual(m.request("DELETE", path)[0], 404)
        self.assertIsNotNone(amqp_login(name, "s3cret"))

    def test_a_password_hash_from_rabbitmq_logs_in(self):
        # base64(salt ++ sha256(salt ++ "p2")), as RabbitMQ stores it.
        name = unique("u")
        m.ok("PUT", "/api/users/" + name, {"password_hash": "AQIDBOGq0N4VivoImJiC9K4/xGwfRBAbPXXFT6n2wfYYSizt",
                                           "tags": ["management"]})
        self.assertEqual(m.get("/api/users/" + name)[1]["password_hash"],
                         "AQIDBOGq0N4VivoImJiC9K4/xGwfRBAbPXXFT6n2wfYYSizt")
        m.ok("PUT", "/api/permissions/%2F/" + name, ALL)
        self.assertIsNone(amqp_login(name, "p2"))
        self.assertEqual(m.get("/api/whoami", user=name, password="p2")[1], {"name": name, "tags": ["management"]})

    def test_bad_user_input_gets_rabbitmqs_reasons(self):
        name = unique("u")
        self.assertEqual(m.request("PUT", "/api/users/" + name, {"password": "x"})[:2],
                         (400, {"error": "bad_request", "reason": "tags_not_present"}))
        self.assertEqual(m.request("PUT", "/api/users/" + name, raw=b"{bad")[:2],
                         (400, {"error": "bad_request", "reason": "not_json"}))
        self.assertEqual(m.request("PUT", "/api/users/" + name, {"password_hash": "!!!", "tags": ""})[:2],
                         (400, {"error": "bad_request", "reason": ["not_base64", "!!!"]}))
        self.assertEqual(m.get("/api/users/" + name)[0], 404)

    def test_bulk_delete(self):
        a, b = new_user(), new_user()
        self.assertEqual(m.request("POST", "/api/users/bulk-delete", {"users": [a, b]})[0], 204)
        self.assertEqual((m.get("/api/users/" + a)[0], m.get("/api/users/" + b)[0]), (404, 404))
        c = new_user()
        status, body, _ = m.request("POST", "/api/users/bulk-delete", {"users": ["nope-" + c]})
        self.assertEqual((status, body), (400, {"error": "bad_request", "reason": ["no_such_user", "nope-" + c]}))
        self.assertEqual(m.get("/api/users/" + c)[0], 200)

    def test_deleting_a_user_closes_its_connections(self):
        name = new_user()
        m.ok("PUT", "/api/permissions/%2F/" + name, ALL)
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            m.broker.host, m.broker.port, "/", pika.PlainCredentials(name, name), connection_attempts=1))
        try:
            m.ok("DELETE", "/api/users/" + name)
            with self.assertRaises(pika.exceptions.AMQPError):
                for _ in range(50):
                    conn.process_data_events(0.1)
        finally:
            if conn.is_open:
                conn.close()


class PermissionTests(unittest.TestCase):
    def test_put_get_delete_permission(self):
        name = new_user()
        path = "/api/permissions/%2F/" + name
        self.assertEqual(m.request("PUT", path, {"configure": "^x", "write": ".*", "read": ".*"})[0], 201)
        self.assertEqual(m.request("PUT", path, {"configure": "^y", "write": ".*", "read": ".*"})[0], 204)
        self.assertEqual(m.get(path)[1], {"user": name, "vhost": "/", "configure": "^y", "write": ".*", "read": ".*"})
        self.assertIn(name, [p["user"] for p in m.get("/api/permissions")[1]])
        self.assertIn(name, [p["user"] for p in m.get("/api/vhosts/%2F/permissions")[1]])
        self.assertEqual([p["vhost"] for p in m.get("/api/users/%s/permissions" % name)[1]], ["/"])
        # The pattern is in force at once: a queue outside ^y is refused.
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            m.broker.host, m.broker.port, "/", pika.PlainCredentials(name, name), connection_attempts=1))
        try:
            ch = conn.channel()
            ch.queue_declare("y" + name, auto_delete=True)
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as e:
                ch.queue_declare("z" + name, auto_delete=True)
            self.assertEqual(e.exception.reply_code, 403)
        finally:
            conn.close()
        self.assertEqual(m.request("DELETE", path)[0], 204)
        self.assertEqual(m.get(path)[0], 404)
        self.assertEqual(m.request("DELETE", path)[0], 404)
        self.assertIsNotNone(amqp_login(name, name))

    def test_bad_permission_input(self):
        name = new_user()
        path = "/api/permissions/%2F/" + name
        status, body, _ = m.request("PUT", path, {"configure": ".*"})
        self.assertEqual((status, body), (400, {"error": "bad_request",
                                                "reason": "[{key_missing,write},{key_missing,read}]"}))
        status, body, _ = m.request("PUT", path, {"configure": "(", "write": ".*", "read": ".*"})
        self.assertEqual((status, body["reason"][0]), (400, "invalid_regexp"))
        for p in ("/api/permissions/nope/" + name, "/api/permissions/%2F/nope-" + name):
            self.assertEqual(m.request("PUT", p, ALL)[:2],
                             (400, {"error": "bad_request", "reason": "vhost_or_user_not_found"}), p)
        self.assertEqual(m.get(path)[0], 404)

    def test_topic_permissions(self):
        name = new_user()
        path = "/api/topic-permissions/%2F/" + name
        self.assertEqual(m.get(path)[0], 404)
        body = {"exchange": "amq.topic", "write": "^a", "read": ".*"}
        self.assertEqual(m.request("PUT", path, body)[0], 201)
        self.assertEqual(m.request("PUT", path, body)[0], 204)
        expected = dict(body, user=name, vhost="/")
        self.assertEqual(m.get(path)[1], [expected])
        self.assertIn(expected, m.get("/api/topic-permissions")[1])
        self.assertIn(expected, m.get("/api/vhosts/%2F/topic-permissions")[1])
        self.assertEqual(m.get("/api/users/%s/topic-permissions" % name)[1], [expected])
        self.assertEqual(m.request("PUT", path, {"write": ".*", "read": ".*"})[:2],
                         (400, {"error": "bad_request", "reason": "[{key_missing,exchange}]"}))
        status, got, _ = m.request("PUT", path, {"exchange": "amq.topic", "write": "(", "read": ".*"})
        self.assertEqual((status, got["reason"][0]), (400, "invalid_regexp"))
        self.assertEqual(m.request("DELETE", path)[0], 204)
        self.assertEqual(m.request("DELETE", path)[0], 404)


class VhostAndLimitTests(unittest.TestCase):
    def test_put_get_delete_vhost(self):
        name = unique("v")
        path = "/api/vhosts/" + quote(name)
        self.assertEqual(m.request("PUT", path, {"description": "for tests", "tags": "a,b"})[0], 201)
        self.assertEqual(m.request("PUT", path, {"description": "for tests", "tags": "a,b"})[0], 204)
        v = m.get(path)[1]
        self.assertEqual((v["name"], v["description"], v["tags"]), (name, "for tests", ["a", "b"]))
        self.assertEqual(v["metadata"], {"description": "for tests", "tags": ["a", "b"]})
        # The creator gets full permissions, as at RabbitMQ; the vhost works over AMQP.
        self.assertEqual(m.get("/api/permissions/%s/guest" % quote(name))[1]["configure"], ".*")
        m.ok("PUT", "/api/queues/%s/q" % quote(name), {"durable": False})
        self.assertEqual(m.get("/api/queues/%s/q" % quote(name))[0], 200)
        self.assertEqual(m.request("PUT", "/api/vhosts/" + quote(unique("v")), raw=b"[1,")[:2],
                         (400, {"error": "bad_request", "reason": "not_json"}))
        self.assertEqual(m.request("DELETE", path)[0], 204)
        self.assertEqual(m.get(path)[0], 404)
        self.assertEqual(m.request("DELETE", path)[0], 404)
        self.assertEqual(m.get("/api/queues/%s/q" % quote(name))[0], 404)

    def test_vhost_limits(self):
        name = new_vhost()
        base = "/api/vhost-limits/" + quote(name)
        self.assertEqual(m.get(base)[1], [])
        self.assertEqual(m.request("PUT", base + "/max-connections", {"value": 10})[0], 204)
        self.assertEqual(m.request("PUT", base + "/max-queues", {"value": 1})[0], 204)
        want = {"vhost": name, "value": {"max-connections": 10, "max-queues": 1}}
        self.assertEqual(m.get(base)[1], [want])
        self.assertIn(want, m.get("/api/vhost-limits")[1])
        # max-queues 1 is in force: a second queue is refused.
        m.ok("PUT", "/api/permissions/%s/guest" % quote(name), ALL)
        conn = pika.BlockingConnection(pika.ConnectionParameters(m.broker.host, m.broker.port, name,
                                                                 connection_attempts=1))
        try:
            ch = conn.channel()
            ch.queue_declare("one", auto_delete=True)
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as e:
                ch.queue_declare("two", auto_delete=True)
            self.assertEqual(e.exception.reply_code, 406)
        finally:
            conn.close()
        status, body, _ = m.request("PUT", base + "/max-nope", {"value": 5})
        self.assertEqual((status, body["reason"]),
                         (400, "Validation failed\n\nUnrecognised terms [{<<\"max-nope\">>,5}] in limits\n"))
        status, body, _ = m.request("PUT", base + "/max-queues", {"value": "x"})
        self.assertEqual((status, body["reason"]),
                         (400, "Validation failed\n\nmax-queues should be a number, actually was <<\"x\">>\n"))
        self.assertEqual(m.request("PUT", base + "/max-queues", {})[:2],
                         (400, {"error": "bad_request", "reason": "[{key_missing,value}]"}))
        self.assertEqual(m.request("PUT", "/api/vhost-limits/nope/max-queues", {"value": 5})[:2],
                         (404, {"error": "not_found", "reason": "vhost_not_found"}))
        self.assertEqual(m.get("/api/vhost-limits/nope")[0], 404)
        self.assertEqual(m.request("DELETE", base + "/max-queues")[0], 204)
        self.assertEqual(m.request("DELETE", base + "/max-queues")[0], 204)
        self.assertEqual(m.get(base)[1], [{"vhost": name, "value": {"max-connections": 10}}])

    def test_user_limits(self):
        name = new_user()
        base = "/api/user-limits/" + name
        self.assertEqual(m.get(base)[1], [])
        self.assertEqual(m.request("PUT", base + "/max-channels", {"value": 5})[0], 204)
        self.assertEqual(m.request("PUT", base + "/max-connections", {"value": 3})[0], 204)
        want = {"user": name, "value": {"max-channels": 5, "max-connections": 3}}
        self.assertEqual(m.get(base)[1], [want])
        self.assertIn(want, m.get("/api/user-limits")[1])
        self.assertEqual(m.get("/api/users/" + name)[1]["limits"], {"max-channels": 5, "max-connections": 3})
        status, body, _ = m.request("PUT", base + "/max-nope", {"value": 5})
        self.assertEqual((status, body["reason"]), (400, "Unrecognised terms [{<<\"max-nope\">>,5}] in user-limits"))
        self.assertEqual(m.request("PUT", "/api/user-limits/nope-%s/max-channels" % name, {"value": 5})[:2],
                         (400, {"error": "bad_request", "reason": ["no_such_user", "nope-" + name]}))
        self.assertEqual(m.request("DELETE", base + "/max-channels")[0], 204)
        self.assertEqual(m.request("DELETE", base + "/max-channels")[0], 204)
        self.assertEqual(m.get(base)[1], [{"user": name, "value": {"max-connections": 3}}])


class TagRuleTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.private = new_vhost()  # guest has permissions there (its creator), the others not
        m.ok("PUT", "/api/queues/%s/pq" % quote(cls.private), {"durable": False})
        cls.mgr = new_user("management")
        cls.mon = new_user("monitoring")
        cls.none = new_user("")
        for u in (cls.mgr, cls.mon, cls.none):
            m.ok("PUT", "/api/permissions/%2F/" + u, ALL)

    def as_(self, user, method, path, body=None):
        return m.request(method, path, body, user=user, password=user)[:2]

    def test_whoami_has_the_users_tags(self):
        self.assertEqual(self.as_(self.mgr, "GET", "/api/whoami"), (200, {"name": self.mgr, "tags": ["management"]}))
        self.assertEqual(self.as_(self.mon, "GET", "/api/whoami")[1]["tags"], ["monitoring"])

    def test_a_user_without_a_management_tag_gets_401(self):
        for path in ("/api/overview", "/api/whoami", "/api/queues"):
            self.assertEqual(self.as_(self.none, "GET", path),
                             (401, {"error": "not_authorised", "reason": "Not management user"}), path)

    def test_management_sees_only_the_vhosts_it_has_permissions_in(self):
        status, vhosts = self.as_(self.mgr, "GET", "/api/vhosts")
        self.assertEqual(status, 200)
        self.assertIn("/", [v["name"] for v in vhosts])
        self.assertNotIn(self.private, [v["name"] for v in vhosts])
        self.assertNotIn(self.private, {q["vhost"] for q in self.as_(self.mgr, "GET", "/api/queues")[1]})
        self.assertNotIn(self.private, {x["vhost"] for x in self.as_(self.mgr, "GET", "/api/exchanges")[1]})
        refused = (401, {"error": "not_authorised", "reason": "User not authorised to access virtual host"})
        self.assertEqual(self.as_(self.mgr, "GET", "/api/queues/" + quote(self.private)), refused)
        self.assertEqual(self.as_(self.mgr, "PUT", "/api/queues/%s/q2" % quote(self.private), {}), refused)
        self.assertEqual(self.as_(self.mgr, "GET", "/api/vhosts/" + quote(self.private)),
                         (401, {"error": "not_authorised", "reason": "Not administrator user"}))

    def test_monitoring_lists_every_vhost_but_needs_permissions_to_open_one(self):
        self.assertIn(self.private, [v["name"] for v in self.as_(self.mon, "GET", "/api/vhosts")[1]])
        self.assertEqual(self.as_(self.mon, "GET", "/api/queues/" + quote(self.private))[0], 401)

    def test_changes_through_the_api_need_the_users_amqp_permissions(self):
        user = new_user("management")
        mine = "mine-" + user
        m.ok("PUT", "/api/permissions/%2F/" + user, {"configure": "^mine-", "write": "^mine-", "read": "^mine-"})
        self.assertEqual(m.request("PUT", "/api/queues/%2F/" + mine, {"durable": False},
                                   user=user, password=user)[0], 201)
        status, body, _ = m.request("PUT", "/api/queues/%2F/other-" + user, {"durable": False},
                                    user=user, password=user)
        # RabbitMQ 3.10's answer (its AMQP refusal text is not passed on).
        self.assertEqual((status, body), (401, {"error": "not_authorised", "reason": "Access refused."}))
        self.assertEqual(m.request("DELETE", "/api/queues/%2F/" + mine, user=user, password=user)[0], 204)

    def test_only_administrators_change_users_vhosts_and_permissions(self):
        not_admin = (401, {"error": "not_authorised", "reason": "Not administrator user"})
        for user in (self.mgr, self.mon):
            self.assertEqual(self.as_(user, "GET", "/api/users"), not_admin)
            self.assertEqual(self.as_(user, "GET", "/api/permissions"), not_admin)
            self.assertEqual(self.as_(user, "PUT", "/api/users/x-" + user, {"password": "x", "tags": ""}), not_admin)
            self.assertEqual(self.as_(user, "PUT", "/api/vhosts/x-" + user, {}), not_admin)
            self.assertEqual(self.as_(user, "PUT", "/api/permissions/%2F/" + user, ALL), not_admin)
        self.assertEqual(m.get("/api/users/x-" + self.mgr)[0], 404)


class VhostDefinitionsTests(unittest.TestCase):
    """POST /api/definitions/{vhost}: the vhost's own sections land in that vhost."""

    def test_import_into_one_vhost_puts_every_entry_there(self):
        v = new_vhost()
        q, x, pol = unique("q"), unique("x"), unique("p")
        other = "not-this-one"  # each entry's own vhost field is overridden by the path's
        body = {
            "queues": [{"name": q, "vhost": other, "durable": True, "auto_delete": False, "arguments": {}}],
            "exchanges": [{"name": x, "vhost": other, "type": "fanout", "durable": True, "auto_delete": False,
                           "internal": False, "arguments": {}}],
            "bindings": [{"source": x, "vhost": other, "destination": q, "destination_type": "queue",
                          "routing_key": "", "arguments": {}}],
            "policies": [{"name": pol, "vhost": other, "pattern": "^" + q + "$", "apply-to": "queues",
                          "priority": 0, "definition": {"max-length": 5}}],
        }
        self.assertIn(m.request("POST", "/api/definitions/" + quote(v), body)[0], (201, 204))
        status, queue, _ = m.get("/api/queues/%s/%s" % (quote(v), q))
        self.assertEqual(status, 200)
        self.assertEqual(m.get("/api/queues/%2F/" + q)[0], 404)
        status, policy, _ = m.get("/api/policies/%s/%s" % (quote(v), pol))
        self.assertEqual((status, policy["definition"]), (200, {"max-length": 5}))
        status, bindings, _ = m.get("/api/exchanges/%s/%s/bindings/source" % (quote(v), x))
        self.assertEqual([b["destination"] for b in bindings], [q])
        # The queue names the policy that applies to it, as RabbitMQ's API does.
        status, queue, _ = m.get("/api/queues/%s/%s" % (quote(v), q))
        self.assertEqual((queue["policy"], queue["effective_policy_definition"]), (pol, {"max-length": 5}))
        # The policy applies to the imported queue: publish 8, keep 5.
        conn = pika.BlockingConnection(pika.ConnectionParameters(m.broker.host, m.broker.port, v))
        ch = conn.channel()
        ch.confirm_delivery()
        for i in range(8):
            ch.basic_publish(x, "", str(i).encode())
        self.assertEqual(ch.queue_declare(q, passive=True).method.message_count, 5)
        conn.close()

    def test_unknown_vhost_is_404(self):
        self.assertEqual(m.request("POST", "/api/definitions/" + unique("nope"), {"queues": []})[0], 404)

    @brokers.warren_only("an import is all or nothing; RabbitMQ applies the entries before the bad one")
    def test_a_bad_entry_applies_nothing(self):
        v = new_vhost()
        q = unique("q")
        body = {"queues": [{"name": q, "vhost": v, "durable": True, "auto_delete": False, "arguments": {}}],
                "exchanges": [{"name": unique("x"), "vhost": v, "type": "no-such-type", "durable": True,
                               "auto_delete": False, "internal": False, "arguments": {}}]}
        status, reason, _ = m.request("POST", "/api/definitions/" + quote(v), body)
        self.assertEqual(status, 400, reason)
        self.assertEqual(m.get("/api/queues/%s/%s" % (quote(v), q))[0], 404)
