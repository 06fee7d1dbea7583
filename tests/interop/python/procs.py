"""Process bookkeeping for the interop fixtures: free ports, and children that always die.

Warren and the helper processes are started here in their own session, with PR_SET_PDEATHSIG so
they die with us even on SIGKILL, and recorded so that an atexit hook and SIGINT/SIGTERM/SIGHUP
handlers stop whatever a failing or interrupted run left behind; RabbitMQ nodes register their own
stop() through on_cleanup(). Only process groups started here are ever signalled.
"""
import atexit
import ctypes
import os
import random
import signal
import socket
import subprocess
import time

_live = {}  # pid -> Popen, process-group leaders we started and have not reaped
_cleanups = []  # stop functions of helpers that manage their own processes (RabbitNode)
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_RESERVED_PORTS = {5672, 5671, 4369, 15672, 25672}


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port free on every IPv4 address right now (never 5672 or another AMQP default).

    Chosen at random below the kernel's ephemeral range, so that the test clients' own outgoing
    connections (and concurrent runs) cannot take it between this check and the broker's bind.
    """
    low, _ = _ephemeral_range()
    lo, hi = (10000, low - 1) if low > 12000 else (low, 65535)
    for _ in range(200):
        port = random.randint(lo, hi)
        if port in _RESERVED_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free TCP port found in %d-%d" % (lo, hi))


def port_accepts(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _child_setup():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv, env=None, stdout=None, stderr=None, cwd=None):
    """Start argv as the leader of a new process group that dies with this process."""
    p = subprocess.Popen(argv, env=env, stdout=stdout or subprocess.DEVNULL,
                         stderr=stderr or subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=cwd, start_new_session=True, preexec_fn=_child_setup)
    _live[p.pid] = p
    return p


def stop(p, grace=15.0):
    """SIGTERM the process group started by spawn(), then SIGKILL what is still there."""
    if p is None or p.pid not in _live:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    # The leader may be gone while helpers in its group (erl_child_setup, inet_gethost) linger.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    _live.pop(p.pid, None)


def kill(p):
    """SIGKILL the process group started by spawn(), with no warning, and reap it."""
    if p is None or p.pid not in _live:
        return
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(timeout=30)
    _live.pop(p.pid, None)


def on_cleanup(fn):
    """Call fn (idempotent) when the run ends or is interrupted, if nobody did before."""
    _cleanups.append(fn)


def stop_all():
    for p in list(_live.values()):
        stop(p, grace=5.0)
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as e:  # keep stopping the rest
            os.write(2, b"interop: cleanup failed: %r\n" % (e,))


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _on_signal(signum, _frame):
    # Not SystemExit: unittest would record it as one test's error and carry on.
    stop_all()
    os.write(2, b"\ninterop: stopped by signal %d, brokers stopped\n" % signum)
    os._exit(128 + signum)


atexit.register(stop_all)
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)
