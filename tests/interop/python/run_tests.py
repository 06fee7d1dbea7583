"""Runs the interop tests with unittest and ends with one 'N passed, N failed, N skipped' line.

Usage (normally through tests/interop/run.sh): run_tests.py [-k FILTER]... [-v]
"""
import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import procs  # noqa: E402  (installs the cleanup hooks before any broker starts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose id contains this substring (or matches this glob)")
    ap.add_argument("-q", dest="verbosity", action="store_const", const=1, default=2)
    ap.add_argument("-f", "--failfast", action="store_true")
    args = ap.parse_args()

    loader = unittest.TestLoader()
    loader.testNamePatterns = ["*%s*" % p if "*" not in p else p for p in args.patterns] or None
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    started = time.monotonic()
    runner = unittest.TextTestRunner(verbosity=args.verbosity, failfast=args.failfast,
                                     stream=sys.stdout)
    try:
        result = runner.run(suite)
    finally:
        procs.stop_all()
    # setUpModule/tearDownModule errors are reported as _ErrorHolder entries, not tests run.
    problems = result.failures + result.errors
    failed_tests = [t for t, _ in problems if isinstance(t, unittest.TestCase)]
    failed = len(problems) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = (result.testsRun - len(failed_tests) - len(result.unexpectedSuccesses) - skipped
              - len(result.expectedFailures))
    if result.skipped:
        print("\nSkipped:")
        for test, reason in result.skipped:
            print("  %s: %s" % (test.id(), reason))
    print("\nbroker %s, %.0f s" % (os.environ.get("INTEROP_BROKER", "warren"),
                                  time.monotonic() - started))
    print("interop: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if result.testsRun == 0:
        print("no test matched", file=sys.stderr)
        return 1
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
