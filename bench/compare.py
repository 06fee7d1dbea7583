#!/usr/bin/python3
"""Runs every bench scenario against Warren and RabbitMQ in the same run, on this machine.

Builds Release Warren, warren-bench and warren-bench-go (incrementally), installs rabbitmq-server
from Debian's packages if it is missing, starts both brokers on free loopback ports, and runs each
scenario under each load mode, alternating Warren / RabbitMQ (--repeat times each; the first
broker alternates too). Load modes: "pipelined" (warren-bench batching many messages per send),
"client" (warren-bench with a send per publish and per ack, as client libraries do) and "go" (the
amqp091-go generator, for the scenarios it has). It prints a Markdown table of medians, with each
broker's own CPU time per message, and saves everything to bench/results/<time>.json. Memory
scenarios get a freshly started broker per run so that earlier runs do not inflate RSS. Every
broker it starts is stopped on exit, including Ctrl-C and SIGTERM.

Durable scenarios (durable-*) run against four variants: Warren with fsync_confirms true and with
it false (each its own process, data directory in its temp dir), and RabbitMQ's durable classic
queue and its quorum queue (one node); they get a table of their own with the two ratios the goals
name, and the disk's own fdatasync latency measured beside them. Stream scenarios (stream-*) run
against three: both Warren variants (RabbitMQ's streams never fsync before confirming, so no-fsync
is the like-for-like one) and RabbitMQ's stream queue; "stream-backlog-read" first fills a stream
with --backlog-messages 16 B messages (stream-backlog-fill, kept), then times 3 consumers each
reading it from the start to its end. "recovery" fills a durable queue
with --recovery-messages persistent 1 KiB messages, stops the broker (SIGTERM, then SIGKILL),
restarts it and times the start-up, and reads the broker's RSS full and after restart.

--prefault holds a VM's memory for the run: it stops the guest's free page reporting (restored at
exit) and touches the free memory once, since a host that backs each page on its first use, and
takes freed pages back, skews every figure (bench/first_touch.py, bench/README.md).

usage: /usr/bin/python3 bench/compare.py [--only warren|rabbitmq] [--scenarios a,b,...]
           [--modes pipelined,client,go] [--threads 1] [--repeat 3] [--duration 10] [--warmup 2]
           [--build-dir build-release] [--no-build] [--tmp-dir DIR] [--recovery-messages N] [--prefault]
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
from rabbit_node import RabbitNode, find_server_script, free_port, wait_for_port  # noqa: E402
import first_touch  # noqa: E402

SCENARIOS = ["default", "autoack", "prefetch100", "body-1k", "body-64k", "body-1m", "fanout3", "queues10",
             "confirm1000", "latency-1k", "latency-10k", "latency-50k", "latency-100k", "many-connections",
             "memory-1m-queued", "memory-1000-idle", "durable-1k", "durable-1k-q4", "stream-publish-16b",
             "stream-publish-1k", "stream-read-3", "stream-backlog-read", "recovery"]
BROKERS = ["warren", "rabbitmq"]
MODES = ["pipelined", "client", "go"]
RECOVERY = "recovery"

# What a result's "broker" names: a broker process (started once and reused) and the warren-bench
# options that pick its queue type. Durable scenarios run against all four, the others against
# "warren" and "rabbitmq". Warren's processes both store in a data directory in their temp dir;
# "warren" keeps the default fsync_confirms (true).
VARIANTS = {
    "warren": {"family": "warren", "process": "warren", "bench_args": []},
    "warren-nofsync": {"family": "warren", "process": "warren-nofsync", "bench_args": []},
    "rabbitmq": {"family": "rabbitmq", "process": "rabbitmq", "bench_args": []},  # a durable classic queue
    "rabbitmq-quorum": {"family": "rabbitmq", "process": "rabbitmq", "bench_args": ["--queue-type", "quorum"]},
}
DURABLE_VARIANTS = ["warren", "warren-nofsync", "rabbitmq", "rabbitmq-quorum"]
STREAM_VARIANTS = ["warren", "warren-nofsync", "rabbitmq"]  # "rabbitmq": its stream queue (the scenario's type)
BACKLOG = "stream-backlog-read"


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class WarrenBroker:
    """build-release/broker/warren --port N --bind 127.0.0.1, in its own temp dir and process group, with its
    data directory there and `config` (a dict) in its configuration file. config None starts the
    executable with --port and --bind only (the reflector takes nothing else). halt() stops it and
    keeps the data for the next start()."""

    def __init__(self, exe, config, tmp_root=None):
        self.exe = exe
        self.config = config
        self.tmp_root = tmp_root
        self.proc = None
        self.port = None
        self.tmp = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def data_dir(self):
        return os.path.join(self.tmp, "data")

    @property
    def log_path(self):
        return os.path.join(self.tmp, "warren.log")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        cmd = [self.exe]
        if self.tmp is None:
            self.tmp = tempfile.mkdtemp(prefix="warren-bench-warren-", dir=self.tmp_root)
            self.port = free_port()
            if self.config is not None:
                with open(os.path.join(self.tmp, "warren.json"), "w") as f:
                    json.dump(dict(self.config, data_dir=self.data_dir), f)
        if self.config is not None:
            cmd += ["--config", os.path.join(self.tmp, "warren.json")]
        cmd += ["--port", str(self.port), "--bind", "127.0.0.1"]
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
        try:
            listening = wait_for_port(self.port, 600, self.alive)
        except BaseException:
            self.stop()
            raise
        if not listening:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"warren did not listen on port {self.port}:\n{tail}")
        return self

    def log_tail(self, lines=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def halt(self, sig=signal.SIGTERM, timeout=10):
        """Stops the process (SIGKILL after `timeout` seconds) and keeps its temp dir; returns the seconds it took."""
        started = time.monotonic()
        if self.proc is not None:
            for s, wait in ((sig, timeout), (signal.SIGKILL, 10)):
                if self.proc.poll() is not None:
                    break
                try:
                    os.killpg(self.proc.pid, s)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    pass
            self.proc = None
        return time.monotonic() - started

    def stop(self):
        self.halt(signal.SIGTERM, 10)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class Rabbit:
    """A private RabbitMQ node (bench/rabbit_node.py); RSS is read from its beam.smp."""

    def __init__(self, tmp_root=None, boot_timeout=90.0):
        self.node = RabbitNode(boot_timeout=boot_timeout, tmp_root=tmp_root)
        self.started = False

    @property
    def port(self):
        return self.node.port

    @property
    def pid(self):
        return self.node.beam_pid

    @property
    def tmp(self):
        return self.node.tmp

    def alive(self):
        return self.started and self.node._server is not None and self.node._server.poll() is None

    def start(self):
        self.node.start()
        self.started = True
        return self

    def halt(self, sig=signal.SIGTERM, timeout=30):
        return self.node.halt(sig, timeout)

    def stop(self):
        if self.started:
            self.node.stop()
            self.started = False


def json_object(text):
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object is needed")
    return value


def is_reflector(args):
    return bool(args.warren_exe) and "reflector" in os.path.basename(args.warren_exe)


def warren_config(args, fsync_confirms):
    """The configuration a Warren variant starts with; None for the reflector, which takes none."""
    if is_reflector(args):
        return None
    return dict(args.warren_config, fsync_confirms=fsync_confirms)


def run(cmd, **kw):
    log("+ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def build(build_dir, targets):
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        run(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"])
    run(["cmake", "--build", build_dir, "-j2", "--target", *targets])


def ensure_rabbitmq():
    """apt-get install rabbitmq-server if missing, without letting the package start its own node."""
    if find_server_script():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    policy = "/usr/sbin/policy-rc.d"
    own_policy = not os.path.exists(policy)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        if own_policy:  # Debian's way to keep maintainer scripts from starting services
            subprocess.run(sudo + ["sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' > {policy} && chmod +x {policy}"],
                           check=True)
        run(sudo + ["apt-get", "update"], env=env)
        run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", "rabbitmq-server"], env=env)
    finally:
        if own_policy:
            subprocess.run(sudo + ["rm", "-f", policy])
    if not find_server_script():
        raise RuntimeError("rabbitmq-server is still missing after apt-get install")


def rabbitmq_version():
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"], capture_output=True,
                              text=True).stdout.strip() or None
    except OSError:
        return None


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or None
    except OSError:
        return None


def machine():
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "loadavg": os.getloadavg()}


def is_memory(scenario):
    return scenario.startswith("memory-")


def is_durable(scenario):
    return scenario.startswith("durable-")


def is_stream(scenario):
    return scenario.startswith("stream-")


def variants_for(scenario, families, durable_variants):
    """The broker variants a scenario runs against, in the order of the first run."""
    if is_durable(scenario):
        names = durable_variants
    elif is_stream(scenario):
        names = [v for v in durable_variants if v in STREAM_VARIANTS]
    else:
        names = BROKERS
    return [n for n in names if VARIANTS[n]["family"] in families]


def modes_for(scenario, modes, go_scenarios):
    """The load modes a scenario runs in: memory scenarios measure RSS, not traffic, so only pipelined;
    the Go generator has a few scenarios only."""
    out = []
    for mode in modes:
        if mode == "go" and scenario not in go_scenarios:
            continue
        if mode != "pipelined" and is_memory(scenario):
            continue
        out.append(mode)
    return out


def go_scenarios(bench_go):
    try:
        listing = subprocess.run([bench_go, "--list"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def run_bench(exes, broker, scenario, mode, args, extra=(), timeout=None):
    memory = is_memory(scenario) or scenario in ("durable-fill", "stream-backlog-fill", BACKLOG)
    exe = exes["go"] if mode == "go" else exes["bench"]
    cmd = [exe, "--host", "127.0.0.1", "--port", str(broker.port), "--scenario", scenario, "--json",
           "--broker-pid", str(broker.pid)]
    if mode != "go":
        cmd += ["--mode", mode, "--threads", str(args.threads)]
    if not memory:
        cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    cmd += list(extra)
    timeout = timeout or (900 if memory else args.duration + args.warmup + 180)
    started = time.time()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"scenario": scenario, "ok": False, "error": f"{os.path.basename(exe)} timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"scenario": scenario, "ok": False,
                "error": f"{os.path.basename(exe)} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    result = json.loads(lines[-1])
    result["wall_seconds"] = time.time() - started
    for line in proc.stderr.splitlines():
        log("  " + line)
    return result


def run_backlog(exes, broker, mode, args, extra=()):
    """stream-backlog-read: fills a stream (kept on the broker), then times its reading from the
    start; the read deletes it. One result: the read's, with the fill's rate."""
    n = str(args.backlog_messages)
    fill = run_bench(exes, broker, "stream-backlog-fill", mode, args, extra=["--messages", n, *extra])
    if not fill.get("ok") or not fill.get("queues"):
        return dict(fill, scenario=BACKLOG, ok=False, error=f"the fill failed: {fill.get('error')}")
    read = run_bench(exes, broker, BACKLOG, mode, args, extra=["--queue", fill["queues"][0], "--messages", n, *extra])
    read["fill_publish_rate"] = fill.get("publish_rate")
    read["fill_broker_cpu_us_per_msg"] = fill.get("broker_cpu_us_per_msg")
    return read


# The numbers compared per scenario: (label, how to get it from a result, True if higher is better).
def metrics_for(scenario):
    if is_memory(scenario):
        return [("broker RSS MiB", lambda r: r["rss_kib"] / 1024 if r.get("rss_kib") else None, False)]
    if scenario.startswith("latency-"):
        def pct(key):
            return lambda r: r["latency_us"][key] if r.get("latency_us") else None
        return [("consumed msg/s", lambda r: r["consume_rate"], True),
                ("latency p50 us", pct("p50"), False),
                ("latency p99 us", pct("p99"), False),
                ("latency p99.9 us", pct("p999"), False)]
    if scenario.startswith("stream-publish-"):  # no consumer: the confirmed publish rate
        return [("published msg/s", lambda r: r["publish_rate"], True)]
    label = "deliveries/s" if scenario in ("fanout3", "stream-read-3", BACKLOG) else "consumed msg/s"
    metrics = [(label, lambda r: r["consume_rate"], True)]
    if scenario in ("queues10", "many-connections"):
        # Fairness: the slowest queue's delivery rate over the mean rate of all queues.
        metrics.append(("slowest queue / mean",
                        lambda r: r["flow_rate_min"] / r["flow_rate_mean"] if r.get("flow_rate_mean") else None, True))
    return metrics


def broker_cpu(r):
    """The broker's own CPU time (user + system, from /proc) per message consumed, in microseconds."""
    return r.get("broker_cpu_us_per_msg")


def median_of(results, broker, scenario, mode, get):
    values = [get(r) for r in results
              if r["broker"] == broker and r["scenario"] == scenario and r.get("mode") == mode and r.get("ok")]
    values = [v for v in values if v is not None]
    return (statistics.median(values) if values else None), values


def ratio(warren, rabbitmq, higher_better):
    if not warren or not rabbitmq:
        return None
    return (warren / rabbitmq) if higher_better else (rabbitmq / warren)


def summarize(results, plan, brokers):
    """One row per (scenario, mode, metric); the first row of each (scenario, mode) also carries
    both brokers' CPU time per message and RabbitMQ's over Warren's."""
    rows = []
    for scenario, modes in plan:
        for mode in modes:
            for i, (label, get, higher_better) in enumerate(metrics_for(scenario)):
                row = {"scenario": scenario, "mode": mode, "metric": label, "higher_is_better": higher_better}
                for b in brokers:
                    row[b], row[b + "_runs"] = median_of(results, b, scenario, mode, get)
                row["advantage"] = ratio(row.get("warren"), row.get("rabbitmq"), higher_better)
                if i == 0:
                    cpu = {}
                    for b in brokers:
                        cpu[b], cpu[b + "_runs"] = median_of(results, b, scenario, mode, broker_cpu)
                    cpu["rabbitmq_over_warren"] = ratio(cpu.get("warren"), cpu.get("rabbitmq"), False)
                    row["broker_cpu_us_per_msg"] = cpu
                rows.append(row)
    return rows


def fmt_value(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(v):
    return f"{v:.2f}x" if v else "—"


def markdown(rows, brokers):
    lines = ["| Scenario | Load | Metric | Warren (median) | RabbitMQ (median) | Warren advantage "
             "| Broker CPU µs/msg: Warren | RabbitMQ | RabbitMQ / Warren |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        cpu = row.get("broker_cpu_us_per_msg")
        cpu_cells = (f"{fmt_value(cpu.get('warren'))} | {fmt_value(cpu.get('rabbitmq'))} | "
                     f"{fmt_ratio(cpu.get('rabbitmq_over_warren'))}") if cpu else " | | "
        lines.append(f"| {row['scenario']} | {row['mode']} | {row['metric']} | {fmt_value(row.get('warren'))} | "
                     f"{fmt_value(row.get('rabbitmq'))} | {fmt_ratio(row.get('advantage'))} | {cpu_cells} |")
    return "\n".join(lines)


# ---- stream scenarios: Warren with and without fsync beside RabbitMQ's stream queue

def summarize_streams(results, plan, variants):
    rows = []
    for scenario, modes in plan:
        if not is_stream(scenario):
            continue
        label, get, _ = metrics_for(scenario)[0]
        for mode in modes:
            row = {"scenario": scenario, "mode": mode, "metric": label}
            for v in variants:
                row[v], row[v + "_runs"] = median_of(results, v, scenario, mode, get)
                row[v + "_cpu"], row[v + "_cpu_runs"] = median_of(results, v, scenario, mode, broker_cpu)
            row["fsync_over_rabbitmq"] = ratio(row.get("warren"), row.get("rabbitmq"), True)
            row["nofsync_over_rabbitmq"] = ratio(row.get("warren-nofsync"), row.get("rabbitmq"), True)
            rows.append(row)
    return rows


def markdown_streams(rows):
    lines = ["| Scenario | Load | Metric | Warren fsync | Warren no-fsync | RabbitMQ stream | Warren fsync / RabbitMQ "
             "| Warren no-fsync / RabbitMQ | CPU µs/msg: Warren fsync | Warren no-fsync | RabbitMQ |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['mode']} | {r['metric']} | {fmt_value(r.get('warren'))} | "
                     f"{fmt_value(r.get('warren-nofsync'))} | {fmt_value(r.get('rabbitmq'))} | "
                     f"{fmt_ratio(r.get('fsync_over_rabbitmq'))} | {fmt_ratio(r.get('nofsync_over_rabbitmq'))} | "
                     f"{fmt_value(r.get('warren_cpu'))} | {fmt_value(r.get('warren-nofsync_cpu'))} | "
                     f"{fmt_value(r.get('rabbitmq_cpu'))} |")
    return "\n".join(lines)


# ---- durable scenarios: four variants, the two ratios of the goals, the disk's own fdatasync latency

def summarize_durable(results, plan, variants):
    rows = []
    for scenario, modes in plan:
        if not is_durable(scenario):
            continue
        for mode in modes:
            row = {"scenario": scenario, "mode": mode}
            for v in variants:
                row[v], row[v + "_runs"] = median_of(results, v, scenario, mode, lambda r: r["consume_rate"])
                row[v + "_cpu"], row[v + "_cpu_runs"] = median_of(results, v, scenario, mode, broker_cpu)
            row["warren_over_quorum"] = ratio(row.get("warren"), row.get("rabbitmq-quorum"), True)
            row["nofsync_over_classic"] = ratio(row.get("warren-nofsync"), row.get("rabbitmq"), True)
            rows.append(row)
    return rows


def markdown_durable(rows):
    lines = ["| Scenario | Load | Warren fsync msg/s | RabbitMQ quorum msg/s | Warren fsync / quorum "
             "| Warren no-fsync msg/s | RabbitMQ classic msg/s | Warren no-fsync / classic "
             "| CPU µs/msg: Warren fsync | Warren no-fsync | RabbitMQ quorum | RabbitMQ classic |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['mode']} | {fmt_value(r.get('warren'))} | "
                     f"{fmt_value(r.get('rabbitmq-quorum'))} | {fmt_ratio(r.get('warren_over_quorum'))} | "
                     f"{fmt_value(r.get('warren-nofsync'))} | {fmt_value(r.get('rabbitmq'))} | "
                     f"{fmt_ratio(r.get('nofsync_over_classic'))} | {fmt_value(r.get('warren_cpu'))} | "
                     f"{fmt_value(r.get('warren-nofsync_cpu'))} | {fmt_value(r.get('rabbitmq-quorum_cpu'))} | "
                     f"{fmt_value(r.get('rabbitmq_cpu'))} |")
    return "\n".join(lines)


def file_system_of(path):
    try:
        out = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,TARGET", "-T", path], capture_output=True,
                             text=True).stdout.split()
        return {"source": out[0], "fstype": out[1], "mount": out[2]} if len(out) == 3 else None
    except OSError:
        return None


def fdatasync_probe(root, count=200):
    """The disk's own fdatasync latency where the brokers keep their data: 4 KiB appended to a file,
    then fdatasync, `count` times (as warren-store-bench does). Microseconds."""
    root = root or tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix="warren-bench-fsync-", dir=root)
    try:
        fd = os.open(os.path.join(d, "probe"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        page = b"p" * 4096
        us = []
        try:
            for i in range(count):
                os.pwrite(fd, page, i * len(page))
                t = time.perf_counter()
                os.fdatasync(fd)
                us.append((time.perf_counter() - t) * 1e6)
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    us.sort()

    def pct(p):
        return us[min(len(us) - 1, int(p * len(us)))]
    return {"samples": count, "p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "max_us": us[-1],
            "mean_us": statistics.mean(us), "file_system": file_system_of(root)}


def fmt_probe(p):
    fs = p.get("file_system") or {}
    where = f" on {fs.get('source')} ({fs.get('fstype')})" if fs else ""
    return (f"fdatasync after a 4 KiB append{where}: p50 {p['p50_us']:,.0f} µs, p90 {p['p90_us']:,.0f} µs, "
            f"p99 {p['p99_us']:,.0f} µs, max {p['max_us']:,.0f} µs ({p['samples']} syncs)")


# ---- recovery: fill a durable queue, stop the broker, restart it, time it, read its RSS

def read_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def disk_usage_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def evict_page_cache(path):
    """Drops the page cache of our own files only (fsync first, then POSIX_FADV_DONTNEED), so that a
    restart reads them from the disk, without touching what other processes on the machine cache."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass
            finally:
                os.close(fd)


def queue_length(port, queue):
    """message_count of a passive queue.declare (pika, Debian's python3-pika), or None."""
    try:
        import pika
        params = pika.ConnectionParameters("127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest"),
                                           socket_timeout=60, blocked_connection_timeout=60, heartbeat=0)
        conn = pika.BlockingConnection(params)
        try:
            return conn.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            conn.close()
    except Exception as e:  # the count is a check; a failure is reported, not fatal
        log(f"  passive declare of {queue} failed: {e!r}")
        return None


WARREN_RECOVERY_LINE = re.compile(r"storage: vhost '([^']*)': (\d+) messages back in their queues from (\d+) "
                                  r"records in (\d+) ms[^\n]*")  # the rest: how many segments came from their index
WARREN_READY_LINE = re.compile(r"storage: (.*) ready in (\d+) ms")


def warren_log_since(broker, offset):
    try:
        with open(broker.log_path) as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def recovery_restarts(family, args):
    """(signal, evict the page cache first) for each restart, in order."""
    restarts = [(signal.SIGTERM, False), (signal.SIGKILL, False)]
    if family == "warren":
        restarts.append((signal.SIGKILL, True))
    return restarts


def run_recovery(family, exes, warren_exe, args):
    """Fills a durable queue on a fresh broker, then stops and restarts it for each of
    recovery_restarts(), timing each restart and reading the broker's RSS. One result dict."""
    n = args.recovery_messages
    cap = args.recovery_timeout if family == "warren" else args.recovery_rabbitmq_timeout
    free = shutil.disk_usage(args.tmp_dir or tempfile.gettempdir()).free
    needed = n * 1300 + 2 * 1024**3
    out = {"scenario": RECOVERY, "broker": family, "mode": "pipelined", "messages": n, "ok": False,
           "disk_free_before": free}
    if free < needed:
        out["error"] = f"{free / 1e9:.1f} GB free, {needed / 1e9:.1f} GB needed"
        return out
    if family == "warren":
        broker = WarrenBroker(warren_exe, warren_config(args, fsync_confirms=True), tmp_root=args.tmp_dir)
        extra = []
    else:
        broker = Rabbit(tmp_root=args.tmp_dir, boot_timeout=cap)
        extra = list(args.recovery_rabbitmq_args.split()) if args.recovery_rabbitmq_args else []
    try:
        broker.start()
        out["rss_idle_kib"] = read_rss_kib(broker.pid)
        log(f"[{RECOVERY}] {family}: filling a durable queue with {n:,} persistent 1 KiB messages (cap {cap} s)")
        fill = run_bench(exes, broker, "durable-fill", "pipelined", args,
                         extra=["--messages", str(n), "--timeout", str(cap), *extra], timeout=cap + 300)
        out["fill"] = fill
        queues = fill.get("queues") or []
        if not queues:
            out["error"] = f"the fill failed: {fill.get('error')}"
            return out
        queue = queues[0]
        out["rss_full_kib"] = read_rss_kib(broker.pid)
        out["queued_before_stop"] = queue_length(broker.port, queue)
        out["disk_bytes"] = disk_usage_bytes(broker.tmp)
        log(f"  {out['queued_before_stop']} queued, RSS {(out['rss_full_kib'] or 0) / 1024:.0f} MiB, "
            f"{out['disk_bytes'] / 1e9:.2f} GB on disk")
        out["restarts"] = []
        for sig, cold in recovery_restarts(family, args):
            r = {"signal": signal.Signals(sig).name, "page_cache": "cold" if cold else "warm"}
            out["restarts"].append(r)
            r["stop_seconds"] = broker.halt(sig, cap)
            if cold:
                evict_page_cache(broker.tmp)
            offset = os.path.getsize(broker.log_path) if family == "warren" else 0
            started = time.monotonic()
            try:
                broker.start()
            except RuntimeError as e:
                r["error"] = str(e)
                out["error"] = f"restart after {r['signal']} failed: {e}"
                return out
            r["start_seconds"] = time.monotonic() - started  # process start to the first accepted connection
            r["rss_at_start_kib"] = read_rss_kib(broker.pid)
            r["queued"] = queue_length(broker.port, queue)
            time.sleep(2)
            r["rss_kib"] = read_rss_kib(broker.pid)
            if family == "warren":
                text = warren_log_since(broker, offset)
                m = WARREN_RECOVERY_LINE.search(text)
                if m:
                    r["log_messages"], r["log_records"], r["log_ms"] = int(m[2]), int(m[3]), int(m[4])
                    r["log_line"] = m[0]
                m = WARREN_READY_LINE.search(text)
                if m:
                    r["log_ready_ms"] = int(m[2])
            queued = r["queued"] or 0
            r["messages_per_second"] = queued / r["start_seconds"] if r["start_seconds"] > 0 else None
            log(f"  after {r['signal']} ({r['page_cache']} page cache): stopped in {r['stop_seconds']:.1f} s, "
                f"accepting after {r['start_seconds']:.2f} s, {r['queued']} queued, RSS "
                f"{(r['rss_kib'] or 0) / 1024:.0f} MiB" + (f"; log: {r['log_line']}" if r.get("log_line") else ""))
        out["ok"] = all(r.get("queued") == out["queued_before_stop"] for r in out["restarts"])
        if not out["ok"]:
            out["error"] = "a restart did not bring every message back"
        return out
    finally:
        broker.stop()


def markdown_recovery(results):
    def mib(kib):
        return f"{kib / 1024:,.0f}" if kib else "—"
    lines = ["| Broker | Messages queued | Fill msg/s | Data on disk GB | RSS full MiB | Stop | Page cache "
             "| Stopped in s | Restart to accepting s | Recovery msg/s | Broker's log | Queued after | "
             "RSS after restart MiB |",
             "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|---:|---:|"]
    for res in results:
        fill = res.get("fill") or {}
        rate = fill["published"] / fill["seconds"] if fill.get("seconds") else None
        head = (f"| {res['broker']} | {fmt_value(res.get('queued_before_stop'))} | {fmt_value(rate)} | "
                f"{res.get('disk_bytes', 0) / 1e9:.2f} | {mib(res.get('rss_full_kib'))} |")
        restarts = res.get("restarts") or [{}]
        for i, r in enumerate(restarts):
            logged = f"{r['log_messages']:,} back in {r['log_ms']:,} ms" if "log_ms" in r else "—"
            lines.append((head if i == 0 else "| | | | | |") +
                         f" {r.get('signal', '—')} | {r.get('page_cache', '—')} | "
                         f"{fmt_value(r.get('stop_seconds'))} | {fmt_value(r.get('start_seconds'))} | "
                         f"{fmt_value(r.get('messages_per_second'))} | {logged} | {fmt_value(r.get('queued'))} | "
                         f"{mib(r.get('rss_kib'))} |")
        if res.get("error"):
            lines.append(f"| {res['broker']}: {res['error']} |||||||||||||")
    return "\n".join(lines)



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=BROKERS, help="run against one broker only (both variants of it in the "
                    "durable scenarios)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all)")
    ap.add_argument("--modes", default=",".join(MODES),
                    help="load modes, comma-separated: pipelined, client (warren-bench) and go (warren-bench-go); "
                    "memory scenarios run pipelined only, go has a few scenarios (default: all three)")
    ap.add_argument("--threads", type=int, default=1,
                    help="warren-bench's threads, each with its own queues (only scenarios with several queues use "
                    "more than one)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10, help="seconds measured per throughput run")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--no-build", action="store_true", help="use the executables already in --build-dir")
    ap.add_argument("--warren-exe", help="the broker run as \"warren\" (default: <build-dir>/broker/warren), "
                    "e.g. another build for an A/B run; <build-dir>/bench/warren-bench-reflector measures the "
                    "load generator's own ceiling")
    ap.add_argument("--warren-config", type=json_object, default={},
                    help="a JSON object added to Warren's configuration file, e.g. '{\"input_batching_us\": 0}' "
                    "(fsync_confirms and data_dir are set per variant)")
    ap.add_argument("--variants", default=",".join(DURABLE_VARIANTS),
                    help="the broker variants of the durable scenarios (default: all four); the stream scenarios "
                    "run against those of them that are not rabbitmq-quorum")
    ap.add_argument("--tmp-dir", help="where the brokers' temp dirs (and data) go, and where fdatasync is "
                    "measured (default: the system's temp dir)")
    ap.add_argument("--recovery-messages", type=int, default=1_000_000,
                    help="messages queued before the restarts of the recovery scenario (10000000 in the full run)")
    ap.add_argument("--recovery-timeout", type=float, default=1800,
                    help="seconds Warren gets to fill the queue, stop and start")
    ap.add_argument("--recovery-rabbitmq-timeout", type=float, default=1800,
                    help="seconds RabbitMQ gets to fill the queue (then it stops short, and says so), stop and start")
    ap.add_argument("--recovery-rabbitmq-args", default="",
                    help="warren-bench options for RabbitMQ's queue in the recovery scenario, e.g. "
                    "\"--queue-arg x-queue-mode=lazy\" or \"--queue-type quorum\"")
    ap.add_argument("--backlog-messages", type=int, default=1_000_000,
                    help="messages in the stream that stream-backlog-read reads (default 1,000,000)")
    ap.add_argument("--results-dir", default=os.path.join(BENCH_DIR, "results"))
    ap.add_argument("--prefault", action="store_true",
                    help="hold the VM's memory for the run: stop the guest's free page reporting (as root; restored "
                         "at exit) and touch the free memory once (all but 2 GiB); for VMs whose host backs each page "
                         "on its first use (see bench/first_touch.py)")
    args = ap.parse_args()

    families = [args.only] if args.only else BROKERS
    scenarios = [s for s in args.scenarios.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        sys.exit(f"compare: --modes takes {', '.join(MODES)}")
    durable_variants = [v for v in args.variants.split(",") if v]
    if any(v not in DURABLE_VARIANTS for v in durable_variants):
        sys.exit(f"compare: --variants takes {', '.join(DURABLE_VARIANTS)}")
    exes = {"bench": os.path.join(args.build_dir, "bench", "warren-bench"),
            "go": os.path.join(args.build_dir, "bench", "warren-bench-go")}
    warren_exe = os.path.abspath(args.warren_exe or os.path.join(args.build_dir, "broker", "warren"))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    traffic = [s for s in scenarios if s != RECOVERY]
    generators = (["warren-bench"] if (traffic and set(modes) - {"go"}) or RECOVERY in scenarios else []) + \
        (["warren-bench-go"] if traffic and "go" in modes else [])
    if not args.no_build:
        build(args.build_dir, generators + (["warren"] if "warren" in families and not args.warren_exe else []))
    if "rabbitmq" in families:
        ensure_rabbitmq()
    needed = [exes["go" if g == "warren-bench-go" else "bench"] for g in generators]
    for exe in needed + ([warren_exe] if "warren" in families else []):
        if not os.access(exe, os.X_OK):
            sys.exit(f"compare: {exe} is missing (build it, or drop --no-build)")
    go_list = go_scenarios(exes["go"]) if "warren-bench-go" in generators else set()
    plan = [(s, modes_for(s, modes, go_list)) for s in scenarios if s != RECOVERY]
    plan = [(s, m) for s, m in plan if m]
    # 1,000 connections per side and more: brokers and generators inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    if args.prefault:
        held = first_touch.hold(log=log)
        atexit.register(first_touch.release, held, log)
    touch_gbps = first_touch.probe()
    if touch_gbps < 1.0:
        log(f"compare: WARNING: new memory is touched at {touch_gbps:.2f} GB/s: this machine's host backs pages on "
            f"their first use, which skews every figure; run once with --prefault")
    report = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "commit": git_commit(),
              "rabbitmq_version": rabbitmq_version(), "machine": machine(),
              "args": {k: v for k, v in vars(args).items()}, "runs": [], "fdatasync": [], "recovery": [],
              "first_touch_gbps": touch_gbps}
    log(f"compare: {sum(len(m) for _, m in plan)} scenario/mode pairs x {args.repeat} runs x {families}"
        f"{' + recovery' if RECOVERY in scenarios else ''}; load average {report['machine']['loadavg']}")

    make = {"warren": lambda: WarrenBroker(warren_exe, warren_config(args, True), args.tmp_dir),
            "warren-nofsync": lambda: WarrenBroker(warren_exe, warren_config(args, False), args.tmp_dir),
            "rabbitmq": lambda: Rabbit(args.tmp_dir)}
    running = {}  # broker process name -> started broker, reused by the throughput scenarios
    status = 0
    durable_plan = [s for s, _ in plan if is_durable(s)]
    try:
        for scenario, scenario_modes in plan:
            fresh = is_memory(scenario)
            variants = variants_for(scenario, families, durable_variants)
            if durable_plan and scenario == durable_plan[0]:
                probe = fdatasync_probe(args.tmp_dir)
                report["fdatasync"].append(dict(probe, when="before the durable scenarios"))
                log(f"compare: {fmt_probe(probe)}")
            # Each mode's runs rotate which broker goes first, and the modes start on different brokers.
            schedule = [(rep, j, mode) for rep in range(args.repeat) for j, mode in enumerate(scenario_modes)]
            for rep, j, mode in schedule:
                k = (rep + j) % len(variants) if variants else 0
                for name in variants[k:] + variants[:k]:
                    process = VARIANTS[name]["process"]
                    broker = running.get(process)
                    if fresh and broker is not None:
                        broker.stop()
                        broker = None
                    if broker is not None and not broker.alive():
                        log(f"compare: {process} is no longer running; restarting it")
                        broker.stop()
                        broker = None
                    log(f"[{scenario} {mode} {rep + 1}/{args.repeat}] {name}")
                    if broker is None:
                        try:
                            broker = make[process]().start()
                            running[process] = broker
                        except RuntimeError as e:
                            broker = None
                            result = {"scenario": scenario, "ok": False, "error": f"{process} did not start: {e}"}
                    if broker is not None and scenario == BACKLOG:
                        result = run_backlog(exes, broker, mode, args, VARIANTS[name]["bench_args"])
                    elif broker is not None:
                        result = run_bench(exes, broker, scenario, mode, args, VARIANTS[name]["bench_args"])
                    result.update({"broker": name, "repeat": rep + 1, "mode": mode})
                    if not result.get("ok"):
                        status = 1
                        log(f"  FAILED: {result.get('error')}")
                    report["runs"].append(result)
                    if fresh and broker is not None:
                        broker.stop()
                        running.pop(process)
            if durable_plan and scenario == durable_plan[-1]:
                probe = fdatasync_probe(args.tmp_dir)
                report["fdatasync"].append(dict(probe, when="after the durable scenarios"))
                log(f"compare: {fmt_probe(probe)}")
        if RECOVERY in scenarios:
            # Alone on the machine: every other broker stops first (they would share the disk).
            for broker in running.values():
                broker.stop()
            running.clear()
            if not report["fdatasync"]:
                probe = fdatasync_probe(args.tmp_dir)
                report["fdatasync"].append(dict(probe, when="before the recovery scenario"))
                log(f"compare: {fmt_probe(probe)}")
            for family in families:
                if family == "warren" and is_reflector(args):
                    continue  # the reflector stores nothing
                result = run_recovery(family, exes, warren_exe, args)
                if not result.get("ok"):
                    status = 1
                    log(f"  FAILED: {result.get('error')}")
                report["recovery"].append(result)
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"compare: interrupted ({e}); stopping brokers")
        status = 130
    finally:
        for broker in running.values():
            broker.stop()

    general_plan = [(s, m) for s, m in plan if not is_durable(s) and not is_stream(s)]
    rows = summarize(report["runs"], general_plan, families)
    durable_rows = summarize_durable(report["runs"], plan, [v for v in durable_variants
                                                            if VARIANTS[v]["family"] in families])
    report["summary"] = rows
    report["durable_summary"] = durable_rows
    stream_rows = summarize_streams(report["runs"], plan, [v for v in durable_variants if v in STREAM_VARIANTS
                                                           and VARIANTS[v]["family"] in families])
    report["stream_summary"] = stream_rows
    report["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    report["machine"]["loadavg_end"] = os.getloadavg()
    os.makedirs(args.results_dir, exist_ok=True)
    path = os.path.join(args.results_dir, datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)

    print(f"Warren vs RabbitMQ {report['rabbitmq_version'] or ''} on {report['machine']['nproc']} cores "
          f"({report['machine']['cpu']}), commit {report['commit']}, median of {args.repeat}; "
          f"load average {report['machine']['loadavg'][0]:.2f} -> {report['machine']['loadavg_end'][0]:.2f}\n")
    if rows:
        print(markdown(rows, families))
        print("\nWarren advantage: throughput and fairness Warren/RabbitMQ, latency and memory RabbitMQ/Warren "
              "(> 1: Warren is better).\nBroker CPU µs/msg: the broker's own user + system CPU time "
              "(/proc/<pid>/stat, all threads) over the measured window, per message consumed (per message "
              "published when nothing consumes).\nLoad: pipelined = warren-bench batching, client = warren-bench "
              "with a send per publish and per ack, go = amqp091-go.")
    if stream_rows:
        print("\nStreams (x-queue-type stream), Warren with fsync_confirms true and false beside RabbitMQ's "
              "stream queue, which confirms without fsync (medians):\n")
        print(markdown_streams(stream_rows))
    if durable_rows:
        print("\nDurable queues, persistent messages, publisher confirms, consumers acking each message "
              "(consumed msg/s, medians):\n")
        print(markdown_durable(durable_rows))
    for probe in report["fdatasync"]:
        print(f"\n{probe['when'].capitalize()}: {fmt_probe(probe)}")
    if report["recovery"]:
        print("\nRecovery: a durable queue filled with persistent 1 KiB messages (confirms), the broker stopped "
              "and restarted; start-up is from the process start to the first accepted connection:\n")
        print(markdown_recovery(report["recovery"]))
    print(f"\nResults: {os.path.relpath(path, os.getcwd())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
