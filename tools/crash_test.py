#!/usr/bin/python3
"""Crash test: a real Warren under load killed at random moments, restarted, and checked.

    tools/crash_test.py --rounds N [--warren PATH] [--seed S] [--fsync-confirms both|true|false]
                        [--segment-size BYTES] [--busy SECONDS] [--minutes M] [--keep] [-v]

Every round runs client processes against Warren: three publishers of persistent messages with
confirms (window 256; two to a durable queue, one to a durable fanout exchange feeding two
more), a consumer acking each delivery with basic.ack on each queue but one, whose consumer
acks in transactions (its tx.commit-ok means "acked for sure"), a client declaring and deleting
durable queues with bindings, a publisher of transient messages to a quorum queue that
outlives the rounds (each check reads it all, acknowledges a third, returns the rest), a
publisher of persistent delayed messages (x-delay 0-1.5 s) to a durable x-delayed-message
exchange feeding a queue with a basic.ack consumer, and one of persistent messages to a queue
that retries with backoff (50-400 ms), whose consumer returns each message twice (nack with
requeue) before it acks it, and a publisher of persistent messages with confirms to a
durable stream kept across the rounds, read by a named reader (x-stream-consumer-name, from
`first`, prefetch 32, basic.ack). Every third round has a low memory watermark (paging, the
memory alarm). Warren is then stopped, at
a random moment while they are busy (writes and fdatasyncs in flight; with a small
segment_size, segments roll and are deleted as acks settle them):
  kill      SIGKILL
  shutdown  SIGTERM, then SIGKILL at a random moment of the shutdown (the checkpoint)
  clean     SIGTERM, exit 0 (the next start reads the checkpoint)
and sometimes killed again while it starts (recovering, compacting its definitions). Then it is
started on the same data directory and every queue is read out (and acknowledged, in a
transaction) by the check:
  lost                a confirmed message that is not there and that no consumer acknowledged
  acked and returned  a message whose acknowledgement was committed, or that an earlier check
                      took, is back
  duplicates          (allowed) a message acknowledged with basic.ack, not committed, is back:
                      the ack was still on its way when Warren died, or when a SIGTERM
                      closed the connection (basic.ack has no reply: a consumer cannot know)
  delayed, retried    after the restart the check waits until every deadline of the round has
                      passed and every backoff could have ended, then reads both queues out:
                      each confirmed message is there or was acked, no delayed one came before
                      its deadline, x-delivery-count never goes back below what the consumer
                      saw nor past its returns plus one; allowed duplicates: a basic.ack on its
                      way, and a delayed message released in the loop turn Warren died in (the
                      queue's copy is written before the exchange's release record)
  stream              read whole from `first` (long runs: past 20,000 messages, every tenth
                      round; the others read the tail): every confirmed message there once, in
                      publication order, at offsets 0, 1, 2, ..., and what an earlier check read
                      still there at the same offset; the named reader started where the last
                      check found it resuming and got every message from there in order; after
                      the restart it resumes no earlier than that and no later than right after
                      its last ack (acked ones may be replayed: the offset is stored up to a
                      second after the ack), so it skips nothing
  violations          also: a message twice in one queue, out of its publisher's order, one
                      delivered before the crash that does not come back redelivered with
                      x-delivery-count 1 (in the quorum queue: the number of checks that
                      read it), a queue declared (declare-ok) and never deleted that
                      is gone or lost its binding, one deleted (delete-ok) that is back, a
                      sanitizer report, a Warren that exits by itself or not with 0 on SIGTERM
Exit status 0 when lost, acked-and-returned and violations are all 0. Rounds alternate between
fsync_confirms true and false: a SIGKILL must lose nothing confirmed in either (a power cut is
modelled in the unit tests). tests/interop/python/test_crash.py runs 20 rounds of this. The
clients are in crash_clients.py, the checks in crash_checks.py.
"""
import argparse
import multiprocessing
import os
import random
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop", "python"))

import brokers  # noqa: E402
from crash_checks import (Summary, check_churn, check_delayed, check_keep,  # noqa: E402
                          check_retry, check_round, check_stream, read_out)
from crash_clients import (CLIENT_TIMEOUT, DELAYED_Q, DELAYED_X, DIRECT, FAN_QUEUE,  # noqa: E402
                           FANOUT, KEEP, KEEP_PUBLISHER, LOW_WATERMARK, PUBLISHERS, QUEUES,
                           RETRY_ARGS, RETRY_Q, STREAM, TX_QUEUE, client_main)


def _config(fsync, segment_size, low_memory):
    c = {"fsync_confirms": fsync, "segment_size": segment_size, "log_level": "info"}
    if low_memory:
        c["memory_high_watermark_bytes"] = LOW_WATERMARK
    return c


def _declare_topology(broker):
    conn = broker.connect()
    ch = conn.channel()
    for q in QUEUES:
        ch.queue_declare(q, durable=True)
    ch.exchange_declare(FANOUT, "fanout", durable=True)
    ch.queue_bind(TX_QUEUE, FANOUT)
    ch.queue_bind(FAN_QUEUE, FANOUT)
    # An explicit delivery limit: a quorum queue's default (20) would drop messages that
    # many checks have returned.
    ch.queue_declare(KEEP, durable=True, arguments={"x-queue-type": "quorum",
                                                    "x-delivery-limit": 1000000})
    ch.exchange_declare(DELAYED_X, "x-delayed-message", durable=True,
                        arguments={"x-delayed-type": "direct"})
    ch.queue_declare(DELAYED_Q, durable=True)
    ch.queue_bind(DELAYED_Q, DELAYED_X, "d")
    ch.queue_declare(RETRY_Q, durable=True, arguments=RETRY_ARGS)
    ch.queue_declare(STREAM, durable=True, arguments={"x-queue-type": "stream"})
    conn.close()


def _start_clients(ctx, port, round_no, rng):
    specs = [("publisher", p) for p in PUBLISHERS]
    specs += [("acker", DIRECT), ("tx", TX_QUEUE), ("acker", FAN_QUEUE), ("churn", None),
              ("acker", DELAYED_Q), ("retrier", RETRY_Q), ("stream-reader", None)]
    clients = []
    for role, arg in specs:
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=client_main, args=(role, child, port, round_no, arg,
                                                   rng.getrandbits(32)), daemon=True)
        p.start()
        child.close()
        clients.append((role, p, parent))
    return clients


def _collect(clients, summary, round_no):
    results = []
    deadline = time.monotonic() + CLIENT_TIMEOUT + 30
    for role, p, pipe in clients:
        left = max(0.0, deadline - time.monotonic())
        if pipe.poll(left):
            try:
                results.append(pipe.recv())
            except EOFError:
                summary.violation("round %d: the %s client died without a report (exit %s)" % (
                    round_no, role, p.exitcode))
        else:
            summary.violation("round %d: the %s client did not finish" % (round_no, role))
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
    for r in results:
        if r.get("error"):
            summary.violation("round %d: %s client failed: %s" % (round_no, r["role"], r["error"]))
    return results


def _halt(broker, summary, round_no, **how):
    """Stops Warren; a problem (a sanitizer report, an exit status) is a violation, and the
    rounds go on."""
    try:
        broker.halt(**how)
    except AssertionError as e:
        summary.violation("round %d: stopping Warren: %s" % (round_no, str(e)[:3000]))


def _parse_start(summary, log):
    m = re.search(r"storage: \S+ ready in (\d+) ms: .* (\d+) messages restored", log)
    if m:
        summary.recovery_ms.append(int(m.group(1)))
        summary.recovered.append(int(m.group(2)))


def run(rounds, warren=None, seed=None, fsync_modes=(True, False), segment_size=1 << 20,
        busy=1.0, out=print, verbose=False, minutes=None):
    """Runs `rounds` rounds against a fresh Warren (warren: its path), or fewer if `minutes`
    pass first; returns a Summary."""
    if warren:
        brokers.WARREN = os.path.abspath(warren)
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    out("crash test: %d rounds, seed %d, warren %s, segment_size %d, fsync_confirms %s" % (
        rounds, seed, brokers.WARREN, segment_size, "/".join(str(m).lower() for m in fsync_modes)))
    ctx = multiprocessing.get_context("fork")
    summary = Summary()
    fsync = fsync_modes[0]
    broker = brokers.start_broker(_config(fsync, segment_size, False))
    try:
        _parse_start(summary, broker.log_text())
        _declare_topology(broker)
        started = time.monotonic()
        reported = 0
        for round_no in range(1, rounds + 1):
            if minutes is not None and time.monotonic() - started > minutes * 60:
                out("stopping after %d rounds: the %g minutes are up" % (summary.rounds, minutes))
                break
            clients = _start_clients(ctx, broker.port, round_no, rng)
            time.sleep(rng.uniform(0.05, busy))  # the clients are busy: a random moment
            roll = rng.random()
            stop = "kill" if roll < 0.6 else "shutdown" if roll < 0.8 else "clean"
            summary.stops[stop] += 1
            if stop == "kill":
                _halt(broker, summary, round_no, kill=True)
            elif stop == "shutdown":
                # Warren closes connections for 300 ms, then writes its checkpoint: half the
                # kills land near that moment.
                _halt(broker, summary, round_no, kill_after=rng.choice(
                    (rng.uniform(0.0, 0.3), rng.uniform(0.28, 0.4))))
                summary.shutdown_kills += broker.exit_status == -signal.SIGKILL
            else:
                _halt(broker, summary, round_no)  # SIGTERM: must exit 0
            results = _collect(clients, summary, round_no)
            next_fsync = fsync_modes[round_no % len(fsync_modes)]
            low_memory = (round_no + 1) % 3 == 0
            summary.low_memory_rounds += low_memory
            config = _config(next_fsync, segment_size, low_memory)
            startup_kill = rng.random() < 0.2
            if startup_kill:
                # Killed while it starts: reading the log, compacting the definitions.
                summary.stops["startup kills"] += 1
                broker.start_again(config=config, wait=False)
                time.sleep(rng.uniform(0.0, 0.8 * (summary.ready_ms[-1] if summary.ready_ms
                                                   else 100) / 1000))
                _halt(broker, summary, round_no, kill=True)
            t0 = time.monotonic()
            broker.start_again(config=config)
            summary.ready_ms.append((time.monotonic() - t0) * 1000)
            _parse_start(summary, broker.log_text())
            drained = read_out(broker, summary, round_no)
            check_round(summary, round_no, results, drained, fsync)
            check_delayed(broker, summary, round_no, results)
            check_retry(broker, summary, round_no, results)
            check_stream(broker, summary, round_no, results,
                         stop + (", killed while starting" if startup_kill else ""))
            check_churn(broker, summary, round_no,
                         next((r for r in results if r["role"] == "churn"), None))
            check_keep(broker, summary, round_no,
                        next((r for r in results if r["role"] == "publisher" and
                              r["number"] == KEEP_PUBLISHER), None), rng)
            summary.rounds += 1
            if verbose:  # running totals: a run stopped early still tells what it checked
                out("round %d (%s%s, fsync_confirms %s): confirmed %d, checked %d, lost %d, "
                    "acked and returned %d, duplicates %d, kills %d, violations %d" % (
                        round_no, stop, ", killed while starting" if startup_kill else "",
                        str(fsync).lower(), summary.confirmed, summary.checked, summary.lost,
                        summary.acked_returned, summary.duplicates,
                        summary.kills(), len(summary.violations)))
                for v in summary.violations[reported:]:
                    out("  " + v)
                reported = len(summary.violations)
            fsync = next_fsync
        out("%d rounds in %.0f s" % (summary.rounds, time.monotonic() - started))
    finally:
        try:
            broker.stop()  # SIGTERM: exit 0; and no sanitizer report in any run
        except RuntimeError as e:
            summary.violation("stopping Warren: %s" % str(e)[:2000])
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warren", default=os.path.join(HERE, "..", "build-release", "broker",
                                                     "warren"))
    ap.add_argument("--seed", type=int)
    ap.add_argument("--fsync-confirms", choices=("both", "true", "false"), default="both")
    ap.add_argument("--segment-size", type=int, default=1 << 20,
                    help="Warren's segment_size (its smallest, 1 MiB: segments roll often)")
    ap.add_argument("--busy", type=float, default=1.0,
                    help="the longest time the clients run before Warren is stopped (s)")
    ap.add_argument("--minutes", type=float,
                    help="start no round after this many minutes (the summary is printed)")
    ap.add_argument("--keep", action="store_true", help="keep Warren's data and logs")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per round")
    a = ap.parse_args()
    if a.keep:
        os.environ["INTEROP_KEEP_TMP"] = "1"
    modes = {"both": (True, False), "true": (True,), "false": (False,)}[a.fsync_confirms]
    summary = run(a.rounds, a.warren, a.seed, modes, a.segment_size, a.busy,
                  verbose=a.verbose, minutes=a.minutes)
    print(summary.text())
    return 0 if summary.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
