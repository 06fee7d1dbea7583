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
import signal
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
    """A running broker: where it listens and how to connect to it.

    restart() stops it (SIGTERM, or SIGKILL: a crash) and starts it again on the same data, on
    the same port unless told otherwise; halt() and start_again() do the two halves, for a test
    that needs time to pass while the broker is down.
    """

    def __init__(self, kind, port, config, process):
        self.kind = kind
        self.host = "127.0.0.1"
        self.port = port
        self.config = config
        self.user = config.get("default_user", "guest")
        self.password = config.get("default_pass", "guest")
        self._process = process  # _Warren or _Rabbit

    @property
    def pid(self):
        """Warren's process id (None for RabbitMQ, or while halted)."""
        proc = getattr(self._process, "proc", None) if self.kind == "warren" else None
        return proc.pid if proc else None

    @property
    def describe(self):
        return self._process.describe

    @property
    def data_dir(self):
        """Warren's data directory (None for RabbitMQ)."""
        return getattr(self._process, "data_dir", None)

    def log_text(self, run=None):
        """What Warren has logged so far in its current run, or in run number `run` (1 is the
        first start, each restart adds one); "" for RabbitMQ."""
        return self._process.output(tail=1 << 20, run=run) if self.kind == "warren" else ""

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

    def is_running(self):
        return self._process.is_running()

    def halt(self, kill=False, kill_after=None):
        """Stop the broker and keep its data: SIGTERM (Warren must exit 0 with no sanitizer
        report, or this fails at once), SIGKILL (every process of it, with no warning), or
        (Warren) SIGTERM and SIGKILL kill_after seconds later if it is still shutting down."""
        problems = (self._process.halt(kill=kill) if kill_after is None
                    else self._process.halt(kill_after=kill_after))
        if problems:
            self._process.problems += problems  # the final stop() reports them too
            raise AssertionError("\n".join(problems))

    @property
    def exit_status(self):
        """How Warren's last halted run ended (-9: SIGKILL); None for RabbitMQ."""
        return getattr(self._process, "exit_status", None)

    def start_again(self, port=None, config=None, wait=True):
        """Start the halted broker on its data, on the same port or on `port`, with the same
        config or `config`; returns once it accepts connections (Warren: wait=False returns at
        once, to kill it while it starts)."""
        if config is not None:
            self.config = dict(config)
        self.port = port or self.port
        if wait:
            self._process.start(self.port, self.config)
        else:
            self._process.start(self.port, self.config, wait=False)

    def restart(self, kill=False, port=None, config=None):
        self.halt(kill=kill)
        self.start_again(port=port, config=config)

    def stop(self):
        if self._process:
            process, self._process = self._process, None
            process.stop()


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


class _Warren:
    """Warren processes run one after another in one temp dir, on one data dir: a restart (after
    SIGTERM or SIGKILL) finds what the previous run stored. Each run logs to its own file."""

    def __init__(self, config):
        if not os.access(WARREN, os.X_OK):
            raise FileNotFoundError("Warren executable not found: %s (build it, or pass --warren "
                                    "PATH)" % WARREN)
        self.tmp = tempfile.mkdtemp(prefix="warren-interop-")
        # Each broker stores in its own temp dir unless the test names one (a restart keeps it).
        self.data_dir = (config or {}).get("data_dir") or os.path.join(self.tmp, "data")
        self.config = dict(config or {})
        self.runs = 0
        self.exit_status = None
        self.proc = None
        self.log = None
        self.problems = []  # found when runs stopped (with restart); raised by the final stop

    def is_running(self):
        return self.proc is not None

    def log_path(self, run=None):
        run = self.runs if run is None else run
        return os.path.join(self.tmp, "warren.log" if run <= 1 else "warren.%d.log" % run)

    def output(self, tail=4000, run=None):
        with open(self.log_path(run), "rb") as f:
            return f.read().decode(errors="replace")[-tail:]

    def start(self, port, config=None, wait=True):
        """Starts a run on port (config replaces the previous run's); returns once it answers,
        or at once with wait=False (to kill it while it starts)."""
        if config is not None:
            self.config = dict(config)
        self.runs += 1
        argv = [WARREN, "--bind", "127.0.0.1", "--port", str(port)]
        if "data_dir" not in self.config:
            argv += ["--data-dir", self.data_dir]
        # The HTTP listeners only where a test asks for them (on its own free port): the defaults,
        # 15672 and 15692, may be taken, and several brokers run at once.
        if "management" not in self.config:
            argv += ["--management-port", "0"]
        if "prometheus" not in self.config:
            argv += ["--prometheus-port", "0"]
        if self.config:
            path = os.path.join(self.tmp, "warren.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            argv += ["--config", path]
        self.log = open(self.log_path(), "wb")
        self.proc = procs.spawn(argv, stdout=self.log)
        self.describe = "warren %s (pid %d)" % (" ".join(argv[1:]), self.proc.pid)
        proc = self.proc
        if not wait:
            return

        def ready():
            # Ready when the port accepts; also check that it is Warren answering
            # (connection.start) and not some other process that took the port first.
            if proc.poll() is not None:
                raise RuntimeError("warren exited with %s:\n%s" % (proc.returncode, self.output()))
            if not procs.port_accepts("127.0.0.1", port):
                return False
            if rawamqp.answers_protocol_header("127.0.0.1", port) and proc.poll() is None:
                return True
            if proc.poll() is None:
                raise RuntimeError("port %d accepts connections but does not speak AMQP: "
                                   "eaddrinuse?\n%s" % (port, self.output()))
            return False
        procs.wait_until(ready, 30, what="warren on port %d" % port)

    def halt(self, kill=False, kill_after=None):
        """Ends the current run: SIGTERM (it must exit 0 by itself within 10 s), SIGKILL, or
        SIGTERM and SIGKILL kill_after seconds later unless it has exited 0 by then (to kill it
        while it shuts down). Returns what went wrong: an exit before it was asked to, another
        status, or a sanitizer report (which a killed run may have written before it died)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return []
        died = proc.poll()
        if kill:
            procs.kill(proc)
        else:
            procs.stop(proc, grace=10 if kill_after is None else kill_after)
        self.log.close()
        self.exit_status = proc.returncode
        problems = []
        if died is not None:
            problems.append("warren (run %d) had exited by itself with status %s"
                            % (self.runs, died))
        elif not kill and proc.returncode != 0 and not (
                kill_after is not None and proc.returncode == -signal.SIGKILL):
            problems.append("warren (run %d) exited with status %s on SIGTERM, not 0"
                            % (self.runs, proc.returncode))
        if SANITIZER_REPORT.search(self.output(tail=1 << 20)):
            problems.append("a sanitizer reported errors (run %d)" % self.runs)
        return ["%s (log kept in %s):\n%s" % (p, self.tmp, self.output()) for p in problems]

    def stop(self):
        """Stop Warren; fail (in the module's teardown) if it had died or a sanitizer spoke, in
        this run or in one that a restart ended."""
        problems = self.problems + self.halt()
        self.problems = []
        if problems:
            raise RuntimeError("\n".join(problems))
        if not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def _start_warren(config, port):
    warren = _Warren(config)
    try:
        warren.start(port)
    except BaseException:
        warren.halt()  # the readiness error carries the log already
        if not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(warren.tmp, ignore_errors=True)
        raise
    return warren


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
        elif key == "disk_free_limit":
            lines.append("disk_free_limit.absolute = %d" % value)
        elif key in ("data_dir", "fsync_confirms", "sync_interval_ms", "segment_size"):
            pass  # Warren's storage choices: RabbitMQ keeps its own (its node directory)
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


class _Rabbit:
    """A private RabbitMQ node (tools/conformance/rabbitmq.py) behind _Warren's interface."""

    def __init__(self, config):
        # The project's private-node helper: own node name, free ports, temp dir, no plugins;
        # stop() ends every process of the node.
        sys.path.insert(0, os.path.join(REPO, "tools", "conformance"))
        from rabbitmq import RabbitNode

        class Node(RabbitNode):
            def _amqp_ok(self):
                # The helper's readiness check logs in as guest, who does not exist when the
                # config names another default user: check with the configured credentials.
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

        # keep_dir: the node's logs must outlive a failed start to tell a port clash
        # (eaddrinuse) from a real failure, and its data a restart; removed by stop() instead.
        plugins = ["rabbitmq_auth_mechanism_ssl"] if config.get("tls_listeners") else []
        self.node = Node(extra_conf=rabbitmq_conf(config), dist_port=procs.free_port(),
                         keep_dir=True, plugins=plugins)
        self.problems = []
        self.describe = "rabbitmq node %s" % self.node.nodename
        procs.on_cleanup(self.stop)  # also on failure, Ctrl-C and SIGTERM

    def is_running(self):
        return self.node.proc is not None

    def output(self, tail=4000, run=None):
        return self.node.log_text()[-tail:] if self.node.base else ""

    def start(self, port, config=None):
        if self.node.proc is None and self.node.base:
            self.node.restart(port=port, extra_conf=None if config is None
                              else rabbitmq_conf(config))
        else:
            self.node.port = port
            self.node.start()

    def halt(self, kill=False):
        self.node.halt(kill=kill)
        return []

    def stop(self):
        base = self.node.base
        self.node.stop()
        if base and not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)
        self.node.base = None


def _start_rabbitmq(config, port):
    rabbit = _Rabbit(config)
    try:
        rabbit.start(port)
    except BaseException as e:
        log = rabbit.output(tail=1 << 20)
        rabbit.stop()
        if isinstance(e, (RuntimeError, TimeoutError)) and _port_clash(log):
            raise RuntimeError("eaddrinuse: RabbitMQ could not bind its ports") from e
        raise
    return rabbit


def start_broker(config=None):
    """Start the selected broker with Warren's JSON config keys; the caller must stop() it."""
    config = dict(config or {})
    start = _start_rabbitmq if is_rabbitmq() else _start_warren
    for attempt in range(3):
        port = procs.free_port()
        if "listeners" in config:
            port = config["listeners"][0]["port"]
        try:
            return Broker(BROKER, port, config, start(config, port))
        except (RuntimeError, TimeoutError) as e:
            # A port taken between choosing and binding it: try others. Anything else is real.
            if attempt == 2 or "listeners" in config or not _port_clash(str(e)):
                raise
            print("interop: port %d was taken, retrying the broker on other ports" % port,
                  file=sys.stderr)


def _port_clash(text):
    return re.search(r"eaddrinuse|address already in use", text, re.IGNORECASE) is not None
