"""Starts a private RabbitMQ node for the benchmark: its own node name, AMQP port, distribution
port and epmd port, its data and logs in a temp dir, no plugins. It never touches nodes it did
not start, and stop() kills everything it started (the node, its epmd) by pid.

Until tools/conformance/rabbitmq.py lands this is the bench's own starter; compare.py uses it.
Run alone to try it: /usr/bin/python3 bench/rabbit_node.py (starts, prints, stops).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

RABBITMQ_SERVER_CANDIDATES = [
    # The real script: /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user.
    "/usr/lib/rabbitmq/bin/rabbitmq-server",
]


def free_port():
    """A loopback port nobody listens on now (never 5672: the kernel picks from the ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout, alive=lambda: True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)  # fine enough to time a broker's start-up
    return False


def find_server_script():
    for path in RABBITMQ_SERVER_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


def find_epmd():
    path = shutil.which("epmd")
    if path:
        return path
    for root, _dirs, files in os.walk("/usr/lib/erlang"):
        if "epmd" in files:
            return os.path.join(root, "epmd")
    return None


def _kill_group(proc, sig):
    """Signals the process group of a child we started with start_new_session (its pgid is its pid)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class RabbitNode:
    """One private node. Use as a context manager or call start() and stop()."""

    def __init__(self, boot_timeout=90.0, tmp_root=None):
        self.boot_timeout = boot_timeout  # seconds to open the AMQP port (a restart recovers queues first)
        self.tmp_root = tmp_root  # where the temp dir goes (None: the system's temp dir)
        self._env = None
        self.port = None
        self.dist_port = None
        self.epmd_port = None
        self.node_name = None
        self.beam_pid = None  # the beam.smp process: what RSS and CPU time are measured on
        self.tmp = None
        self._server = None
        self._epmd = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Starts the node: a fresh one the first time; after halt(), the same node again on its data."""
        script = find_server_script()
        epmd = find_epmd()
        if not script or not epmd:
            raise RuntimeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        if self.tmp is None:
            self._prepare(epmd)
        pid_file = os.path.join(self.tmp, "beam.pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)  # the previous run's, which _read_pid_file must not take for this one's
        log = open(os.path.join(self.tmp, "log", "stdout.log"), "a")
        try:
            self._server = subprocess.Popen([script], env=self._env, cwd=self.tmp, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
            if not wait_for_port(self.port, self.boot_timeout, lambda: self._server.poll() is None):
                raise RuntimeError(f"RabbitMQ did not open port {self.port}; see {self.tmp}/log")
            self.beam_pid = self._read_pid_file()
            self._check_beam(self.beam_pid)
        except BaseException:
            log.close()
            self.stop()
            raise
        log.close()
        return self

    def _prepare(self, epmd):
        """The node's temp dir, ports, environment and private epmd, kept across halt() and start()."""
        self.tmp = tempfile.mkdtemp(prefix="warren-bench-rabbit-", dir=self.tmp_root)
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node_name = f"warren-bench-{os.getpid()}-{self.port}@localhost"
        for d in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.tmp, d))
        with open(os.path.join(self.tmp, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        for name in ("rabbitmq.conf", "rabbitmq-env.conf"):
            open(os.path.join(self.tmp, name), "w").close()

        env = dict(os.environ)
        env.update({
            "HOME": os.path.join(self.tmp, "home"),  # a private Erlang cookie
            "ERL_EPMD_PORT": str(self.epmd_port),    # our own epmd, not the system's
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.tmp, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.tmp, "log"),
            "RABBITMQ_PID_FILE": os.path.join(self.tmp, "beam.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.tmp, "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.tmp, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.tmp, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.tmp, "rabbitmq-env.conf"),
        })
        env.pop("RABBITMQ_ALLOW_INPUT", None)
        self._env = env
        with open(os.path.join(self.tmp, "log", "stdout.log"), "w") as log:
            self._epmd = subprocess.Popen([epmd, "-port", str(self.epmd_port)], stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=log, start_new_session=True)
        if not wait_for_port(self.epmd_port, 10, lambda: self._epmd.poll() is None):
            self.stop()
            raise RuntimeError("private epmd did not start")

    def _read_pid_file(self):
        path = os.path.join(self.tmp, "beam.pid")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError("RabbitMQ wrote no pid file")

    def _check_beam(self, pid):
        """The pid file must name our node's Erlang VM: beam.smp, in the session we started (so that
        the bench charges the right process with the broker's memory and CPU time)."""
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/stat") as f:
                session = int(f.read().rsplit(")", 1)[1].split()[3])  # field 6
        except (OSError, ValueError, IndexError):
            raise RuntimeError(f"RabbitMQ's pid file names {pid}, which is not running")
        if comm != "beam.smp" or session != self._server.pid:
            raise RuntimeError(f"RabbitMQ's pid file names {pid} ({comm}, session {session}), "
                               f"not the beam.smp of the node started as {self._server.pid}")

    def halt(self, sig=signal.SIGTERM, timeout=30.0):
        """Stops the node and keeps its data (and epmd) for start(): SIGTERM is RabbitMQ's graceful
        stop, SIGKILL a crash. Whatever is left after `timeout` seconds is killed. Returns the
        seconds the node took to exit."""
        started = time.monotonic()
        if self._server is not None:
            if self._server.poll() is None:
                _kill_group(self._server, sig)
                try:
                    self._server.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            _kill_group(self._server, signal.SIGKILL)  # beam and its port programs share the group
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._server = None
        if self.beam_pid is not None:
            deadline = time.monotonic() + 10
            while _pid_alive(self.beam_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(self.beam_pid):
                os.kill(self.beam_pid, signal.SIGKILL)
            self.beam_pid = None
        return time.monotonic() - started

    def stop(self):
        """SIGTERM (RabbitMQ's graceful stop), then SIGKILL whatever is left; then our epmd and temp dir."""
        self.halt(signal.SIGTERM, 30)
        if self._epmd is not None:
            _kill_group(self._epmd, signal.SIGKILL)
            self._epmd.wait(timeout=10)
            self._epmd = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


if __name__ == "__main__":
    started = time.monotonic()
    with RabbitNode() as node:
        print(f"node {node.node_name} on 127.0.0.1:{node.port}, beam pid {node.beam_pid}, "
              f"booted in {time.monotonic() - started:.1f} s")
    print("stopped")
