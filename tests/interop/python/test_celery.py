"""Celery (Debian's python3-celery 5.2, kombu, py-amqp) workers against the broker.

kombu sends basic.qos with global=true, the channel-wide prefetch Celery's fair dispatch and ETA
tasks rely on, only when the server's `product` is "RabbitMQ" with a version of at least 3.3
(kombu/transport/pyamqp.py, qos_semantics_matches_spec). These tests run real workers
(`python3 -m celery worker`, solo pool, acks_late, prefetch multiplier 1) and check where and in
what order tasks run, from files the tasks write (celery_tasks.py).
"""
import importlib.util
import os
import shutil
import sys
import tempfile
import unittest

import brokers
import helpers
import procs

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 90.0  # upper bound for one awaited event; a held task gives up after 30 s
broker = None


def setUpModule():
    global broker
    if importlib.util.find_spec("celery") is None:
        raise RuntimeError("celery is not installed: apt-get install python3-celery")
    broker = brokers.start_broker()


def tearDownModule():
    if broker:
        broker.stop()


class CeleryCase(unittest.TestCase):
    def setUp(self):
        from celery import Celery
        self.dir = tempfile.mkdtemp(prefix="warren-celery-")
        self.marks = os.path.join(self.dir, "marks")
        os.mkdir(self.marks)
        self.workers = {}
        self.queues = []
        self.sender = Celery("sender", broker=broker.url())
        self.conn = broker.connect()

    def tearDown(self):
        self.release()
        for p in self.workers.values():
            procs.stop(p, grace=20)
        self.sender.close()
        ch = self.conn.channel()
        for q in self.queues:
            ch.queue_delete(q)
            ch.exchange_delete(q)
        self.conn.close()
        if not os.environ.get("INTEROP_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def queue(self, prefix):
        # Declared as Celery declares a task queue (durable, no arguments), so that the
        # test can count its consumers before any worker has declared it.
        name = helpers.unique(prefix)
        self.conn.channel().queue_declare(name, durable=True)
        self.queues.append(name)
        return name

    def start_worker(self, name, queues):
        argv = [sys.executable, "-m", "celery", "-A", "celery_tasks", "-b", broker.url(),
                "worker", "-P", "solo", "-c", "1", "-Q", ",".join(queues), "-n", name + "@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"]
        env = dict(os.environ, CELERY_MARK_DIR=self.marks, PYTHONPATH=HERE)
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.workers[name] = procs.spawn(argv, env=env, stdout=log, cwd=HERE)
        log.close()

    def worker_logs(self):
        out = []
        for name in self.workers:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                out.append("--- %s ---\n%s" % (name, f.read().decode(errors="replace")[-3000:]))
        return "\n".join(out)

    def wait_for_consumers(self, counts):
        """Waits until each queue has its number of consumers: the workers are consuming."""
        def ready():
            for p in self.workers.values():
                if p.poll() is not None:
                    raise AssertionError("a worker exited with %s:\n%s"
                                         % (p.returncode, self.worker_logs()))
            ch = self.conn.channel()
            try:
                return all(ch.queue_declare(q, passive=True).method.consumer_count == n
                           for q, n in counts.items())
            finally:
                ch.close()
        procs.wait_until(ready, TIMEOUT, what="Celery workers consuming %s" % counts)

    def send(self, task, name, queue, **options):
        self.sender.send_task("celery_tasks." + task, args=[name], queue=queue, **options)

    def mark(self, name):
        """The mark's content (the worker that wrote it), or None if not written yet."""
        try:
            with open(os.path.join(self.marks, name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def wait_for_marks(self, *names):
        def written():
            return all(self.mark(n) is not None for n in names)
        try:
            procs.wait_until(written, TIMEOUT, what="tasks %s" % ", ".join(names))
        except TimeoutError as e:
            raise AssertionError("%s\n%s" % (e, self.worker_logs()))

    def release(self):
        open(os.path.join(self.marks, "release"), "w").close()


class CeleryTests(CeleryCase):
    def test_a_busy_worker_takes_no_task_from_its_second_queue(self):
        # worker1 consumes queues A and B, worker2 only B. While worker1 runs a long task from
        # A, every task sent to B must go to the idle worker2: prefetch 1 is worker1's limit
        # across both queues. With per-consumer prefetch, worker1's consumer on B takes one
        # and sits on it until the long task ends.
        a, b = self.queue("celery-a"), self.queue("celery-b")
        self.start_worker("worker1", [a, b])
        self.start_worker("worker2", [b])
        self.wait_for_consumers({a: 1, b: 2})

        self.send("hold", "long", a)
        self.wait_for_marks("long.started")
        self.assertEqual(self.mark("long.started").split("@")[0], "worker1")
        names = ["b%d" % i for i in range(4)]
        for n in names:
            self.send("record", n, b)
        self.wait_for_marks(*names)
        ran = {n: self.mark(n).split("@")[0] for n in names}
        long_done = self.mark("long.done") is not None
        self.assertEqual(ran, {n: "worker2" for n in names},
                         "tasks from B ran on the busy worker1")
        self.assertFalse(long_done, "the tasks from B waited for the long task")
        self.release()
        self.wait_for_marks("long.done")

    def test_a_task_sent_after_a_countdown_task_runs_before_it(self):
        # A prefetch-1 worker that receives a task with an ETA keeps it and raises its prefetch
        # by one (basic.qos global=true) so that the next task still reaches it. With the
        # per-consumer qos, the raise does not apply to its existing consumer, and the next task
        # waits until the countdown task has run.
        c = self.queue("celery-c")
        self.start_worker("worker", [c])
        self.wait_for_consumers({c: 1})

        self.send("record", "later", c, countdown=20)
        self.send("record", "now", c)
        self.wait_for_marks("now")
        self.assertIsNone(self.mark("later"), "the task ran only after the countdown task")


if __name__ == "__main__":
    unittest.main()
