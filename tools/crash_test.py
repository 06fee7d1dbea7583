#!/usr/bin/python3
"""Crash test: a real Warren under load killed at random moments, restarted, and checked.

    tools/crash_test.py --rounds N [--warren PATH] [--seed S] [--fsync-confirms both|true|false]
                        [--segment-size BYTES] [--busy SECONDS] [--keep] [-v]

Every round runs client processes against Warren: three publishers of persistent messages with
confirms (window 256; two to a durable queue, one to a durable fanout exchange feeding two
more), a consumer acking each delivery with basic.ack on each queue but one, whose consumer
acks in transactions (its tx.commit-ok means "acked for sure"), a client declaring and deleting
durable queues with bindings, and a publisher of transient messages to a quorum queue that
outlives the rounds (each check reads it all, acknowledges a third, returns the rest). Every
third round has a low memory watermark (paging, the memory alarm). Warren is then stopped, at
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
                      the ack was still on its way when Warren died
  violations          also: a message twice in one queue, out of its publisher's order, one
                      delivered before the crash that does not come back redelivered with
                      x-delivery-count 1 (in the quorum queue: the number of checks that
                      read it), a queue declared (declare-ok) and never deleted that
                      is gone or lost its binding, one deleted (delete-ok) that is back, a
                      sanitizer report, a Warren that exits by itself or not with 0 on SIGTERM
Exit status 0 when lost, acked-and-returned and violations are all 0. Rounds alternate between
fsync_confirms true and false: a SIGKILL must lose nothing confirmed in either (a power cut is
modelled in the unit tests). tests/interop/python/test_crash.py runs 20 rounds of this.
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

import pika  # noqa: E402
import pika.exceptions  # noqa: E402

import brokers  # noqa: E402
import procs  # noqa: E402

DIRECT = "crash.a"  # publishers 0 and 1; consumer with basic.ack
FANOUT = "crash.fan"  # publisher 2, to crash.b and crash.c
TX_QUEUE = "crash.b"  # consumer acking in transactions
FAN_QUEUE = "crash.c"  # consumer with basic.ack
QUEUES = (DIRECT, TX_QUEUE, FAN_QUEUE)
# A quorum queue that keeps what it holds from round to round, for transient messages: each
# check reads it all, acknowledges about a third for good and returns the rest.
KEEP = "crash.keep"
KEEP_PUBLISHER = 3
# (number, exchange, routing key, window, most messages per round, delivery mode)
PUBLISHERS = ((0, "", DIRECT, 256, None, 2), (1, "", DIRECT, 256, None, 2),
              (2, FANOUT, "", 256, None, 2), (KEEP_PUBLISHER, "", KEEP, 16, 300, 1))
ROUTES = {0: (DIRECT,), 1: (DIRECT,), 2: (TX_QUEUE, FAN_QUEUE), KEEP_PUBLISHER: (KEEP,)}
CLIENT_TIMEOUT = 120.0  # a client still running after this is stuck: the round fails
EXPECTED_CLOSE = (pika.exceptions.StreamLostError, pika.exceptions.ConnectionClosedByBroker,
                  pika.exceptions.AMQPConnectionError, ConnectionError, OSError)


# ---- client processes ------------------------------------------------------------------------
# Forked from the driver; each reports one dict through its pipe when its connection ends.

def _client_main(role, pipe, port, round_no, arg, seed):
    # Not the driver's handlers: a client must never run procs.stop_all (it would stop Warren).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    procs._libc.prctl(procs._PR_SET_PDEATHSIG, signal.SIGKILL)
    random.seed(seed)
    client = {"publisher": Publisher, "acker": Acker, "tx": TxConsumer, "churn": Churn}[role](
        port, round_no, arg)
    try:
        client.run()
    except Exception as e:  # reported: the driver decides whether it was expected
        client.error = client.error or e
    result = client.result()
    error = client.error
    result["error"] = None if error is None or isinstance(error, EXPECTED_CLOSE) else repr(error)
    pipe.send(result)
    pipe.close()


def _params(port):
    return pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1, socket_timeout=10,
                                     heartbeat=0, blocked_connection_timeout=60)


class AsyncClient:
    """A pika SelectConnection that runs until the broker closes it or goes away."""

    def __init__(self, port, round_no, arg):
        self.port, self.round_no, self.arg = port, round_no, arg
        self.error = None

    def run(self):
        self.conn = pika.SelectConnection(_params(self.port), on_open_callback=self._opened,
                                          on_open_error_callback=self._closed,
                                          on_close_callback=self._closed)
        self.conn.ioloop.call_later(CLIENT_TIMEOUT, self._timeout)
        self.conn.ioloop.start()

    def _opened(self, conn):
        conn.channel(on_open_callback=self._channel)

    def _closed(self, _conn, reason):
        self.error = self.error or reason
        self.conn.ioloop.stop()

    def _timeout(self):
        self.error = TimeoutError("still running after %.0f s" % CLIENT_TIMEOUT)
        self.conn.ioloop.stop()

    def _channel_closed(self, _ch, reason):
        # A channel closed by the broker on its own (not with the connection) is a failure.
        if not isinstance(reason, pika.exceptions.ChannelClosedByBroker):
            return
        self.error = self.error or RuntimeError("channel closed: %r" % (reason,))
        self.conn.ioloop.stop()


class Publisher(AsyncClient):
    """Publishes messages "round.publisher.seq|padding" with confirms, up to `window` of them
    unconfirmed, `limit` at most (None: until the broker goes)."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.number, self.exchange, self.routing_key, self.window, self.limit, mode = arg
        self.props = pika.BasicProperties(delivery_mode=mode)
        self.sent = 0
        self.outstanding = set()
        self.acked, self.nacked, self.anomalies = set(), set(), []

    def _channel(self, ch):
        self.ch = ch
        ch.add_on_close_callback(self._channel_closed)
        ch.confirm_delivery(self._confirm, callback=lambda _f: self._pump())

    def _pump(self):
        while (len(self.outstanding) < self.window and self.conn.is_open and
               (self.limit is None or self.sent < self.limit)):
            self.sent += 1
            # Sizes from 16 B to ~3 KiB: segments roll at different offsets every round.
            pad = b"x" * ((self.sent * 7919 + self.number * 104729) % 3000)
            self.ch.basic_publish(self.exchange, self.routing_key,
                                  b"%d.%d.%d|" % (self.round_no, self.number, self.sent) + pad,
                                  self.props)
            self.outstanding.add(self.sent)

    def _confirm(self, frame):
        m = frame.method
        into = self.acked if isinstance(m, pika.spec.Basic.Ack) else self.nacked
        tags = ([t for t in self.outstanding if t <= m.delivery_tag] if m.multiple
                else [m.delivery_tag])
        for t in tags:
            if t not in self.outstanding:
                self.anomalies.append("confirm of %d, not outstanding" % t)
                continue
            self.outstanding.discard(t)
            into.add(t)
        self._pump()

    def result(self):
        return {"role": "publisher", "number": self.number, "sent": self.sent,
                "acked": self.acked, "nacked": self.nacked, "anomalies": self.anomalies}


def _parse(body):
    r, p, s = body[:body.index(b"|")].split(b".")
    return int(r), int(p), int(s)


class Acker(AsyncClient):
    """Consumes a queue (prefetch 64) and acks each delivery with basic.ack, noting it first."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.delivered, self.acked, self.problems = [], [], []

    def _channel(self, ch):
        ch.add_on_close_callback(self._channel_closed)
        ch.basic_qos(prefetch_count=64,
                     callback=lambda _f: ch.basic_consume(self.arg, self._delivery))

    def _delivery(self, ch, method, props, body):
        mid = _parse(body)
        self.delivered.append(mid)
        if method.redelivered:
            self.problems.append("%s delivered redelivered with no crash since" % (mid,))
        self.acked.append(mid)  # noted before the ack leaves: absent later is then not lost
        ch.basic_ack(method.delivery_tag)

    def result(self):
        return {"role": "acker", "queue": self.arg, "delivered": self.delivered,
                "acked": self.acked, "committed": [], "problems": self.problems}


class TxConsumer(AsyncClient):
    """Consumes a queue (prefetch 200) in a transaction: acks every batch of up to 50 deliveries
    (also every 20 ms) with one multiple basic.ack and tx.commit; a batch is committed (acked
    for sure) once tx.commit-ok arrives."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.delivered, self.acked, self.committed, self.problems = [], [], [], []
        self.batch, self.last_tag, self.committing = [], 0, None

    def _channel(self, ch):
        self.ch = ch
        ch.add_on_close_callback(self._channel_closed)
        ch.tx_select(callback=lambda _f: ch.basic_qos(
            prefetch_count=200, callback=lambda _f: self._consume()))

    def _consume(self):
        self.ch.basic_consume(self.arg, self._delivery)
        self.conn.ioloop.call_later(0.02, self._tick)

    def _delivery(self, ch, method, props, body):
        mid = _parse(body)
        self.delivered.append(mid)
        if method.redelivered:
            self.problems.append("%s delivered redelivered with no crash since" % (mid,))
        self.batch.append(mid)
        self.last_tag = method.delivery_tag
        if len(self.batch) >= 50:
            self._commit()

    def _tick(self):
        self._commit()
        if self.conn.is_open:
            self.conn.ioloop.call_later(0.02, self._tick)

    def _commit(self):
        if self.committing is not None or not self.batch or not self.ch.is_open:
            return
        self.committing, self.batch = self.batch, []
        self.acked.extend(self.committing)  # may be settled from here on
        self.ch.basic_ack(self.last_tag, multiple=True)
        self.ch.tx_commit(callback=self._committed)

    def _committed(self, _frame):
        self.committed.extend(self.committing)
        self.committing = None
        if len(self.batch) >= 50:
            self._commit()

    def result(self):
        return {"role": "tx", "queue": self.arg, "delivered": self.delivered,
                "acked": self.acked, "committed": self.committed, "problems": self.problems}


class Churn:
    """Declares durable queues crash.churn.R.I bound to amq.direct and deletes each two steps
    later, noting each request before it is sent and each declare-ok / delete-ok."""

    def __init__(self, port, round_no, arg):
        self.port, self.round_no = port, round_no
        self.error = None
        self.requested, self.declared, self.deleted = [], [], []

    def run(self):
        conn = pika.BlockingConnection(_params(self.port))
        ch = conn.channel()
        deadline = time.monotonic() + CLIENT_TIMEOUT
        i = 0
        while time.monotonic() < deadline:
            name = "crash.churn.%d.%d" % (self.round_no, i)
            self.requested.append(i)
            ch.queue_declare(name, durable=True)
            ch.queue_bind(name, "amq.direct", name)
            self.declared.append(i)
            if i >= 2:
                ch.queue_delete("crash.churn.%d.%d" % (self.round_no, i - 2))
                self.deleted.append(i - 2)
            i += 1

    def result(self):
        return {"role": "churn", "requested": self.requested, "declared": self.declared,
                "deleted": self.deleted}


# ---- the driver ------------------------------------------------------------------------------

class Summary:
    def __init__(self):
        self.rounds = 0
        self.published = self.confirmed = self.nacked = 0
        self.consumed_in_rounds = self.committed = 0
        self.checked = 0  # messages read out by the checks
        self.lost = self.acked_returned = self.duplicates = 0
        self.redelivered = 0  # came back redelivered (delivered, or on its way, at the crash)
        self.violations = []
        self.stops = {"kill": 0, "shutdown": 0, "clean": 0, "startup kills": 0}
        self.confirmed_by_mode = {True: 0, False: 0}
        self.ready_ms = []  # from spawn to accepting connections (measured here)
        self.recovery_ms = []  # "ready in N ms" from Warren's log
        self.recovered = []  # messages Warren said it recovered, per start
        self.churn_checked = 0
        self.low_memory_rounds = 0
        self.keep_checked = self.keep_retired = 0
        self.keep = {"reads": {}, "retired": set()}  # message id -> checks that read it

    def ok(self):
        return not self.lost and not self.acked_returned and not self.violations

    def violation(self, text):
        self.violations.append(text)

    def text(self):
        def spread(values):
            if not values:
                return "-"
            v = sorted(values)
            return "min %.0f, median %.0f, max %.0f" % (v[0], v[len(v) // 2], v[-1])
        lines = [
            "rounds: %d (stops: %s; %d with a %d MB memory watermark)" % (
                self.rounds, ", ".join("%s %d" % kv for kv in self.stops.items()),
                self.low_memory_rounds, LOW_WATERMARK // 1000000),
            "published: %d, confirmed: %d (fsync_confirms true %d, false %d), nacked: %d" % (
                self.published, self.confirmed, self.confirmed_by_mode[True],
                self.confirmed_by_mode[False], self.nacked),
            "consumed during the rounds: %d (committed in transactions: %d); read out by the "
            "checks: %d, of which redelivered: %d" % (
                self.consumed_in_rounds, self.committed, self.checked, self.redelivered),
            "durable queues declared and deleted by the churn client, checked: %d" %
            self.churn_checked,
            "quorum queue kept across rounds (transient messages): %d read by the checks, %d "
            "acknowledged, %d there now" % (self.keep_checked, self.keep_retired,
                                            len(self.keep["reads"])),
            "lost: %d" % self.lost,
            "acked and returned: %d" % self.acked_returned,
            "duplicates (basic.ack not yet stored at the crash): %d" % self.duplicates,
            "start-up to accepting connections, ms: %s" % spread(self.ready_ms),
            "recovery as Warren logs it ('ready in'), ms: %s" % spread(self.recovery_ms),
            "messages recovered per start: %s" % spread(self.recovered),
            "violations: %d" % len(self.violations),
        ]
        lines += ["  " + v for v in self.violations[:50]]
        return "\n".join(lines)


# Every third round runs with a memory watermark the backlog passes: queues page everything out
# (transient messages too) and publishers are blocked by the memory alarm now and then.
LOW_WATERMARK = 8 * 1000 * 1000


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
    conn.close()


def _start_clients(ctx, port, round_no, rng):
    specs = [("publisher", p) for p in PUBLISHERS]
    specs += [("acker", DIRECT), ("tx", TX_QUEUE), ("acker", FAN_QUEUE), ("churn", None)]
    clients = []
    for role, arg in specs:
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client_main, args=(role, child, port, round_no, arg,
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


def _read_out(broker, summary, round_no):
    """Every message of every queue, acknowledged in one transaction: {queue: [(id, redelivered,
    x-delivery-count)]} in queue order."""
    conn = broker.connect()
    ch = conn.channel()
    ch.tx_select()
    ch.basic_qos(prefetch_count=0)  # the acks wait for the commit: no credit to run out of
    out = {}
    for q in QUEUES:
        count = ch.queue_declare(q, passive=True).method.message_count
        got = []
        if count:
            tag = ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, b)))
            deadline = time.monotonic() + 120
            while len(got) < count and time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.2)
            ch.basic_cancel(tag)
            if len(got) != count:
                summary.violation("round %d: %s said %d messages, delivered %d" % (
                    round_no, q, count, len(got)))
            if got:
                ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
        out[q] = [(_parse(b), m.redelivered, (p.headers or {}).get("x-delivery-count"))
                  for m, p, b in got]
    ch.tx_commit()
    for q in QUEUES:
        left = ch.queue_declare(q, passive=True).method.message_count
        if left:
            summary.violation("round %d: %d messages left in %s after the check" % (
                round_no, left, q))
    conn.close()
    return out


def _check_keep(broker, summary, round_no, publisher, rng):
    """Reads the quorum queue that outlives the rounds: everything confirmed and not yet
    acknowledged by a check is there once, in publication order, redelivered with
    x-delivery-count = the number of checks that read it before; then acknowledges a third (in
    a transaction: never to come back) and returns the rest by closing the channel."""
    state = summary.keep
    conn = broker.connect()
    ch = conn.channel()
    ch.tx_select()
    count = ch.queue_declare(KEEP, passive=True).method.message_count
    got = []
    if count:
        ch.basic_consume(KEEP, lambda c, m, p, b: got.append((m, p, b)))
        deadline = time.monotonic() + 120
        while len(got) < count and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
    present = []
    for m, p, b in got:
        mid = _parse(b)
        reads = state["reads"].get(mid, 0)
        header = (p.headers or {}).get("x-delivery-count")
        summary.keep_checked += 1
        if mid in state["retired"]:
            summary.acked_returned += 1
            summary.violation("round %d: %s holds %s, acknowledged by an earlier check" % (
                round_no, KEEP, mid))
            continue
        if mid[0] == round_no and (mid[1] != KEEP_PUBLISHER or publisher is None or
                                   mid[2] > publisher["sent"]):
            summary.violation("round %d: %s holds %s, never published" % (round_no, KEEP, mid))
        elif mid[0] != round_no and mid not in state["reads"]:
            summary.violation("round %d: %s holds %s, which the check of round %d did not "
                              "find" % (round_no, KEEP, mid, mid[0]))
        if (m.redelivered, header) != (reads > 0, reads or None):
            summary.violation("round %d: %s: %s read %d times before, redelivered=%s, "
                              "x-delivery-count %r" % (round_no, KEEP, mid, reads,
                                                       m.redelivered, header))
        present.append((mid, m.delivery_tag))
    ids = [mid for mid, _ in present]
    if len(set(ids)) != len(ids):
        summary.violation("round %d: %s holds a message twice" % (round_no, KEEP))
    if ids != sorted(ids):
        summary.violation("round %d: %s is out of publication order" % (round_no, KEEP))
    expected = set(state["reads"])
    if publisher is not None:
        expected |= {(round_no, KEEP_PUBLISHER, seq) for seq in publisher["acked"]}
    missing = expected - set(ids)
    summary.lost += len(missing)
    for mid in sorted(missing)[:20]:
        summary.violation("round %d: %s lost %s" % (round_no, KEEP, mid))
    retire = [(mid, tag) for mid, tag in present if rng.random() < 0.33]
    for _, tag in retire:
        ch.basic_ack(tag)
    ch.tx_commit()
    state["retired"].update(mid for mid, _ in retire)
    summary.keep_retired += len(retire)
    ch.close()  # the rest goes back, one delivery more each
    retired = {mid for mid, _ in retire}
    state["reads"] = {mid: state["reads"].get(mid, 0) + 1 for mid in ids if mid not in retired}
    conn.close()


def _check_churn(broker, summary, round_no, churn):
    """Declared and not deleted: there, still bound; deleted: gone. Then removes the rest."""
    if churn is None:
        return
    declared, deleted = set(churn["declared"]), set(churn["deleted"])
    conn = broker.connect()
    ch = conn.channel()
    for i in churn["requested"]:
        name = "crash.churn.%d.%d" % (round_no, i)
        try:
            ch.queue_declare(name, passive=True)
            exists = True
        except pika.exceptions.ChannelClosedByBroker:
            ch = conn.channel()
            exists = False
        summary.churn_checked += 1
        if i in declared and i not in deleted and i + 2 not in churn["requested"] and not exists:
            summary.violation("round %d: queue %s was declared (declare-ok) and is gone" % (
                round_no, name))
        if i in deleted and exists:
            summary.violation("round %d: queue %s was deleted (delete-ok) and is back" % (
                round_no, name))
        if exists and i in declared:
            # Its binding to amq.direct came back too: a mandatory publish is routed.
            ch.confirm_delivery()
            try:
                ch.basic_publish("amq.direct", name, b"binding", mandatory=True)
            except pika.exceptions.UnroutableError:
                summary.violation("round %d: queue %s lost its binding" % (round_no, name))
            ch = conn.channel()
        if exists:
            ch.queue_delete(name)
    conn.close()


def _check_round(summary, round_no, results, drained, fsync):
    pubs = {r["number"]: r for r in results if r["role"] == "publisher"}
    consumers = {r["queue"]: r for r in results if r["role"] in ("acker", "tx")}
    for p in pubs.values():
        summary.published += p["sent"]
        summary.confirmed += len(p["acked"])
        summary.confirmed_by_mode[fsync] += len(p["acked"])
        summary.nacked += len(p["nacked"])
        for a in p["anomalies"]:
            summary.violation("round %d: publisher %d: %s" % (round_no, p["number"], a))
        both = p["acked"] & p["nacked"]
        if both:
            summary.violation("round %d: publisher %d: %d messages both acked and nacked" % (
                round_no, p["number"], len(both)))
    for q in QUEUES:
        c = consumers.get(q, {"delivered": [], "acked": [], "committed": [], "problems": []})
        for problem in c["problems"]:
            summary.violation("round %d: %s: %s" % (round_no, q, problem))
        delivered = set(c["delivered"])
        if len(delivered) != len(c["delivered"]):
            summary.violation("round %d: %s: a message delivered twice with no crash" % (
                round_no, q))
        acked, committed = set(c["acked"]), set(c["committed"])
        summary.consumed_in_rounds += len(acked)
        summary.committed += len(committed)
        present = {}
        last_seq = {}
        for mid, redelivered, count in drained[q]:
            r, pub, seq = mid
            summary.checked += 1
            summary.redelivered += bool(redelivered)
            if mid in present:
                summary.violation("round %d: %s holds %s twice" % (round_no, q, mid))
            present[mid] = redelivered
            if r != round_no:
                summary.acked_returned += 1
                summary.violation("round %d: %s holds %s, taken by the check of round %d" % (
                    round_no, q, mid, r))
                continue
            if pub not in pubs or seq > pubs[pub]["sent"] or q not in ROUTES.get(pub, ()):
                summary.violation("round %d: %s holds %s, never published there" % (
                    round_no, q, mid))
                continue
            if seq <= last_seq.get(pub, 0):
                summary.violation("round %d: %s holds %s after seq %d of that publisher" % (
                    round_no, q, mid, last_seq[pub]))
            last_seq[pub] = seq
            if mid in committed:
                summary.acked_returned += 1
                summary.violation("round %d: %s holds %s, whose ack was committed" % (
                    round_no, q, mid))
            elif mid in acked:
                summary.duplicates += 1
            if mid in delivered and not redelivered:
                summary.violation("round %d: %s: %s was delivered before the crash and is not "
                                  "redelivered" % (round_no, q, mid))
            if redelivered and count != 1 or not redelivered and count is not None:
                summary.violation("round %d: %s: %s redelivered=%s with x-delivery-count %r" % (
                    round_no, q, mid, redelivered, count))
        for pub, p in pubs.items():
            if q not in ROUTES[pub]:
                continue
            for seq in p["acked"]:
                mid = (round_no, pub, seq)
                if mid not in present and mid not in acked:
                    summary.lost += 1
                    if summary.lost <= 20:
                        summary.violation("round %d: %s lost %s (confirmed, never acked)" % (
                            round_no, q, mid))


def run(rounds, warren=None, seed=None, fsync_modes=(True, False), segment_size=1 << 20,
        busy=1.0, out=print, verbose=False):
    """Runs `rounds` rounds against a fresh Warren (warren: its path); returns a Summary."""
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
        for round_no in range(1, rounds + 1):
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
            else:
                _halt(broker, summary, round_no)  # SIGTERM: must exit 0
            results = _collect(clients, summary, round_no)
            next_fsync = fsync_modes[round_no % len(fsync_modes)]
            low_memory = (round_no + 1) % 3 == 0
            summary.low_memory_rounds += low_memory
            config = _config(next_fsync, segment_size, low_memory)
            if rng.random() < 0.2:
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
            drained = _read_out(broker, summary, round_no)
            _check_round(summary, round_no, results, drained, fsync)
            _check_churn(broker, summary, round_no,
                         next((r for r in results if r["role"] == "churn"), None))
            _check_keep(broker, summary, round_no,
                        next((r for r in results if r["role"] == "publisher" and
                              r["number"] == KEEP_PUBLISHER), None), rng)
            summary.rounds += 1
            if verbose:
                out("round %d (%s, fsync_confirms %s): confirmed %d, lost %d, acked and returned "
                    "%d, duplicates %d, violations %d" % (
                        round_no, stop, str(fsync).lower(), summary.confirmed, summary.lost,
                        summary.acked_returned, summary.duplicates, len(summary.violations)))
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
    ap.add_argument("--keep", action="store_true", help="keep Warren's data and logs")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per round")
    a = ap.parse_args()
    if a.keep:
        os.environ["INTEROP_KEEP_TMP"] = "1"
    modes = {"both": (True, False), "true": (True,), "false": (False,)}[a.fsync_confirms]
    summary = run(a.rounds, a.warren, a.seed, modes, a.segment_size, a.busy,
                  verbose=a.verbose)
    print(summary.text())
    return 0 if summary.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
