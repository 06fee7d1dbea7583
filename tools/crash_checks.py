"""The checks of tools/crash_test.py: after each restart, every queue is read out and compared
with what the clients of the round reported (crash_clients.py); a Summary adds up the rounds.
"""
import time

import pika.exceptions

from crash_clients import (DELAYED_PUBLISHER, DELAYED_Q, KEEP, KEEP_PUBLISHER, LOW_WATERMARK,
                           QUEUES, RETRY_MAX_MS, RETRY_PUBLISHER, RETRY_Q, ROUTES,
                           parse_id)


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
