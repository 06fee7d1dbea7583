"""Client-side helpers shared by the interop tests: awaiting events, channel errors, draining
queues, and a pipelined publisher that records every confirm the broker sends.

Nothing here sleeps: waits run the client's I/O loop until the awaited event and fail on timeout.
"""
import contextlib
import time
import uuid

import pika
import pika.exceptions

TIMEOUT = 20.0  # generous upper bound for one awaited event on a loaded 2-core machine


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def wait_for(conn, predicate, timeout=TIMEOUT, what="event"):
    """Run conn's I/O loop until predicate() is true; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        conn.process_data_events(time_limit=min(left, 0.2))


def wait_for_all(conns, predicate, timeout=TIMEOUT, what="event"):
    """Like wait_for, over several connections driven from this one thread."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        for c in conns:
            c.process_data_events(time_limit=0.02)


@contextlib.contextmanager
def channel_error(test, code, text):
    """Assert the block ends with the broker closing the channel with exactly (code, text)."""
    with test.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
        yield cm
    test.assertEqual((cm.exception.reply_code, cm.exception.reply_text), (code, text))


@contextlib.contextmanager
def connection_error(test, code, text):
    """Assert the block ends with the broker closing the connection with exactly (code, text)."""
    with test.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
        yield cm
    test.assertEqual((cm.exception.reply_code, cm.exception.reply_text), (code, text))


def message_count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def get_all(ch, queue, limit=100000):
    """basic.get (auto-ack) until get-empty; returns [(method, properties, body)]."""
    out = []
    while len(out) < limit:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((method, props, body))
    return out


def bodies(ch, queue):
    return [b.decode() for _, _, b in get_all(ch, queue)]


def consume_n(conn, ch, queue, n, auto_ack=True, timeout=60.0):
    """Consume exactly n deliveries from queue; returns [(method, properties, body)]."""
    got = []
    tag = ch.basic_consume(queue, lambda c, m, p, b: got.append((m, p, b)), auto_ack=auto_ack)
    wait_for(conn, lambda: len(got) >= n, timeout, "%d deliveries from %s" % (n, queue))
    ch.basic_cancel(tag)
    return got


class ConfirmedPublisher:
    """Publishes a batch without waiting per message (pika's async API) and records confirms.

    acks/nacks map publish sequence number -> how many times the broker confirmed it, expanding
    `multiple`; anomalies lists confirms of tags not outstanding. Together they let a test
    assert that every publish was confirmed exactly once.
    """

    def __init__(self, params, exchange, routing_key, count, body=None, properties=None,
                 mandatory=False, timeout=120.0, window=2000):
        self.params, self.exchange, self.routing_key = params, exchange, routing_key
        self.count, self.window, self.timeout = count, window, timeout
        self.body = body or (lambda i: str(i).encode())
        self.properties = properties
        self.mandatory = mandatory
        self.acks, self.nacks, self.returned = {}, {}, []
        self.sent = 0
        self.outstanding = set()  # sequence numbers published and not yet confirmed
        self.anomalies = []  # confirms for tags that were not outstanding
        self.error = None
        self.closing = False

    def run(self):
        self.conn = pika.SelectConnection(self.params, on_open_callback=self._on_open,
                                          on_open_error_callback=self._fail,
                                          on_close_callback=self._on_closed)
        self.conn.ioloop.call_later(self.timeout, self._on_timeout)
        self.conn.ioloop.start()
        if self.error:
            raise AssertionError(self.error)
        return self

    def _fail(self, _conn, err):
        self.error = self.error or "connection failed: %r" % (err,)
        self.conn.ioloop.stop()

    def _on_closed(self, _conn, reason):
        if not self._done():
            self.error = self.error or "connection closed early: %r" % (reason,)
        self.conn.ioloop.stop()

    def _on_timeout(self):
        self.error = self.error or ("timed out: %d sent, %d confirmed" % (self.sent, len(self.acks) +
                                                                         len(self.nacks)))
        if not self.closing:
            self.closing = True
            self.conn.close()

    def _on_open(self, conn):
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, ch):
        self.ch = ch
        ch.add_on_return_callback(lambda c, m, p, b: self.returned.append((m, p, b)))
        ch.add_on_close_callback(self._on_channel_closed)
        ch.confirm_delivery(self._on_confirm, callback=lambda _f: self._pump())

    def _on_channel_closed(self, _ch, reason):
        if not self._done() and not self.closing:
            self.error = self.error or "channel closed: %r" % (reason,)
            self.closing = True
            self.conn.close()

    def _done(self):
        return self.sent == self.count and not self.outstanding

    def _pump(self):
        while self.sent < self.count and len(self.outstanding) < self.window:
            self.ch.basic_publish(self.exchange, self.routing_key, self.body(self.sent),
                                  self.properties, mandatory=self.mandatory)
            self.sent += 1
            self.outstanding.add(self.sent)
        if self._done() and not self.closing:
            self.closing = True
            self.conn.close()

    def _on_confirm(self, frame):
        m = frame.method
        ledger = self.acks if isinstance(m, pika.spec.Basic.Ack) else self.nacks
        if m.multiple:
            covered = sorted(s for s in self.outstanding if s <= m.delivery_tag)
            if not covered:
                self.anomalies.append("multiple confirm of tag %d covers nothing" % m.delivery_tag)
        else:
            covered = [m.delivery_tag]
            if m.delivery_tag not in self.outstanding:
                self.anomalies.append("confirm of tag %d that was not outstanding"
                                      % m.delivery_tag)
        for seq in covered:
            ledger[seq] = ledger.get(seq, 0) + 1
            self.outstanding.discard(seq)
        self.conn.ioloop.add_callback_threadsafe(self._pump)
