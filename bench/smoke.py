"""Smoke run of the load generators, for the test command: starts a broker executable (Warren or
the reflector) on a free loopback port, runs one short scenario in each load mode (pipelined and
client with warren-bench, and with warren-bench-go if given), and checks that each completed, that
messages went through and that the broker's CPU time was read. No timing assertions. Always stops
the broker it started.

usage: smoke.py --bench build/bench/warren-bench --broker build/broker/warren
                [--bench-go build/bench/warren-bench-go] [--scenario default[,durable-1k]] [--duration 1]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rabbit_node import free_port, wait_for_port  # noqa: E402


def run_one(label, cmd):
    """Runs one generator; returns an error message, or None if the run moved messages."""
    run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=120)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        return f"{label}: exited with {run.returncode}"
    result = json.loads(lines[-1])
    if not result["ok"] or result["consumed"] == 0 or result["published"] == 0:
        return f"{label}: the run moved no messages: {lines[-1]}"
    if result.get("broker_cpu_seconds") is None:
        return f"{label}: no broker CPU time was read: {lines[-1]}"
    print(f"smoke: {label} ok, {result['consume_rate']:.0f} msg/s consumed")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--bench-go", help="warren-bench-go, to smoke-test it as well")
    ap.add_argument("--broker", required=True, help="executable taking --port N --bind ADDRESS")
    ap.add_argument("--scenario", default="default", help="comma-separated; warren-bench-go runs those it has")
    ap.add_argument("--duration", default="1")
    args = ap.parse_args()
    args.broker = os.path.abspath(args.broker)

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="warren-bench-smoke-") as tmp:
        broker = subprocess.Popen([args.broker, "--port", str(port), "--bind", "127.0.0.1"], cwd=tmp,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            if not wait_for_port(port, 20, lambda: broker.poll() is None):
                print(f"smoke: {args.broker} did not listen on port {port}", file=sys.stderr)
                return 1
            go_has = set()
            if args.bench_go:
                listing = subprocess.run([args.bench_go, "--list"], stdout=subprocess.PIPE, text=True).stdout
                go_has = {line.split()[0] for line in listing.splitlines() if line.strip()}
            runs = []
            for scenario in [s for s in args.scenario.split(",") if s]:
                common = ["--port", str(port), "--scenario", scenario, "--json", "--duration", args.duration,
                          "--warmup", "0.3", "--broker-pid", str(broker.pid)]
                runs += [(f"{scenario}: warren-bench --mode {mode}",
                          [os.path.abspath(args.bench), *common, "--mode", mode]) for mode in ("pipelined", "client")]
                if args.bench_go and scenario in go_has:
                    runs.append((f"{scenario}: warren-bench-go", [os.path.abspath(args.bench_go), *common]))
            for label, cmd in runs:
                error = run_one(label, cmd)
                if error:
                    print(f"smoke: {error}", file=sys.stderr)
                    return 1
                if broker.poll() is not None:
                    print(f"smoke: the broker exited with {broker.returncode} during {label}", file=sys.stderr)
                    return 1
            return 0
        finally:
            if broker.poll() is None:
                os.killpg(broker.pid, signal.SIGTERM)
                try:
                    broker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(broker.pid, signal.SIGKILL)
                    broker.wait()


if __name__ == "__main__":
    sys.exit(main())
