"""Policies and operator policies through a definitions file (load_definitions), seen by pika:
max-length dropping from the head, message-ttl with a dead-letter exchange, an operator policy
capping a policy, a queue's own argument winning over its policy; and (Warren) a policy reaching a
queue that existed before it, kept across a restart.
"""
import json
import os
import tempfile
import unittest

import pika

import brokers
from helpers import bodies, message_count, wait_for

POLICIES = [
    {"vhost": "/", "name": "short", "pattern": "^pol\\.short", "apply-to": "queues", "priority": 1,
     "definition": {"max-length": 2}},
    {"vhost": "/", "name": "ttl", "pattern": "^pol\\.ttl$", "apply-to": "queues", "priority": 0,
     "definition": {"message-ttl": 50, "dead-letter-exchange": "", "dead-letter-routing-key": "pol.dead"}},
    {"vhost": "/", "name": "capped", "pattern": "^pol\\.capped$", "apply-to": "queues", "priority": 0,
     "definition": {"max-length": 100, "ha-mode": "all"}},
]
OPERATOR_POLICIES = [
    {"vhost": "/", "component": "operator_policy", "name": "cap",
     "value": {"pattern": "^pol\\.capped$", "apply-to": "queues", "priority": 0, "definition": {"max-length": 3}}},
]


# RabbitMQ creates no default user when it loads definitions at boot: the file brings guest.
GUEST = {
    "users": [{"name": "guest", "password_hash": "AQIDBEMMOXwY6PKx/JKP9PAqfsb4ozuD0Ta3pxxa9gEYBMmD",
               "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator"}],
    "vhosts": [{"name": "/"}],
    "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
}


def definitions_file(policies=POLICIES, parameters=OPERATOR_POLICIES):
    doc = dict(GUEST, policies=policies, parameters=parameters)
    path = os.path.join(tempfile.mkdtemp(prefix="policy-defs-"), "definitions.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class PolicyTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = brokers.start_broker({"load_definitions": definitions_file()})

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def setUp(self):
        self.conn = self.broker.connect()
        self.addCleanup(lambda: self.conn.is_open and self.conn.close())
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def declare(self, name, arguments=None):
        self.ch.queue_declare(name, arguments=arguments)
        self.addCleanup(lambda: self.conn.is_open and self.conn.channel().queue_delete(name))

    def test_max_length_by_policy_drops_from_the_head(self):
        self.declare("pol.short.a")
        for body in (b"1", b"2", b"3", b"4"):
            self.ch.basic_publish("", "pol.short.a", body)
        self.assertEqual(bodies(self.ch, "pol.short.a"), ["3", "4"])

    def test_queue_argument_below_the_policy_wins(self):
        self.declare("pol.short.b", {"x-max-length": 1})
        for body in (b"1", b"2", b"3"):
            self.ch.basic_publish("", "pol.short.b", body)
        self.assertEqual(bodies(self.ch, "pol.short.b"), ["3"])

    def test_message_ttl_and_dead_letter_exchange_by_policy(self):
        self.declare("pol.dead")
        self.declare("pol.ttl")
        self.ch.basic_publish("", "pol.ttl", b"expiring")
        wait_for(self.conn, lambda: message_count(self.ch, "pol.dead") == 1, what="the expired message")
        self.assertEqual(message_count(self.ch, "pol.ttl"), 0)
        method, props, body = self.ch.basic_get("pol.dead", auto_ack=True)
        self.assertEqual(body, b"expiring")
        self.assertEqual(props.headers["x-death"][0]["reason"], "expired")

    def test_operator_policy_caps_the_policy(self):
        self.declare("pol.capped")
        for i in range(6):
            self.ch.basic_publish("", "pol.capped", str(i).encode())
        self.assertEqual(bodies(self.ch, "pol.capped"), ["3", "4", "5"])


@brokers.warren_only("restarts the broker on the same data directory")
class PolicyRestartTests(unittest.TestCase):
    def test_policy_reaches_an_existing_queue_and_survives_restarts(self):
        data = tempfile.mkdtemp(prefix="policy-data-")
        persistent = pika.BasicProperties(delivery_mode=2)
        broker = brokers.start_broker({"data_dir": data})
        try:
            conn = broker.connect()
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare("pol.short.kept", durable=True)
            for body in (b"1", b"2", b"3", b"4", b"5"):
                ch.basic_publish("", "pol.short.kept", body, persistent)
            conn.close()
        finally:
            broker.stop()
        # The policy arrives with the definitions file: the existing queue drops from its head.
        broker = brokers.start_broker({"data_dir": data, "load_definitions": definitions_file(POLICIES, [])})
        try:
            conn = broker.connect()
            ch = conn.channel()
            self.assertEqual(message_count(ch, "pol.short.kept"), 2)
            conn.close()
        finally:
            broker.stop()
        # Without the file, the stored policy still applies.
        broker = brokers.start_broker({"data_dir": data})
        try:
            conn = broker.connect()
            ch = conn.channel()
            ch.confirm_delivery()
            for body in (b"6", b"7", b"8"):
                ch.basic_publish("", "pol.short.kept", body, persistent)
            self.assertEqual(bodies(ch, "pol.short.kept"), ["7", "8"])
            conn.close()
        finally:
            broker.stop()


if __name__ == "__main__":
    unittest.main()
