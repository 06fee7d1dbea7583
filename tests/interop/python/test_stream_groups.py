"""Super streams and consumer groups with pika: a super stream declared by plain AMQP (an
x-consistent-hash exchange marked x-super-stream over six stream partitions), groups of 1, 2 and
5 members consuming every partition with x-stream-group, members joining while messages are in
flight and leaving between batches, and a broker restart: every message of every key reaches
exactly one member of each group, in order per key, and each group reads everything.
"""
import collections
import os
import tempfile
import unittest

import pika

import brokers
from helpers import channel_error, wait_for_all

PARTITIONS = 6
KEYS = ["ad-%d" % i for i in range(30)]


def declare_super_stream(ch, name, partitions=PARTITIONS):
    """The super stream's topology, as any AMQP 0-9-1 client declares it."""
    ch.exchange_declare(name, "x-consistent-hash", durable=True, arguments={"x-super-stream": True})
    for i in range(partitions):
        q = "%s-%d" % (name, i)
        ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream"})
        ch.queue_bind(q, name, routing_key="1", arguments={"x-stream-partition-order": i})


class Member:
    """One group member: a connection with a consumer on every partition; acks each delivery."""

    def __init__(self, b, stream, group, name, log, prefetch=3, hold_at=None):
        self.name, self.log, self.group = name, log, group
        # From the group's hold_at-th delivery on, acks are held back until release(): the
        # member then takes at most its prefetch more, so the batch cannot run out before a
        # newcomer takes partitions over (it did when a member was fast).
        self.hold_at, self.held = hold_at, []
        self.conn = b.connect()
        self.ch = self.conn.channel()
        self.ch.basic_qos(prefetch_count=prefetch)
        for i in range(PARTITIONS):
            self.ch.basic_consume("%s-%d" % (stream, i), self.on_message,
                                  arguments={"x-stream-group": group, "x-stream-offset": "first"})

    def on_message(self, ch, method, props, body):
        self.log.append((self.name, body.decode()))
        if self.hold_at is not None and len(self.log) >= self.hold_at:
            self.held.append(method.delivery_tag)
        else:
            ch.basic_ack(method.delivery_tag)

    def release(self):
        self.hold_at = None
        for tag in self.held:
            self.ch.basic_ack(tag)
        self.held = []

    def leave(self):
        # Closes the channel without pika's nacks of undispatched deliveries (a stream refuses
        # them with 540); whatever was still unacked goes to the next owner.
        self.ch._impl.close()
        wait_for_all([self.conn], lambda: self.ch.is_closed, what="channel closed")
        self.conn.close()


@brokers.warren_only("consumer groups (x-stream-group) are Warren's")
class StreamGroupTests(unittest.TestCase):
    def setUp(self):
        data = tempfile.mkdtemp(prefix="warren-groups-")
        self.config = {"data_dir": os.path.join(data, "d")}
        self.broker = brokers.start_broker(self.config)
        self.addCleanup(self.broker.stop)
        self.members = []
        self.logs = collections.defaultdict(list)
        self.sent = 0
        self.seq = collections.Counter()

    def join(self, group, name, hold_at=None):
        m = Member(self.broker, "clicks", group, name, self.logs[group], hold_at=hold_at)
        self.members.append(m)
        return m

    def leave(self, name):
        m = next(m for m in self.members if m.name == name)
        self.members.remove(m)
        m.leave()

    def publish(self, per_key):
        with self.broker.connect() as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            for _ in range(per_key):
                for k in KEYS:
                    self.seq[k] += 1
                    ch.basic_publish("clicks", k, ("%s:%d" % (k, self.seq[k])).encode())
                    self.sent += 1

    def pump(self, until, what):
        wait_for_all([m.conn for m in self.members], until, timeout=60, what=what)

    def all_delivered(self, groups):
        return lambda: all(len(self.logs[g]) >= self.sent for g in groups)

    def check(self, groups):
        """Each group: every message once, in order per key, and only from one member at a time."""
        for g in groups:
            log = self.logs[g]
            bodies = [b for _, b in log]
            self.assertEqual(len(bodies), len(set(bodies)), "%s: a message delivered twice" % g)
            self.assertEqual(len(bodies), self.sent, "%s: %d of %d" % (g, len(bodies), self.sent))
            last = {}
            for _, b in log:
                k, n = b.split(":")
                self.assertEqual(int(n), last.get(k, 0) + 1, "%s: %s out of order" % (g, b))
                last[k] = int(n)

    def test_groups_of_1_2_and_5_with_members_joining_and_leaving_and_a_restart(self):
        with self.broker.connect() as conn:
            declare_super_stream(conn.channel(), "clicks")
        groups = ["one", "two", "five"]
        self.join("one", "o1")
        t1 = self.join("two", "t1", hold_at=50)
        for i in range(1, 5):
            self.join("five", "f%d" % i)
        self.publish(8)
        # Members join while the first batch is in flight: partitions change hands only after
        # the previous owner's acks.
        self.pump(lambda: len(self.logs["two"]) >= 50 and len(self.logs["five"]) >= 50, what="part of batch 1")
        self.join("two", "t2")
        self.join("five", "f5")
        self.assertLess(len(self.logs["two"]), self.sent)  # t1 holds its acks: t2 has some to take
        t1.release()
        self.pump(self.all_delivered(groups), what="batch 1")
        self.assertIn("t2", {n for n, _ in self.logs["two"]})
        # Members leave between batches (their acks are in), others join: a 6th and a 7th
        # member of "five" make 6 members for 6 partitions, then one leaves again.
        self.leave("t1")
        self.leave("f2")
        self.join("five", "f6")
        self.join("five", "f7")
        self.publish(8)
        self.pump(lambda: len(self.logs["five"]) >= self.sent - 150, what="part of batch 2")
        self.join("two", "t3")
        self.pump(self.all_delivered(groups), what="batch 2")
        self.leave("f3")
        self.publish(4)
        self.pump(self.all_delivered(groups), what="batch 3")
        self.check(groups)
        readers = collections.Counter(n for n, _ in self.logs["five"][-120:])
        self.assertEqual(len(readers), 5, readers)  # five members, six partitions: all read
        # A restart: every member goes, the broker stops cleanly and starts on its data; the
        # groups come back and go on after the last acked offsets.
        for m in list(self.members):
            self.leave(m.name)
        self.broker.restart()
        self.join("one", "o1b")
        self.join("two", "t1b")
        self.join("two", "t2b")
        for i in range(1, 6):
            self.join("five", "f%db" % i)
        self.publish(4)
        self.pump(self.all_delivered(groups), what="after the restart")
        self.check(groups)

    def test_x_stream_group_on_a_classic_queue_is_refused(self):
        with self.broker.connect() as conn:
            ch = conn.channel()
            ch.queue_declare("plain")
            ch.basic_qos(prefetch_count=1)
            with channel_error(self, 406, "PRECONDITION_FAILED - invalid arg 'x-stream-group' for queue 'plain' in "
                                          "vhost '/': consumer groups read stream queues only"):
                ch.basic_consume("plain", lambda *a: None, arguments={"x-stream-group": "g"})


if __name__ == "__main__":
    unittest.main()
