"""The crash test (tools/crash_test.py), 20 rounds: Warren under publishers with confirms,
consumers acking with basic.ack and in transactions, a client declaring and deleting durable
queues, and a stream publisher with a named stream reader, killed at random moments (SIGKILL
while busy, SIGKILL during a SIGTERM shutdown, again while it starts) or stopped cleanly,
restarted on the same data directory each time, then read out and checked: nothing confirmed
lost, nothing whose ack was committed back, every delivery in flight at the crash back
redelivered, every confirmed stream message there once and in order, the named stream reader
resuming at or before its last ack. Rounds alternate between fsync_confirms true and false.
"""
import os
import sys
import unittest

import brokers

sys.path.insert(0, os.path.join(brokers.REPO, "tools"))
import crash_test  # noqa: E402

ROUNDS = 20


@brokers.warren_only("kills the broker 20 times and more; RabbitMQ 3.10 takes 5-10 s to restart "
                     "and may bring back acknowledged messages after a SIGKILL")
class CrashTests(unittest.TestCase):
    def test_crash_rounds_lose_nothing_confirmed_and_bring_back_nothing_committed(self):
        lines = []
        summary = crash_test.run(ROUNDS, seed=int(os.environ.get("CRASH_SEED", "0")) or None,
                                 out=lines.append)
        report = "\n".join(lines + [summary.text()])
        print("\n" + report)
        self.assertEqual(summary.rounds, ROUNDS, report)
        self.assertGreater(summary.confirmed, 0, report)
        self.assertEqual(summary.lost, 0, report)
        self.assertEqual(summary.acked_returned, 0, report)
        self.assertEqual(summary.violations, [], report)


if __name__ == "__main__":
    unittest.main()
