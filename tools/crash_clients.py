"""The client processes of tools/crash_test.py, forked by its driver: publishers with confirms
(one of them of delayed messages, one into a stream), consumers acking with basic.ack or in
transactions, one returning each message twice to a queue that retries with backoff, a named
stream reader, and a client declaring and deleting durable queues. Each runs until Warren closes
its connection or dies, then sends the driver one dict through its pipe: what it sent, what was
confirmed, delivered, acknowledged and committed.
"""
import random
import signal
import time

import pika
import pika.exceptions

import procs

DIRECT = "crash.a"  # publishers 0 and 1; consumer with basic.ack
FANOUT = "crash.fan"  # publisher 2, to crash.b and crash.c
TX_QUEUE = "crash.b"  # consumer acking in transactions
FAN_QUEUE = "crash.c"  # consumer with basic.ack
QUEUES = (DIRECT, TX_QUEUE, FAN_QUEUE)
# A quorum queue that keeps what it holds from round to round, for transient messages: each
# check reads it all, acknowledges about a third for good and returns the rest.
KEEP = "crash.keep"
KEEP_PUBLISHER = 3
# A durable delayed exchange (the plugin's type, routing direct) feeding crash.delayed: each
# message waits a random 0-1.5 s; and crash.retry, whose consumer returns each message twice
# (nack with requeue) before it acks it, so that most wait out a backoff (50, 100, ... 400 ms).
DELAYED_X = "crash.later"
DELAYED_Q = "crash.delayed"
DELAYED_PUBLISHER = 4
MAX_DELAY_MS = 1500
RETRY_Q = "crash.retry"
RETRY_PUBLISHER = 5
RETRY_ARGS = {"x-delayed-retry-type": "all", "x-delayed-retry-min": 50, "x-delayed-retry-max": 400,
              "x-delayed-retry-multiplier": 2, "x-delivery-limit": 1000000}
RETRY_MAX_MS = 400
RETRIES = 2  # returns per message before the consumer acks it
# A durable stream (declared once, kept across rounds): a publisher with confirms appends to it,
# and a reader named STREAM_READER (x-stream-offset first, server-side offset tracking) acks what
# it reads; each check reads the whole stream and where the named reader resumes.
STREAM = "crash.stream"
STREAM_PUBLISHER = 6
STREAM_READER = "crash.reader"
STREAM_PREFETCH = 32
# (number, exchange, routing key, window, most messages per round, delivery mode)
PUBLISHERS = ((0, "", DIRECT, 256, None, 2), (1, "", DIRECT, 256, None, 2),
              (2, FANOUT, "", 256, None, 2), (KEEP_PUBLISHER, "", KEEP, 16, 300, 1),
              (DELAYED_PUBLISHER, DELAYED_X, "d", 64, 400, 2), (RETRY_PUBLISHER, "", RETRY_Q, 64, 300, 2),
              (STREAM_PUBLISHER, "", STREAM, 64, 300, 2))
ROUTES = {0: (DIRECT,), 1: (DIRECT,), 2: (TX_QUEUE, FAN_QUEUE), KEEP_PUBLISHER: (KEEP,),
          DELAYED_PUBLISHER: (DELAYED_Q,), RETRY_PUBLISHER: (RETRY_Q,),
          STREAM_PUBLISHER: (STREAM,)}
# Every third round runs with a memory watermark the backlog passes: queues page everything out
# (transient messages too) and publishers are blocked by the memory alarm now and then.
LOW_WATERMARK = 8 * 1000 * 1000
CLIENT_TIMEOUT = 120.0  # a client still running after this is stuck: the round fails
EXPECTED_CLOSE = (pika.exceptions.StreamLostError, pika.exceptions.ConnectionClosedByBroker,
                  pika.exceptions.AMQPConnectionError, ConnectionError, OSError)


def client_main(role, pipe, port, round_no, arg, seed):
    # Not the driver's handlers: a client must never run procs.stop_all (it would stop Warren).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    procs._libc.prctl(procs._PR_SET_PDEATHSIG, signal.SIGKILL)
    random.seed(seed)
    if role == "publisher" and arg[0] == DELAYED_PUBLISHER:
        role = "delayed-publisher"
    client = {"publisher": Publisher, "delayed-publisher": DelayedPublisher, "acker": Acker,
              "tx": TxConsumer, "retrier": Retrier, "stream-reader": StreamReader,
              "churn": Churn}[role](port, round_no, arg)
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
            # Sizes from 16 B to ~3 KiB: segments roll at different offsets every round (the
            # stream's up to 300 B: each check reads all of it).
            pad = b"x" * ((self.sent * 7919 + self.number * 104729) %
                          (300 if self.number == STREAM_PUBLISHER else 3000))
            self.ch.basic_publish(self.exchange, self.routing_key,
                                  b"%d.%d.%d|" % (self.round_no, self.number, self.sent) + pad,
                                  self._properties())
            self.outstanding.add(self.sent)

    def _properties(self):
        return self.props

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


class DelayedPublisher(Publisher):
    """A Publisher whose messages carry x-delay (0 to MAX_DELAY_MS ms, 0: routed at once); notes
    each message's deadline (wall clock, taken before the publish) for the check."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.deadlines = {}

    def _properties(self):
        delay = random.randint(0, MAX_DELAY_MS)
        self.deadlines[self.sent] = time.time() + delay / 1000.0
        return pika.BasicProperties(delivery_mode=2, headers={"x-delay": delay})

    def result(self):
        r = super().result()
        r["deadlines"] = self.deadlines
        return r


def parse_id(body):
    r, p, s = body[:body.index(b"|")].split(b".")
    return int(r), int(p), int(s)


class Acker(AsyncClient):
    """Consumes a queue (prefetch 64) and acks each delivery with basic.ack, noting it first
    (and when it came, wall clock: for the delayed queue's deadlines)."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.delivered, self.acked, self.problems = [], [], []
        self.arrived = {}

    def _channel(self, ch):
        ch.add_on_close_callback(self._channel_closed)
        ch.basic_qos(prefetch_count=64,
                     callback=lambda _f: ch.basic_consume(self.arg, self._delivery))

    def _delivery(self, ch, method, props, body):
        mid = parse_id(body)
        self.delivered.append(mid)
        self.arrived.setdefault(mid, time.time())
        if method.redelivered:
            self.problems.append("%s delivered redelivered with no crash since" % (mid,))
        self.acked.append(mid)  # noted before the ack leaves: absent later is then not lost
        ch.basic_ack(method.delivery_tag)

    def result(self):
        return {"role": "acker", "queue": self.arg, "delivered": self.delivered,
                "acked": self.acked, "committed": [], "problems": self.problems,
                "arrived": self.arrived}


class Retrier(AsyncClient):
    """Consumes crash.retry (prefetch 32): a delivery with x-delivery-count below RETRIES is
    nacked with requeue (it waits out a backoff), the next acked with basic.ack; each noted
    before it is sent, with the highest x-delivery-count seen."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.delivered, self.acked, self.nacks, self.seen = [], [], {}, {}

    def _channel(self, ch):
        ch.add_on_close_callback(self._channel_closed)
        ch.basic_qos(prefetch_count=32,
                     callback=lambda _f: ch.basic_consume(self.arg, self._delivery))

    def _delivery(self, ch, method, props, body):
        mid = parse_id(body)
        count = (props.headers or {}).get("x-delivery-count", 0)
        self.delivered.append(mid)
        self.seen[mid] = max(self.seen.get(mid, 0), count)
        if count < RETRIES:
            self.nacks[mid] = self.nacks.get(mid, 0) + 1
            ch.basic_nack(method.delivery_tag, requeue=True)
        else:
            self.acked.append(mid)
            ch.basic_ack(method.delivery_tag)

    def result(self):
        return {"role": "retrier", "queue": self.arg, "delivered": self.delivered,
                "acked": self.acked, "nacks": self.nacks, "seen": self.seen}


class StreamReader(AsyncClient):
    """Reads the stream as the named reader STREAM_READER (x-stream-offset first: the broker's
    stored offset wins once there is one), prefetch STREAM_PREFETCH, and acks each delivery with
    basic.ack, noting (offset, id) when it comes and the offset before its ack leaves."""

    def __init__(self, port, round_no, arg):
        super().__init__(port, round_no, arg)
        self.delivered, self.acked = [], []

    def _channel(self, ch):
        ch.add_on_close_callback(self._channel_closed)
        ch.basic_qos(prefetch_count=STREAM_PREFETCH, callback=lambda _f: ch.basic_consume(
            STREAM, self._delivery, arguments={"x-stream-offset": "first",
                                               "x-stream-consumer-name": STREAM_READER}))

    def _delivery(self, ch, method, props, body):
        offset = (props.headers or {}).get("x-stream-offset")
        self.delivered.append((offset, parse_id(body)))
        self.acked.append(offset)
        ch.basic_ack(method.delivery_tag)

    def result(self):
        return {"role": "stream-reader", "delivered": self.delivered, "acked": self.acked}


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
        mid = parse_id(body)
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
    later, noting each request before it is sent and each declare-ok, bind-ok and delete-ok
    (queue I's delete is sent only once queue I+2 is bound)."""

    def __init__(self, port, round_no, arg):
        self.port, self.round_no = port, round_no
        self.error = None
        self.requested, self.declared, self.bound, self.deleted = [], [], [], []

    def run(self):
        conn = pika.BlockingConnection(_params(self.port))
        ch = conn.channel()
        deadline = time.monotonic() + CLIENT_TIMEOUT
        i = 0
        while time.monotonic() < deadline:
            name = "crash.churn.%d.%d" % (self.round_no, i)
            self.requested.append(i)
            ch.queue_declare(name, durable=True)
            self.declared.append(i)
            ch.queue_bind(name, "amq.direct", name)
            self.bound.append(i)
            if i >= 2:
                ch.queue_delete("crash.churn.%d.%d" % (self.round_no, i - 2))
                self.deleted.append(i - 2)
            i += 1

    def result(self):
        return {"role": "churn", "requested": self.requested, "declared": self.declared,
                "bound": self.bound, "deleted": self.deleted}
