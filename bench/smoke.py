"""Smoke run of the load generator, for the test command: starts a broker executable (Warren or
the reflector) on a free loopback port, runs one short scenario, and checks that it completed
and that messages went through. No timing assertions. Always stops the broker it started.

usage: smoke.py --bench build/bench/warren-bench --broker build/broker/warren
                [--scenario default] [--duration 2]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--broker", required=True, help="executable taking --port N --bind ADDRESS")
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--duration", default="2")
    args = ap.parse_args()
    args.bench, args.broker = os.path.abspath(args.bench), os.path.abspath(args.broker)

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="warren-bench-smoke-") as tmp:
        broker = subprocess.Popen([args.broker, "--port", str(port), "--bind", "127.0.0.1"], cwd=tmp,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            if not wait_for_port(port, 20, lambda: broker.poll() is None):
                print(f"smoke: {args.broker} did not listen on port {port}", file=sys.stderr)
                return 1
            run = subprocess.run([args.bench, "--port", str(port), "--scenario", args.scenario, "--json",
                                  "--duration", args.duration, "--warmup", "0.5", "--broker-pid", str(broker.pid)],
                                 stdout=subprocess.PIPE, text=True, timeout=120)
            lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
            if run.returncode != 0 or not lines:
                print(f"smoke: warren-bench exited with {run.returncode}", file=sys.stderr)
                return 1
            result = json.loads(lines[-1])
            if not result["ok"] or result["consumed"] == 0 or result["published"] == 0:
                print(f"smoke: the run moved no messages: {lines[-1]}", file=sys.stderr)
                return 1
            if broker.poll() is not None:
                print(f"smoke: the broker exited with {broker.returncode} during the run", file=sys.stderr)
                return 1
            print(f"smoke: ok, {result['consume_rate']:.0f} msg/s consumed")
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
