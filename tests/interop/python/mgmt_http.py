"""The management API under test: a broker started with its HTTP listener (Warren's `management`
key, or a private RabbitMQ node with the management plugin under --broker rabbitmq), and a small
urllib client that returns (status, parsed JSON body, headers).
"""
import base64
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request

import brokers
import procs

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


class MgmtBroker:
    def __init__(self, broker, http_port, stop):
        self.broker = broker  # .host, .port, .connect() for AMQP
        self.http_port = http_port
        self._stop = stop

    def stop(self):
        self._stop()

    def request(self, method, path, body=None, user="guest", password="guest", raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path), data=data,
                                     method=method)
        if user is not None:
            token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text, hdrs = r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read().decode(), dict(e.headers)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return status, parsed, hdrs

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def ok(self, method, path, body=None):
        """The body of a request that must succeed (2xx)."""
        status, parsed, _ = self.request(method, path, body)
        if status // 100 != 2:
            raise AssertionError("%s %s: %d %r" % (method, path, status, parsed))
        return parsed


def quote(name):
    return urllib.parse.quote(name, safe="")


def start(extra_config=None):
    """A broker with its management API on a free port."""
    if brokers.is_rabbitmq():
        sys.path.insert(0, os.path.join(REPO, "tools", "mgmt_reference"))
        from mgmt_node import management_node
        node = management_node(keep_dir=True)

        def stop():
            base = node.base
            node.stop()
            if base:
                shutil.rmtree(base, ignore_errors=True)
        procs.on_cleanup(stop)
        node.start()

        class Amqp:
            host, port = node.host, node.port

            def connect(self, **kw):
                import pika
                kw.setdefault("connection_attempts", 1)
                return pika.BlockingConnection(pika.ConnectionParameters(node.host, node.port, **kw))
        m = MgmtBroker(Amqp(), node.http_port, stop)
        procs.wait_until(lambda: _answers(m), 60, what="RabbitMQ's management API")
        return m
    http_port = procs.free_port()
    config = {"management": {"bind": "127.0.0.1", "port": http_port}, "stats_interval_ms": 500}
    config.update(extra_config or {})
    b = brokers.start_broker(config)
    m = MgmtBroker(b, http_port, b.stop)
    procs.wait_until(lambda: _answers(m), 30, what="Warren's management API")
    return m


def _answers(m):
    try:
        return m.get("/api/overview")[0] == 200
    except OSError:
        return False
