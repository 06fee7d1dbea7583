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

usage: /usr/bin/python3 bench/compare.py [--only warren|rabbitmq] [--scenarios a,b,...]
           [--modes pipelined,client,go] [--threads 1] [--repeat 3] [--duration 10] [--warmup 2]
           [--build-dir build-release] [--no-build]
"""

import argparse
import datetime
import json
import os
import platform
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

SCENARIOS = ["default", "autoack", "prefetch100", "body-1k", "body-64k", "body-1m", "fanout3", "queues10",
             "confirm1000", "latency-1k", "latency-10k", "latency-50k", "latency-100k", "many-connections",
             "memory-1m-queued", "memory-1000-idle"]
BROKERS = ["warren", "rabbitmq"]
MODES = ["pipelined", "client", "go"]


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class WarrenBroker:
    """build-release/broker/warren --port N --bind 127.0.0.1, in its own temp dir and process group."""

    def __init__(self, exe):
        self.exe = exe
        self.proc = None
        self.port = None
        self.tmp = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="warren-bench-warren-")
        self.port = free_port()
        with open(os.path.join(self.tmp, "warren.log"), "w") as out:
            self.proc = subprocess.Popen([self.exe, "--port", str(self.port), "--bind", "127.0.0.1"], cwd=self.tmp,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        try:
            listening = wait_for_port(self.port, 30, self.alive)
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
            with open(os.path.join(self.tmp, "warren.log")) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                if self.proc.poll() is not None:
                    break
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    pass
            self.proc = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class Rabbit:
    """A private RabbitMQ node (bench/rabbit_node.py); RSS is read from its beam.smp."""

    def __init__(self):
        self.node = None

    @property
    def port(self):
        return self.node.port

    @property
    def pid(self):
        return self.node.beam_pid

    def alive(self):
        return self.node is not None and self.node._server is not None and self.node._server.poll() is None

    def start(self):
        self.node = RabbitNode().start()
        return self

    def stop(self):
        if self.node is not None:
            self.node.stop()
            self.node = None


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


def run_bench(exes, broker, scenario, mode, args):
    memory = is_memory(scenario)
    exe = exes["go"] if mode == "go" else exes["bench"]
    cmd = [exe, "--host", "127.0.0.1", "--port", str(broker.port), "--scenario", scenario, "--json",
           "--broker-pid", str(broker.pid)]
    if mode != "go":
        cmd += ["--mode", mode, "--threads", str(args.threads)]
    if not memory:
        cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    timeout = 900 if memory else args.duration + args.warmup + 180
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
    label = "deliveries/s" if scenario == "fanout3" else "consumed msg/s"
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=BROKERS, help="run against one broker only")
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
    ap.add_argument("--warren-exe", help="the broker run as \"warren\" (default: <build-dir>/broker/warren); "
                    "<build-dir>/bench/warren-bench-reflector measures the load generator's own ceiling")
    ap.add_argument("--results-dir", default=os.path.join(BENCH_DIR, "results"))
    args = ap.parse_args()

    brokers = [args.only] if args.only else BROKERS
    scenarios = [s for s in args.scenarios.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        sys.exit(f"compare: --modes takes {', '.join(MODES)}")
    exes = {"bench": os.path.join(args.build_dir, "bench", "warren-bench"),
            "go": os.path.join(args.build_dir, "bench", "warren-bench-go")}
    warren_exe = os.path.abspath(args.warren_exe or os.path.join(args.build_dir, "broker", "warren"))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    generators = (["warren-bench"] if set(modes) - {"go"} else []) + (["warren-bench-go"] if "go" in modes else [])
    if not args.no_build:
        build(args.build_dir, generators + (["warren"] if "warren" in brokers and not args.warren_exe else []))
    if "rabbitmq" in brokers:
        ensure_rabbitmq()
    needed = [exes["go" if g == "warren-bench-go" else "bench"] for g in generators]
    for exe in needed + ([warren_exe] if "warren" in brokers else []):
        if not os.access(exe, os.X_OK):
            sys.exit(f"compare: {exe} is missing (build it, or drop --no-build)")
    go_list = go_scenarios(exes["go"]) if "go" in modes else set()
    plan = [(s, modes_for(s, modes, go_list)) for s in scenarios]
    plan = [(s, m) for s, m in plan if m]
    # 1,000 connections per side and more: brokers and generators inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    report = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "commit": git_commit(),
              "rabbitmq_version": rabbitmq_version(), "machine": machine(),
              "args": {k: v for k, v in vars(args).items()}, "runs": []}
    log(f"compare: {sum(len(m) for _, m in plan)} scenario/mode pairs x {args.repeat} runs x {brokers}; "
        f"load average {report['machine']['loadavg']}")

    make = {"warren": lambda: WarrenBroker(warren_exe), "rabbitmq": Rabbit}
    running = {}  # broker name -> started broker, reused by the throughput scenarios
    status = 0
    try:
        for scenario, scenario_modes in plan:
            fresh = is_memory(scenario)
            # Each mode's runs alternate which broker goes first, and the modes start on different brokers.
            schedule = [(rep, j, mode) for rep in range(args.repeat) for j, mode in enumerate(scenario_modes)]
            for rep, j, mode in schedule:
                order = brokers if (rep + j) % 2 == 0 else list(reversed(brokers))
                for name in order:
                    broker = running.get(name)
                    if fresh and broker is not None:
                        broker.stop()
                        broker = None
                    if broker is not None and not broker.alive():
                        log(f"compare: {name} is no longer running; restarting it")
                        broker.stop()
                        broker = None
                    log(f"[{scenario} {mode} {rep + 1}/{args.repeat}] {name}")
                    if broker is None:
                        try:
                            broker = make[name]().start()
                            running[name] = broker
                        except RuntimeError as e:
                            broker = None
                            result = {"scenario": scenario, "ok": False, "error": f"{name} did not start: {e}"}
                    if broker is not None:
                        result = run_bench(exes, broker, scenario, mode, args)
                    result.update({"broker": name, "repeat": rep + 1, "mode": mode})
                    if not result.get("ok"):
                        status = 1
                        log(f"  FAILED: {result.get('error')}")
                    report["runs"].append(result)
                    if fresh and broker is not None:
                        broker.stop()
                        running.pop(name)
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"compare: interrupted ({e}); stopping brokers")
        status = 130
    finally:
        for broker in running.values():
            broker.stop()

    rows = summarize(report["runs"], plan, brokers)
    report["summary"] = rows
    report["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    report["machine"]["loadavg_end"] = os.getloadavg()
    os.makedirs(args.results_dir, exist_ok=True)
    path = os.path.join(args.results_dir, datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)

    print(f"Warren vs RabbitMQ {report['rabbitmq_version'] or ''} on {report['machine']['nproc']} cores "
          f"({report['machine']['cpu']}), commit {report['commit']}, median of {args.repeat}; "
          f"load average {report['machine']['loadavg'][0]:.2f} -> {report['machine']['loadavg_end'][0]:.2f}\n")
    print(markdown(rows, brokers))
    print("\nWarren advantage: throughput and fairness Warren/RabbitMQ, latency and memory RabbitMQ/Warren "
          "(> 1: Warren is better).\nBroker CPU µs/msg: the broker's own user + system CPU time (/proc/<pid>/stat, "
          "all threads) over the measured window, per message consumed (per message published when nothing "
          "consumes).\nLoad: pipelined = warren-bench batching, client = warren-bench with a send per publish and "
          "per ack, go = amqp091-go.")
    print(f"Results: {os.path.relpath(path, os.getcwd())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
