"""A private RabbitMQ node with the management plugin (tools/conformance/rabbitmq.py starts nodes
with no plugins; a wrapper script enables rabbitmq_management in the node's own enabled_plugins
file just before the server starts). Used by record.py and by the interop management tests under
--broker rabbitmq.
"""
import os
import stat
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

from rabbitmq import RabbitNode, free_port  # noqa: E402


def management_node(extra_conf=(), **kw):
    """A RabbitNode (not started) whose management API listens on node.http_port."""
    tmp = tempfile.mkdtemp(prefix="warren-mgmt-node-")
    wrapper = os.path.join(tmp, "rabbitmq-server")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\necho "[rabbitmq_management]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"\n'
                'exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"\n')
    os.chmod(wrapper, stat.S_IRWXU)
    http_port = free_port()
    node = RabbitNode(server=wrapper, extra_conf=[
        "management.tcp.port = %d" % http_port, "management.tcp.ip = 127.0.0.1",
        "collect_statistics_interval = 1000"] + list(extra_conf), **kw)
    node.http_port = http_port
    return node
