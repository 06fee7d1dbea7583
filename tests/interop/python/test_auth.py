"""Users, vhosts and permissions through pika, on a broker started with a RabbitMQ definitions
file (load_definitions): logins with RabbitMQ password hashes, vhost access (530), permission
refusals (403) with RabbitMQ's texts, topic permissions; and (Warren) a restart keeps them.
"""
import json
import os
import tempfile
import unittest

import pika
import pika.exceptions

import brokers
from helpers import channel_error

# Password "test12", salt 908DC60A: RabbitMQ's documented SHA-256 example, and its MD5; guest
# keeps the password "guest" (the brokers' readiness checks log in with it).
DEFINITIONS = {
    "users": [
        {"name": "guest", "password_hash": "AQIDBEMMOXwY6PKx/JKP9PAqfsb4ozuD0Ta3pxxa9gEYBMmD",
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator"},
        {"name": "alice", "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "management"},
        {"name": "bob", "password_hash": "kI3GChNpte2FApYFXScl+0dIluk=",
         "hashing_algorithm": "rabbit_password_hashing_md5", "tags": ""},
    ],
    "vhosts": [{"name": "/"}, {"name": "orders"}],
    "permissions": [
        {"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
        {"user": "guest", "vhost": "orders", "configure": ".*", "write": ".*", "read": ".*"},
        {"user": "alice", "vhost": "orders", "configure": "^alice\\.", "write": "^(alice\\.|amq\\.topic$)",
         "read": "^alice\\."},
        {"user": "bob", "vhost": "/", "configure": "", "write": "", "read": ".*"},
    ],
    "topic_permissions": [
        {"user": "alice", "vhost": "orders", "exchange": "amq.topic", "write": "^alice\\.", "read": ".*"},
    ],
}


def definitions_file():
    """DEFINITIONS written to a temp file (for a broker's load_definitions)."""
    path = os.path.join(tempfile.mkdtemp(prefix="auth-defs-"), "definitions.json")
    with open(path, "w") as f:
        json.dump(DEFINITIONS, f)
    return path


def start(extra=None):
    config = {"load_definitions": definitions_file()}
    config.update(extra or {})
    return brokers.start_broker(config)


class AuthTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = start()

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def connect(self, user, password="test12", vhost="/"):
        return pika.BlockingConnection(self.broker.params(user=user, password=password, virtual_host=vhost))

    def test_rabbitmq_password_hashes_log_in(self):
        self.connect("alice", vhost="orders").close()
        self.connect("bob").close()
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            self.connect("alice", password="wrong", vhost="orders")

    def test_vhost_without_permissions_is_not_allowed(self):
        with self.assertRaises(pika.exceptions.ProbableAccessDeniedError) as e:
            self.connect("alice", vhost="/")
        self.assertIn("(530) \"NOT_ALLOWED - access to vhost '/' refused for user 'alice'\"", str(e.exception))

    def test_configure_write_read_patterns(self):
        conn = self.connect("alice", vhost="orders")
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        ch.queue_declare("alice.q", auto_delete=True)
        ch.basic_publish("", "alice.q", b"m")  # the default exchange is 'amq.default': refused
        with channel_error(self, 403, "ACCESS_REFUSED - access to exchange 'amq.default' in vhost 'orders' "
                                      "refused for user 'alice'"):
            ch.queue_declare("alice.q2")  # the refusal of the publish arrives first
        ch = conn.channel()
        with channel_error(self, 403, "ACCESS_REFUSED - access to queue 'bob.q' in vhost 'orders' "
                                      "refused for user 'alice'"):
            ch.queue_declare("bob.q")

    def test_read_only_user(self):
        admin = self.connect("guest", password="guest")
        self.addCleanup(admin.close)
        admin.channel().queue_declare("auth-ro", auto_delete=False)
        admin.channel().basic_publish("", "auth-ro", b"hello")
        conn = self.connect("bob")
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        method, _, body = ch.basic_get("auth-ro", auto_ack=True)
        self.assertEqual(body, b"hello")
        with channel_error(self, 403, "ACCESS_REFUSED - access to queue 'auth-ro' in vhost '/' refused for user 'bob'"):
            ch.queue_delete("auth-ro")
        admin.channel().queue_delete("auth-ro")

    def test_topic_permissions(self):
        conn = self.connect("alice", vhost="orders")
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("amq.topic", "alice.created", b"ok")
        with channel_error(self, 403, "ACCESS_REFUSED - access to topic 'bob.created' in exchange 'amq.topic' "
                                      "in vhost 'orders' refused for user 'alice'"):
            ch.basic_publish("amq.topic", "bob.created", b"no")


@brokers.warren_only("restarts the broker on the same data directory")
class RestartTests(unittest.TestCase):
    def test_restart_keeps_users_vhosts_and_permissions(self):
        data = tempfile.mkdtemp(prefix="auth-data-")
        broker = start({"data_dir": data})
        try:
            pika.BlockingConnection(broker.params(user="alice", password="test12", virtual_host="orders")).close()
        finally:
            broker.stop()
        broker = brokers.start_broker({"data_dir": data})  # no definitions file this time
        try:
            conn = pika.BlockingConnection(broker.params(user="alice", password="test12", virtual_host="orders"))
            ch = conn.channel()
            with channel_error(self, 403, "ACCESS_REFUSED - access to queue 'x' in vhost 'orders' "
                                          "refused for user 'alice'"):
                ch.queue_declare("x")
            conn.close()
        finally:
            broker.stop()


if __name__ == "__main__":
    unittest.main()
