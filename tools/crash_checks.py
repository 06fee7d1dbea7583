"""The checks of tools/crash_test.py: after each restart, every queue is read out and compared
with what the clients of the round reported (crash_clients.py); a Summary adds up the rounds.
"""
import time

import pika.exceptions

import pika

from crash_clients import (DELAYED_PUBLISHER, DELAYED_Q, KEEP, KEEP_PUBLISHER, LOW_WATERMARK,
                           QUEUES, RETRY_MAX_MS, RETRY_PUBLISHER, RETRY_Q, ROUTES, STREAM,
                           STREAM_PUBLISHER, STREAM_READER, parse_id)

STREAM_MARKER = 99  # the "publisher" of the message each stream check appends
STREAM_WHOLE, STREAM_TAIL = 20000, 2000


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
        self.shutdown_kills = 0  # shutdowns still running when their SIGKILL came
        self.confirmed_by_mode = {True: 0, False: 0}
        self.ready_ms = []  # from spawn to accepting connections (measured here)
        self.recovery_ms = []  # "ready in N ms" from Warren's log
        self.recovered = []  # messages Warren said it recovered, per start
        self.churn_checked = 0
        self.low_memory_rounds = 0
        self.keep_checked = self.keep_retired = 0
        self.keep = {"reads": {}, "retired": set()}  # message id -> checks that read it
        self.delayed_confirmed = self.delayed_checked = self.delayed_duplicates = 0
        self.delayed_twice = 0  # of the duplicates: two copies in the queue (released again)
        self.retry_confirmed = self.retry_checked = self.retry_duplicates = 0
        self.retry_waits = 0  # nacks sent: returns that waited out a backoff
        self.taken = set()  # delayed and retried messages the checks took (acknowledged for good)
        # The stream: every id confirmed so far, what the last check read (offset -> id), where
        # it found the named reader resuming (None: not yet known).
        self.stream = {"confirmed": set(), "log": [], "resume": None}
        self.stream_confirmed = self.stream_read = self.stream_reader_acked = 0
        self.stream_replayed = self.stream_replayed_max = 0
        self.stream_replayed_by_stop = {}  # how Warren stopped -> acked messages replayed
        self.stream_vanished = 0  # delivered to the reader before the crash, unconfirmed, gone

    def kills(self):
        return self.stops["kill"] + self.shutdown_kills + self.stops["startup kills"]

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
            "SIGKILLs: %d (while busy %d, during a shutdown %d, while starting %d)" % (
                self.kills(), self.stops["kill"], self.shutdown_kills,
                self.stops["startup kills"]),
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
            "delayed exchange: %d confirmed, %d read by the checks, %d duplicates (%d released again: "
            "Warren died in the turn that released them; the rest a basic.ack on its way)" % (
                self.delayed_confirmed, self.delayed_checked, self.delayed_duplicates,
                self.delayed_twice),
            "retry with backoff: %d confirmed, %d returns with a backoff, %d read by the checks, "
            "%d duplicates (a basic.ack on its way)" % (
                self.retry_confirmed, self.retry_waits, self.retry_checked, self.retry_duplicates),
            "stream: %d confirmed, %d messages there now, %d read by the checks; named reader: "
            "%d acked in the rounds, %d acked ones replayed after a restart (at most %d at once; "
            "by stop: %s), %d unconfirmed deliveries gone after the restart" % (
                self.stream_confirmed, len(self.stream["log"]), self.stream_read,
                self.stream_reader_acked, self.stream_replayed, self.stream_replayed_max,
                ", ".join("%s %d" % kv for kv in sorted(self.stream_replayed_by_stop.items())),
                self.stream_vanished),
            "lost: %d" % self.lost,
            "acked and returned: %d" % self.acked_returned,
            "duplicates (a basic.ack on its way when Warren stopped): %d" % self.duplicates,
            "start-up to accepting connections, ms: %s" % spread(self.ready_ms),
            "recovery as Warren logs it ('ready in'), ms: %s" % spread(self.recovery_ms),
            "messages recovered per start: %s" % spread(self.recovered),
            "violations: %d" % len(self.violations),
        ]
        lines += ["  " + v for v in self.violations[:50]]
        return "\n".join(lines)


def read_out(broker, summary, round_no):
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
        out[q] = [(parse_id(b), m.redelivered, (p.headers or {}).get("x-delivery-count"))
                  for m, p, b in got]
    ch.tx_commit()
    for q in QUEUES:
        left = ch.queue_declare(q, passive=True).method.message_count
        if left:
            summary.violation("round %d: %d messages left in %s after the check" % (
                round_no, left, q))
    conn.close()
    return out


def check_keep(broker, summary, round_no, publisher, rng):
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
        mid = parse_id(b)
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


def check_churn(broker, summary, round_no, churn):
    """Declared (declare-ok) and no delete sent: there; bound (bind-ok): still bound; deleted
    (delete-ok): gone. Then removes the rest."""
    if churn is None:
        return
    declared, bound, deleted = set(churn["declared"]), set(churn["bound"]), set(churn["deleted"])
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
        # Queue i's delete is sent once queue i + 2 is bound: until then it must be there.
        if i in declared and i + 2 not in bound and not exists:
            summary.violation("round %d: queue %s was declared (declare-ok) and is gone" % (
                round_no, name))
        if i in deleted and exists:
            summary.violation("round %d: queue %s was deleted (delete-ok) and is back" % (
                round_no, name))
        if exists and i in bound:
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


def check_round(summary, round_no, results, drained, fsync):
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


def read_out_waiting(broker, summary, round_no, queue, until, expected):
    """Consumes `queue` until the wall clock passes `until`, every id in `expected` has come and
    nothing more came for 0.5 s (or 60 s more have passed), then acknowledges everything in one
    transaction: [(id, redelivered, x-delivery-count, arrival time)] in delivery order. For the
    delayed queue, whose messages come out of the exchange as their deadlines pass, and the
    retry queue, whose returned messages come back once their backoff is over."""
    conn = broker.connect()
    ch = conn.channel()
    ch.tx_select()
    ch.basic_qos(prefetch_count=0)
    got = []
    ch.basic_consume(queue, lambda c, m, p, b: got.append((m, p, b, time.time())))
    hard = max(until, time.time()) + 60
    last = (0, time.time())
    while time.time() < hard:
        conn.process_data_events(time_limit=0.1)
        if len(got) != last[0]:
            last = (len(got), time.time())
        ids = {parse_id(b) for _, _, b, _ in got}
        if time.time() > until and expected <= ids and time.time() - last[1] > 0.5:
            break
    else:
        summary.violation("round %d: %s: still waiting for %d messages after 60 s" % (
            round_no, queue, len(expected - {parse_id(b) for _, _, b, _ in got})))
    if got:
        ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
    ch.tx_commit()
    conn.close()
    return [(parse_id(b), m.redelivered, (p.headers or {}).get("x-delivery-count"), t)
            for m, p, b, t in got]


def check_delayed(broker, summary, round_no, results):
    """crash.delayed after the restart, once every deadline of the round has passed: each
    confirmed delayed message is there or was acknowledged by the round's consumer, none came
    before its deadline, none twice in the queue at once. Allowed duplicates: a message the
    round's consumer acknowledged with basic.ack (the ack on its way), or one Warren released in
    the loop turn it died in (the queue's copy is written before the exchange's release record,
    so the exchange releases it again)."""
    pub = next((r for r in results if r["role"] == "publisher" and
                r["number"] == DELAYED_PUBLISHER), None)
    consumer = next((r for r in results if r.get("queue") == DELAYED_Q), None)
    deadlines = pub["deadlines"] if pub else {}
    confirmed = {(round_no, DELAYED_PUBLISHER, seq) for seq in (pub["acked"] if pub else ())}
    acked = set(consumer["acked"]) if consumer else set()
    summary.delayed_confirmed += len(confirmed)
    until = max(deadlines.values(), default=0) + 0.2
    drained = read_out_waiting(broker, summary, round_no, DELAYED_Q, until, confirmed - acked)
    arrivals = dict(consumer["arrived"]) if consumer else {}
    present = set()
    for mid, redelivered, count, at in drained:
        summary.delayed_checked += 1
        if mid in summary.taken:
            summary.acked_returned += 1
            summary.violation("round %d: %s holds %s, taken by an earlier check" % (
                round_no, DELAYED_Q, mid))
            continue
        if mid[0] != round_no or mid[2] not in deadlines:
            summary.violation("round %d: %s holds %s, not published in this round" % (
                round_no, DELAYED_Q, mid))
            continue
        if mid in present or mid in acked:
            summary.duplicates += 1
            summary.delayed_duplicates += 1
            summary.delayed_twice += mid in present
        present.add(mid)
        arrivals.setdefault(mid, at)
    for mid, at in arrivals.items():
        # The deadline was taken before the publish; Warren's is its own clock at the publish,
        # in whole milliseconds after a restart: 5 ms of slack.
        deadline = deadlines.get(mid[2])
        if deadline is not None and at < deadline - 0.005:
            summary.violation("round %d: %s: %s came %.0f ms before its deadline" % (
                round_no, DELAYED_Q, mid, (deadline - at) * 1000))
    missing = confirmed - present - acked
    summary.lost += len(missing)
    for mid in sorted(missing)[:20]:
        summary.violation("round %d: %s lost %s (confirmed, never acked)" % (round_no, DELAYED_Q, mid))
    summary.taken |= present


def check_retry(broker, summary, round_no, results):
    """crash.retry after the restart, once any backoff has ended: each confirmed message is there
    or was acknowledged; its x-delivery-count never went back below what the consumer saw, and
    is at most its returns (nacks) plus one (the crash returning a delivery in flight). Allowed
    duplicates: a message the consumer acknowledged with basic.ack (the ack on its way)."""
    pub = next((r for r in results if r["role"] == "publisher" and
                r["number"] == RETRY_PUBLISHER), None)
    retrier = next((r for r in results if r["role"] == "retrier"), None)
    confirmed = {(round_no, RETRY_PUBLISHER, seq) for seq in (pub["acked"] if pub else ())}
    acked = set(retrier["acked"]) if retrier else set()
    nacks = retrier["nacks"] if retrier else {}
    seen = retrier["seen"] if retrier else {}
    summary.retry_confirmed += len(confirmed)
    summary.retry_waits += sum(nacks.values())
    until = time.time() + RETRY_MAX_MS / 1000.0 + 0.2
    drained = read_out_waiting(broker, summary, round_no, RETRY_Q, until, confirmed - acked)
    present = set()
    for mid, redelivered, count, _ in drained:
        summary.retry_checked += 1
        if mid in summary.taken:
            summary.acked_returned += 1
            summary.violation("round %d: %s holds %s, taken by an earlier check" % (
                round_no, RETRY_Q, mid))
            continue
        if mid[0] != round_no or pub is None or mid[2] > pub["sent"]:
            summary.violation("round %d: %s holds %s, not published in this round" % (
                round_no, RETRY_Q, mid))
            continue
        if mid in present:
            summary.violation("round %d: %s holds %s twice" % (round_no, RETRY_Q, mid))
        present.add(mid)
        if mid in acked:
            summary.duplicates += 1
            summary.retry_duplicates += 1
        count = count or 0
        if count < seen.get(mid, 0) or count > nacks.get(mid, 0) + 1:
            summary.violation("round %d: %s: %s back with x-delivery-count %d; the consumer saw "
                              "%d and returned it %d times" % (round_no, RETRY_Q, mid, count,
                                                               seen.get(mid, 0), nacks.get(mid, 0)))
    missing = confirmed - present - acked
    summary.lost += len(missing)
    for mid in sorted(missing)[:20]:
        summary.violation("round %d: %s lost %s (confirmed, never acked)" % (round_no, RETRY_Q, mid))
    summary.taken |= present


def _stream_consume(conn, ch, arguments, want, prefetch, wait=60, ack=True):
    """Consumes the stream with `arguments` until `want` deliveries came (or `wait` s passed),
    acking each (credit) if `ack`: [(offset, id)]; closes the channel. (Never more than `want`
    may be on their way at the close: pika would return them with basic.nack, which a stream
    answers by closing the connection.)"""
    got = []

    def on(c, m, p, b):
        got.append(((p.headers or {}).get("x-stream-offset"), parse_id(b)))
        if ack:
            c.basic_ack(m.delivery_tag)
    ch.basic_qos(prefetch_count=prefetch)
    ch.basic_consume(STREAM, on, arguments=arguments)
    deadline = time.monotonic() + wait
    while len(got) < want and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
    ch.close()
    return got


def check_stream(broker, summary, round_no, results, stop="kill"):
    """The stream after the restart, read whole from `first` by an unnamed consumer (past
    STREAM_WHOLE messages, every tenth round; the others from STREAM_TAIL before the end of what
    the last check read): every confirmed message there once, in publication order, at offsets
    0, 1, 2, ...; what the last check read is still there at the same offsets (append-only:
    unconfirmed messages may be gone only if no check saw them). The round's named reader
    started exactly where the last check found it resuming and got each message from there in
    order; after the restart it resumes no earlier than that (the stored offset never goes back)
    and no later than right after its last ack (at-least-once: it may replay acks of about the
    last second), and every message before that point was delivered to it (it skips nothing).
    Then the check appends a confirmed marker message, so that the named reader always has a
    message to resume at, and reads where it resumes without acking (which does not move the stored offset)."""
    state = summary.stream
    pub = next((r for r in results if r["role"] == "publisher" and
                r["number"] == STREAM_PUBLISHER), None)
    reader = next((r for r in results if r["role"] == "stream-reader"), None)
    confirmed = {(round_no, STREAM_PUBLISHER, seq) for seq in (pub["acked"] if pub else ())}
    summary.stream_confirmed += len(confirmed)
    state["confirmed"] |= confirmed
    conn = broker.connect()
    count = conn.channel().queue_declare(STREAM, passive=True).method.message_count
    # Long runs: past STREAM_WHOLE messages, nine rounds in ten read only the tail (what the
    # last check read, verified then, is taken as it was): the checks stay linear in the rounds.
    before = state["log"]
    base = 0
    if len(before) > STREAM_WHOLE and round_no % 10:
        base = min(count, len(before) - STREAM_TAIL)
    where = {"x-stream-offset": base if base else "first"}
    log = _stream_consume(conn, conn.channel(), where, count - base,
                          max(1, min(1000, count - base)))
    summary.stream_read += len(log)
    if len(log) != count - base:
        summary.violation("round %d: %s said %d messages, delivered %d from offset %d" % (
            round_no, STREAM, count, len(log), base))
    ids = before[:base] + [mid for _, mid in log]
    if [o for o, _ in log] != list(range(base, base + len(log))):
        summary.violation("round %d: %s: offsets from %d are not %d, %d, ...: %s" % (
            round_no, STREAM, base, base, base + 1, [o for o, _ in log][:20]))
    if len(set(ids)) != len(ids):
        summary.violation("round %d: %s holds a message twice" % (round_no, STREAM))
    if ids != sorted(ids):
        bad = next(i for i in range(1, len(ids)) if ids[i] < ids[i - 1])
        summary.violation("round %d: %s: %s at offset %d after %s" % (
            round_no, STREAM, ids[bad], bad, ids[bad - 1]))
    if ids[:len(before)] != before:
        changed = next((i for i in range(len(before)) if i >= len(ids) or ids[i] != before[i]))
        summary.lost += 1
        summary.violation("round %d: %s: offset %d held %s at the last check, now %s" % (
            round_no, STREAM, changed, before[changed],
            ids[changed] if changed < len(ids) else "nothing"))
    for mid in ids[len(before):]:
        if mid[0] != round_no or mid[1] != STREAM_PUBLISHER or pub is None or mid[2] > pub["sent"]:
            summary.violation("round %d: %s holds %s, not published in this round" % (
                round_no, STREAM, mid))
    missing = state["confirmed"] - set(ids)
    summary.lost += len(missing)
    for mid in sorted(missing)[:20]:
        summary.violation("round %d: %s lost %s (confirmed)" % (round_no, STREAM, mid))

    # The round's named reader: from the last check's resume point, each message in order.
    start = state["resume"] if state["resume"] is not None else 0
    delivered = reader["delivered"] if reader else []
    acked = reader["acked"] if reader else []
    summary.stream_reader_acked += len(acked)
    if delivered and delivered[0][0] != start:
        summary.violation("round %d: the named reader started at offset %s, the check found it "
                          "resuming at %d" % (round_no, delivered[0][0], start))
    got = {}
    for i, (offset, mid) in enumerate(delivered):
        if offset != start + i:
            summary.violation("round %d: the named reader got offset %s after %s" % (
                round_no, offset, delivered[i - 1][0] if i else None))
            break
        if offset >= len(ids) or ids[offset] != mid:
            # Delivered before the crash, never confirmed, not in the log after the restart.
            if mid in state["confirmed"]:
                summary.violation("round %d: the named reader got %s at offset %d, the stream "
                                  "holds %s there" % (round_no, mid, offset,
                                                      ids[offset] if offset < len(ids) else None))
            summary.stream_vanished += 1
            continue
        got[offset] = mid

    # Where it resumes now: the marker makes sure there is a message to resume at.
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", STREAM, b"%d.%d.0|" % (round_no, STREAM_MARKER),
                     pika.BasicProperties(delivery_mode=2))
    marker = (round_no, STREAM_MARKER, 0)
    state["confirmed"].add(marker)
    ch.close()
    first = _stream_consume(conn, conn.channel(), {"x-stream-offset": "first",
                                                   "x-stream-consumer-name": STREAM_READER},
                            1, 1, wait=5, ack=False)
    conn.close()
    state["log"] = ids + [marker]
    if not first:
        summary.violation("round %d: the named reader gets nothing after the restart" % round_no)
        state["resume"] = None
        return
    resume = first[0][0]
    latest = max([start] + [o + 1 for o in acked if o in got])
    if resume < start:
        summary.violation("round %d: the named reader resumes at offset %d, before %d where it "
                          "resumed at the last check" % (round_no, resume, start))
    elif resume > latest:
        skipped = [ids[o] for o in range(latest, min(resume, len(ids)))]
        summary.lost += len(skipped)
        summary.violation("round %d: the named reader resumes at offset %d, past %d (its last "
                          "ack of a message still there, plus one): it skips %s" % (
                              round_no, resume, latest, skipped[:5]))
    replayed = len([o for o in acked if o >= resume])
    summary.stream_replayed += replayed
    summary.stream_replayed_max = max(summary.stream_replayed_max, replayed)
    summary.stream_replayed_by_stop[stop] = summary.stream_replayed_by_stop.get(stop, 0) + replayed
    state["resume"] = resume
