#!/usr/bin/python3
"""What listing 10,000 queues through the management API costs a benchmark running beside it.

    /usr/bin/python3 tools/mgmt_load.py [--warren build-release/broker/warren]
        [--bench build-release/bench/warren-bench] [--queues 10000] [--runs 3] [--duration 10]

Starts Warren (Release) with its management listener, declares --queues idle queues, then runs
warren-bench's default scenario alternately without and with a client that lists every queue
(GET /api/queues, all of them, one request after another) for the whole run, and prints the
throughput of each run, the median of each kind, the difference, and how long a full listing
took, and the broker's CPU time per message (throughput on a shared machine is noisy; the CPU
the broker spends per message is not). The listing client runs in its own process.
"""
import argparse
import base64
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def lister(port, stop, times):
    while not stop.is_set():
        t = time.monotonic()
        body = get(port, "/api/queues")
        times.append((time.monotonic() - t, len(body)))


def declare(amqp_port, n):
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    import pika
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    ch = conn.channel()
    for i in range(n):
        ch.queue_declare("idle-%05d" % i)
    conn.close()


def bench(bench_path, port, duration, pid):
    """(messages consumed per second, the broker's CPU microseconds per message)."""
    out = subprocess.run([bench_path, "--port", str(port), "--scenario", "default", "--duration", str(duration),
                          "--warmup", "2", "--broker-pid", str(pid)], capture_output=True, text=True, check=True)
    text = out.stderr + out.stdout
    rate = int(re.search(r"cons\s+([\d,]+) msg/s", text).group(1).replace(",", ""))
    cpu = float(re.search(r"broker cpu \d+% ([\d.]+) us/msg", text).group(1))
    return rate, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warren", default=os.path.join(REPO, "build-release", "broker", "warren"))
    ap.add_argument("--bench", default=os.path.join(REPO, "build-release", "bench", "warren-bench"))
    ap.add_argument("--queues", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="warren-mgmt-load-")
    amqp, http = free_port(), free_port()
    proc = subprocess.Popen([a.warren, "--port", str(amqp), "--management-port", str(http), "--data-dir",
                             os.path.join(tmp, "data"), "--log-level", "warning"])
    try:
        for _ in range(100):
            try:
                get(http, "/api/overview")
                break
            except OSError:
                time.sleep(0.1)
        declare(amqp, a.queues)
        t = time.monotonic()
        body = get(http, "/api/queues")
        print("one listing of %d queues: %.0f ms, %d bytes (idle broker)"
              % (len(json.loads(body)), (time.monotonic() - t) * 1000, len(body)))
        plain, listed, times = [], [], []
        for run in range(a.runs):
            plain.append(bench(a.bench, amqp, a.duration, proc.pid))
            with multiprocessing.Manager() as mgr:
                stop, shared = mgr.Event(), mgr.list()
                p = multiprocessing.Process(target=lister, args=(http, stop, shared))
                p.start()
                try:
                    listed.append(bench(a.bench, amqp, a.duration, proc.pid))
                finally:
                    stop.set()
                    p.join()
                times += list(shared)
            print("run %d: alone %d msg/s (%.3f us/msg of broker CPU), while listing %d msg/s (%.3f us/msg)"
                  % (run + 1, plain[-1][0], plain[-1][1], listed[-1][0], listed[-1][1]))
        for i, what in ((0, "msg/s"), (1, "us/msg")):
            a_med = statistics.median(p[i] for p in plain)
            l_med = statistics.median(p[i] for p in listed)
            print("median: alone %s %s, while listing %s %s (%+.1f %%)"
                  % (a_med, what, l_med, what, (l_med / a_med - 1) * 100))
        if times:
            ms = sorted(t * 1000 for t, _ in times)
            print("%d listings while the benchmark ran: median %.0f ms, max %.0f ms"
                  % (len(ms), statistics.median(ms), ms[-1]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
