#!/usr/bin/python3
"""Start and stop a private, throw-away RabbitMQ node for tests and probes.

Library use::

    import sys; sys.path.insert(0, "tools/conformance")
    from rabbitmq import RabbitNode

    with RabbitNode(extra_conf=["max_message_size = 1000"]) as node:
        print(node.host, node.port)        # 127.0.0.1, a free port
        # ... connect with any AMQP client, user guest / password guest ...

    # or, without a with-block:
    node = RabbitNode(); node.start(); ...; node.stop()
    # a restart on the same node directory (what it stored survives), after SIGTERM or SIGKILL:
    node.restart(kill=True)

CLI use::

    tools/conformance/rabbitmq.py run [--conf 'LINE' ...]   # start, print port, wait for Ctrl-C
    tools/conformance/rabbitmq.py exec [--conf ...] -- CMD ARGS...
        # start, run CMD with RABBITMQ_HOST / RABBITMQ_PORT / RABBITMQ_NODENAME set
        # and "{port}" in its arguments replaced, stop, exit with CMD's status

What it guarantees:

* a unique node name (``warren-probe-<pid>-<n>@localhost``), a free AMQP port
  on 127.0.0.1 (never 5672) and a free Erlang distribution port;
* every file (config, mnesia, logs, cookie, HOME) lives in a private temp dir
  that is removed on stop;
* no plugins unless asked for (RABBITMQ_ENABLED_PLUGINS_FILE lists only those);
* the default ``guest`` user may log in from 127.0.0.1 (that is RabbitMQ's
  own default, loopback-only);
* ``stop()`` terminates the server and every Erlang child it spawned (found
  by walking /proc from the pid we started), except ``epmd``, which is shared
  with other nodes on the machine and is left running.  It never looks at
  processes it did not start.

Only the Debian layout (/usr/lib/rabbitmq/bin/rabbitmq-server) is assumed;
pass ``server=`` to use another script.  Running as root is fine: the inner
script is run directly (the /usr/sbin wrapper would ``su rabbitmq`` and drop
our environment).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEFAULT_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
_counter = itertools.count()


def free_port(host: str = "127.0.0.1", avoid: tuple = (5672, 25672, 4369)) -> int:
    """Return a TCP port that is free right now on ``host`` (never one of ``avoid``)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    seen, to_visit = [], [pid]
    while to_visit:
        p = to_visit.pop()
        for c in _children(p):
            if c not in seen:
                seen.append(c)
                to_visit.append(c)
    return seen


def _starttime(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: identifies a process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class RabbitNode:
    """A private RabbitMQ node.  See the module docstring."""

    def __init__(self, extra_conf: list[str] | None = None, host: str = "127.0.0.1",
                 port: int | None = None, dist_port: int | None = None,
                 nodename: str | None = None, server: str = DEFAULT_SERVER,
                 start_timeout: float = 90.0, keep_dir: bool = False,
                 plugins: list[str] | None = None):
        """
        extra_conf: extra rabbitmq.conf lines (new-style sysctl format), e.g.
            ["vm_memory_high_watermark.relative = 0.0001", "loopback_users = none",
             "max_message_size = 1000"].
        host: address the AMQP listener binds to (default loopback only).
        port / dist_port: fixed ports; default: free ones picked at start.
        nodename: default warren-probe-<pid>-<n>@localhost.
        keep_dir: do not delete the temp dir on stop (for reading logs).
        plugins: plugins to enable (default none), e.g. ["rabbitmq_auth_mechanism_ssl"].
        """
        self.extra_conf = list(extra_conf or [])
        self.plugins = list(plugins or [])
        self.host = host
        self.port = port
        self.dist_port = dist_port
        self.nodename = nodename or f"warren-probe-{os.getpid()}-{next(_counter)}@localhost"
        self.server = server
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.base: str | None = None
        self.proc: subprocess.Popen | None = None
        self._known: dict[int, str | None] = {}  # pid -> start time
        self._env: dict[str, str] = {}

    # -- paths -------------------------------------------------------------
    @property
    def log_dir(self) -> str:
        return os.path.join(self.base, "log")

    @property
    def stdout_path(self) -> str:
        return os.path.join(self.base, "server.out")

    def url(self, user: str = "guest", password: str = "guest", vhost: str = "%2F") -> str:
        return f"amqp://{user}:{password}@{self.host}:{self.port}/{vhost}"

    def log_text(self) -> str:
        """Concatenated server stdout and node log (for diagnostics)."""
        parts = []
        for p in [self.stdout_path] + sorted(
                os.path.join(self.log_dir, f) for f in os.listdir(self.log_dir)):
            try:
                with open(p, errors="replace") as f:
                    parts.append(f"==> {p}\n{f.read()}")
            except OSError:
                pass
        return "\n".join(parts)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "RabbitNode":
        if self.proc is not None:
            raise RuntimeError("node already started")
        self.port = self.port or free_port(self.host)
        self.dist_port = self.dist_port or free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.base = tempfile.mkdtemp(prefix="warren-rabbit-")
        b = self.base
        for d in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(b, d))
        plugins_file = os.path.join(b, "enabled_plugins")
        with open(plugins_file, "w") as f:
            f.write("[%s].\n" % ",".join(self.plugins))
        conf_env = os.path.join(b, "rabbitmq-env.conf")
        open(conf_env, "w").close()
        conf = os.path.join(b, "rabbitmq.conf")
        self._write_conf()
        cookie = os.path.join(b, "home", ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write("WARRENPROBE" + os.urandom(8).hex().upper())
        os.chmod(cookie, 0o400)

        env = dict(os.environ)
        env.update({
            "HOME": os.path.join(b, "home"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_BASE": b,
            "RABBITMQ_MNESIA_BASE": os.path.join(b, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(b, "log"),
            "RABBITMQ_CONFIG_FILE": conf,
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(b, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": conf_env,
            "RABBITMQ_ENABLED_PLUGINS_FILE": plugins_file,
            "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(b, "plugins-expand"),
            "RABBITMQ_PID_FILE": os.path.join(b, "rabbit.pid"),
        })
        env.pop("RABBITMQ_ALLOW_INPUT", None)
        self._env = env
        self._launch()
        return self

    def _write_conf(self) -> None:
        with open(os.path.join(self.base, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.1 = {self.host}:{self.port}\n")
            f.write("log.console = false\nlog.file.level = info\n")
            for line in self.extra_conf:
                f.write(line.rstrip("\n") + "\n")

    def _launch(self) -> None:
        self._env["RABBITMQ_NODE_PORT"] = str(self.port)
        out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen([self.server], env=self._env, cwd=self.base,
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def restart(self, kill: bool = False, port: int | None = None,
                extra_conf: list[str] | None = None) -> "RabbitNode":
        """Stop the node (SIGTERM, or SIGKILL to every process of it: a crash) and start it
        again on the same directory, so it recovers what it stored; optionally on another port
        or with other rabbitmq.conf lines."""
        self.halt(kill=kill)
        if port:
            self.port = port
        if extra_conf is not None:
            self.extra_conf = list(extra_conf)
        self._write_conf()
        self._launch()
        return self

    def _track(self) -> None:
        if self.proc is not None:
            for p in [self.proc.pid] + _descendants(self.proc.pid):
                if p not in self._known and _comm(p) != "epmd":
                    self._known[p] = _starttime(p)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._track()
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}\n"
                                   + self.log_text()[-4000:])
            if time.monotonic() > deadline:
                raise TimeoutError("rabbitmq-server did not become ready\n" + self.log_text()[-4000:])
            if self._amqp_ok():
                self._track()
                return
            time.sleep(0.3)

    def _amqp_ok(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                pass
        except OSError:
            return False
        try:
            import pika
            params = pika.ConnectionParameters(self.host, self.port, socket_timeout=3,
                                               blocked_connection_timeout=3,
                                               connection_attempts=1)
            c = pika.BlockingConnection(params)
            c.channel()
            c.close()
            return True
        except ImportError:
            return self._raw_handshake_ok()
        except Exception:
            return False

    def _raw_handshake_ok(self) -> bool:
        """Fallback when pika is missing: does the server answer the header with connection.start?"""
        try:
            with socket.create_connection((self.host, self.port), timeout=3) as s:
                s.sendall(b"AMQP\x00\x00\x09\x01")
                data = s.recv(7)
                return len(data) == 7 and data[0] == 1
        except OSError:
            return False

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n <this node> ARGS`` (same cookie/HOME); return its stdout.
        Raises subprocess.CalledProcessError on failure."""
        if self.proc is None:
            raise RuntimeError("node not started")
        ctl = os.path.join(os.path.dirname(self.server), "rabbitmqctl")
        r = subprocess.run([ctl, "-n", self.nodename, *args], env=self._env, cwd=self.base,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, check=True)
        return r.stdout

    def halt(self, timeout: float = 30.0, kill: bool = False) -> None:
        """Stop the node's processes (SIGTERM and wait, or SIGKILL at once); keep its directory."""
        if self.proc is not None:
            self._track()
            if self.proc.poll() is None and not kill:
                try:
                    self.proc.send_signal(signal.SIGTERM)
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
                except ProcessLookupError:
                    pass
            # Whatever of ours is still alive (beam.smp, erl_child_setup, inet_gethost...).
            for sig in ((signal.SIGKILL,) if kill else (signal.SIGTERM, signal.SIGKILL)):
                alive = [p for p, st in self._known.items() if st is not None and _starttime(p) == st]
                if not alive:
                    break
                for p in alive:
                    try:
                        os.kill(p, sig)
                    except ProcessLookupError:
                        pass
                t = time.monotonic() + 5
                while time.monotonic() < t and any(_starttime(p) == self._known[p] for p in alive):
                    time.sleep(0.1)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self._known = {}

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (SIGTERM, then SIGKILL) and its Erlang children; remove the temp dir."""
        self.halt(timeout)
        if self.base and not self.keep_dir:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> "RabbitNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "exec"):
        p = sub.add_parser(name)
        p.add_argument("--conf", action="append", default=[], help="extra rabbitmq.conf line (repeatable)")
        p.add_argument("--port", type=int, help="AMQP port (default: a free one)")
        p.add_argument("--keep-dir", action="store_true", help="keep the temp dir (logs) on stop")
        if name == "exec":
            p.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    node = RabbitNode(extra_conf=a.conf, port=a.port, keep_dir=a.keep_dir)
    node.start()
    try:
        if a.cmd == "run":
            print(f"RabbitMQ node {node.nodename} ready on {node.host}:{node.port} (dir {node.base})",
                  flush=True)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return 0
        cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
        cmd = [c.replace("{port}", str(node.port)) for c in cmd]
        env = dict(os.environ, RABBITMQ_HOST=node.host, RABBITMQ_PORT=str(node.port),
                   RABBITMQ_NODENAME=node.nodename)
        return subprocess.call(cmd, env=env)
    finally:
        node.stop()


if __name__ == "__main__":
    sys.exit(main())
