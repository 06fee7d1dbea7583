"""Broker fixtures: start Warren (default) or a private RabbitMQ node on free ports, stop it always.

run.sh selects the broker with INTEROP_BROKER=warren|rabbitmq and Warren's executable with
INTEROP_WARREN. A test module starts one broker in setUpModule and stops it in tearDownModule;
tests needing a special config start their own with start_broker(config). procs.py kills
anything left running if the run fails or is interrupted.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import pika

import procs
import rawamqp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BROKER = os.environ.get("INTEROP_BROKER", "warren")
WARREN = os.environ.get("INTEROP_WARREN", os.path.join(REPO, "build", "broker", "warren"))


def is_rabbitmq():
    return BROKER == "rabbitmq"


def warren_only(reason):
    """Skip under --broker rabbitmq: the test encodes a documented Warren/RabbitMQ 3.10 difference.

    INTEROP_RUN_WARREN_ONLY=1 runs them against RabbitMQ anyway, to see them fail there.
    """
    return unittest.skipIf(is_rabbitmq() and not os.environ.get("INTEROP_RUN_WARREN_ONLY"),
                           "Warren-only (DECISIONS.md): " + reason)


class Broker:
    """A running broker: where it listens and how to connect to it."""

    def __init__(self, kind, port, config, stopper, describe):
        self.kind = kind
        self.host = "127.0.0.1"
        self.port = port
        self.config = config
        self.user = config.get("default_user", "guest")
        self.password = config.get("default_pass", "guest")
        self._stopper = stopper
        self.describe = describe
        self.pid = getattr(stopper, "pid", None)  # Warren's process id (None for RabbitMQ)
        self._output = getattr(stopper, "output", None)

    def log_text(self):
        """What Warren has logged so far ("" for RabbitMQ)."""
        return self._output(tail=1 << 20) if self._output else ""

    def params(self, user=None, password=None, **kw):
        kw.setdefault("connection_attempts", 1)
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("blocked_connection_timeout", 30)
        return pika.ConnectionParameters(
            host=self.host, port=self.port,
            credentials=pika.PlainCredentials(user or self.user, password or self.password),
            **kw)

    def connect(self, **kw):
        return pika.BlockingConnection(self.params(**kw))

    def url(self, user=None, password=None):
        # No trailing slash: "/" as the path would select the vhost "" in rabbitmq-c.
        return "amqp://%s:%s@%s:%d" % (user or self.user, password or self.password,
                                        self.host, self.port)

    def stop(self):
        if self._stopper:
            self._stopper()
            self._stopper = None


# "ERROR: AddressSanitizer: heap-use-after-free ...", "ERROR: LeakSanitizer: ...", and UBSan's
# "file.cpp:12:5: runtime error: ..."
SANITIZER_REPORT = re.compile(r"ERROR: \w+Sanitizer:|: runtime error: ")


def warren_is_sanitized():
    """True when the Warren under test is an AddressSanitizer build: its redzones and
    quarantine of freed memory make RSS say nothing about the broker's own memory use."""
    try:
        out = subprocess.run(["ldd", WARREN], capture_output=True, text=True, check=False).stdout
    except OSError:
        return False
    return "libasan" in out


def _start_warren(config, port):
    if not os.access(WARREN, os.X_OK):
        raise FileNotFoundError("Warren executable not found: %s (build it, or pass --warren PATH)"
                                % WARREN)
    tmp = tempfile.mkdtemp(prefix="warren-interop-")
    argv = [WARREN, "--bind", "127.0.0.1", "--port", str(port)]
    # Each broker stores in its own temp dir unless the test names one (a restart keeps it).
    if not (config and "data_dir" in config):
        argv += ["--data-dir", os.path.join(tmp, "data")]
    if config:
        path = os.path.join(tmp, "warren.json")
        with open(path, "w") as f:
            json.dump(config, f)
        argv += ["--config", path]
    log = open(os.path.join(tmp, "warren.log"), "wb")
    proc = procs.spawn(argv, stdout=log)

    def output(tail=4000):
        with open(os.path.join(tmp, "warren.log"), "rb") as f:
            return f.read().decode(errors="replace")[-tail:]

    def stop():
        """Stop Warren; fail (in the module's teardown) if it had died or a sanitizer spoke."""
        died = proc.poll()
        procs.stop(proc, grace=10)
        log.close()
        problems = []
        if died is not None:
            problems.append("warren had exited by itself with status %s" % died)
        elif proc.returncode != 0:
            problems.append("warren exited with status %s on SIGTERM, not 0" % proc.returncode)
        text = output(tail=1 << 20)
        if SANITIZER_REPORT.search(text):
            problems.append("a sanitizer reported errors")
        if problems:
            raise RuntimeError("%s (log kept in %s):\n%s" % ("; ".join(problems), tmp,
                                                              output()))
        if not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)

    def ready():
        # Ready when the port accepts; also check that it is Warren answering (connection.start)
        # and not some other process that took the port first.
        if proc.poll() is not None:
            raise RuntimeError("warren exited with %s:\n%s" % (proc.returncode, output()))
        if not procs.port_accepts("127.0.0.1", port):
            return False
        if rawamqp.answers_protocol_header("127.0.0.1", port) and proc.poll() is None:
            return True
        if proc.poll() is None:
            raise RuntimeError("port %d accepts connections but does not speak AMQP: "
                               "eaddrinuse?\n%s" % (port, output()))
        return False
    try:
        procs.wait_until(ready, 30, what="warren on port %d" % port)
    except BaseException:
        try:
            stop()
        except RuntimeError:
            pass  # the readiness error carries the log already
        if not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    stop.pid = proc.pid
    stop.output = output
    return stop, "warren %s (pid %d)" % (" ".join(argv[1:]), proc.pid)


def rabbitmq_conf(config):
    """Warren's JSON config keys as rabbitmq.conf lines, so one test config drives both."""
    lines = []
    for key, value in config.items():
        if key in ("default_user", "default_pass", "frame_max", "channel_max", "heartbeat",
                   "max_message_size"):
            lines.append("%s = %s" % (key, value))
        elif key == "memory_high_watermark":
            lines.append("vm_memory_high_watermark.relative = %s" % value)
        elif key == "memory_high_watermark_bytes":
            lines.append("vm_memory_high_watermark.absolute = %d" % value)
        elif key == "load_definitions":
            lines.append("load_definitions = %s" % value)
        elif key == "log_level":
            lines.append("log.file.level = %s" % value)
        elif key == "listeners":  # the first one is the node's port (RabbitNode writes it)
            for i, listener in enumerate(value[1:], 2):
                lines.append("listeners.tcp.%d = %s:%d" % (i, listener["bind"], listener["port"]))
        elif key == "tls_listeners":
            lines += _rabbitmq_tls_conf(value)
        elif key == "tls_handshake_timeout_ms":
            lines.append("ssl_handshake_timeout = %d" % value)
        else:
            raise ValueError("no rabbitmq.conf equivalent for Warren config key %r" % key)
    return lines


def _rabbitmq_tls_conf(listeners):
    """tls_listeners as RabbitMQ's listeners.ssl and ssl_options, with EXTERNAL enabled (the
    rabbitmq_auth_mechanism_ssl plugin, user from the common name). RabbitMQ has one set of
    ssl_options for all its TLS listeners: they must agree."""
    if not listeners:
        return []
    tls = {k: v for k, v in listeners[0].items() if k not in ("bind", "port")}
    if any({k: v for k, v in l.items() if k not in ("bind", "port")} != tls for l in listeners):
        raise ValueError("RabbitMQ has one ssl_options: the tls_listeners' TLS keys must agree")
    lines = ["listeners.ssl.%d = %s:%d" % (i, l.get("bind", "127.0.0.1"), l.get("port", 5671))
             for i, l in enumerate(listeners, 1)]
    for key in ("certfile", "keyfile", "cacertfile"):
        if key in tls:
            lines.append("ssl_options.%s = %s" % (key, tls[key]))
    lines.append("ssl_options.verify = %s" % ("verify_peer" if tls.get("verify_peer") else "verify_none"))
    lines.append("ssl_options.fail_if_no_peer_cert = %s"
                 % ("true" if tls.get("fail_if_no_peer_cert") else "false"))
    for i, version in enumerate(tls.get("versions", ["tlsv1.2", "tlsv1.3"]), 1):
        lines.append("ssl_options.versions.%d = %s" % (i, version))
    lines += ["auth_mechanisms.1 = PLAIN", "auth_mechanisms.2 = AMQPLAIN", "auth_mechanisms.3 = EXTERNAL",
              "ssl_cert_login_from = common_name"]
    return lines


def _start_rabbitmq(config, port):
    # The project's private-node helper (tools/conformance/rabbitmq.py): own node name, free
    # ports, temp dir, no plugins; stop() ends every process of the node.
    sys.path.insert(0, os.path.join(REPO, "tools", "conformance"))
    from rabbitmq import RabbitNode

    class Node(RabbitNode):
        def _amqp_ok(self):
            # The helper's readiness check logs in as guest, who does not exist when the config
            # names another default user: check with the configured credentials instead.
            if "default_user" not in config:
                return super()._amqp_ok()
            try:
                conn = pika.BlockingConnection(pika.ConnectionParameters(
                    self.host, self.port, connection_attempts=1, socket_timeout=3,
                    credentials=pika.PlainCredentials(config["default_user"],
                                                      config.get("default_pass", "guest"))))
                conn.close()
                return True
            except Exception:
                return False

    # keep_dir: the node's logs must outlive a failed start to tell a port clash (eaddrinuse)
    # from a real failure; the directory is removed here instead.
    plugins = ["rabbitmq_auth_mechanism_ssl"] if config.get("tls_listeners") else []
    node = Node(extra_conf=rabbitmq_conf(config), port=port, dist_port=procs.free_port(),
                keep_dir=True, plugins=plugins)

    def stop():
        base = node.base
        node.stop()
        if base and not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)

    procs.on_cleanup(stop)  # also on failure, Ctrl-C and SIGTERM
    try:
        node.start()
    except BaseException as e:
        log = node.log_text() if node.base else ""
        stop()
        if isinstance(e, (RuntimeError, TimeoutError)) and _port_clash(log):
            raise RuntimeError("eaddrinuse: RabbitMQ could not bind its ports") from e
        raise
    return stop, "rabbitmq node %s" % node.nodename


def start_broker(config=None):
    """Start the selected broker with Warren's JSON config keys; the caller must stop() it."""
    config = dict(config or {})
    start = _start_rabbitmq if is_rabbitmq() else _start_warren
    for attempt in range(3):
        port = procs.free_port()
        if "listeners" in config:
            port = config["listeners"][0]["port"]
        try:
            stopper, describe = start(config, port)
            return Broker(BROKER, port, config, stopper, describe)
        except (RuntimeError, TimeoutError) as e:
            # A port taken between choosing and binding it: try others. Anything else is real.
            if attempt == 2 or "listeners" in config or not _port_clash(str(e)):
                raise
            print("interop: port %d was taken, retrying the broker on other ports" % port,
                  file=sys.stderr)


def _port_clash(text):
    return re.search(r"eaddrinuse|address already in use", text, re.IGNORECASE) is not None
