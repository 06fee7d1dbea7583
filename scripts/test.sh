#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   1. Catch2 unit tests (codec, routing, broker core) in a Debug build, warnings as errors
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. interop tests: real clients (pika, Celery, amqplib, the Java client, amqp-tools) against a
#      real warren process, restarted and killed for the durability tests (20 rounds of
#      tools/crash_test.py; a full disk on a tmpfs when run as root), and the web console in
#      headless Chromium
#      (the ASan build; the memory-bound tests once more against the Release build)
#   4. a short libFuzzer run of the frame reader and field-table decoder
#   5. the examples, run end to end against a real warren
# (ctest also runs a short smoke run of the benchmark, so that it keeps working.)
# Every broker a test starts runs on a free port and is stopped by the test itself.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "installing dependencies"
scripts/install-deps.sh test

step "Debug build and unit tests"
scripts/build.sh debug build
(cd build && ctest --output-on-failure -j "$(nproc)")

step "ASan+UBSan build and unit tests"
scripts/build.sh asan build-asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$(nproc)")

step "interop tests against warren (ASan+UBSan build)"
ASAN_OPTIONS=detect_leaks=0 tests/interop/run.sh --broker warren --warren build-asan/broker/warren

step "Release build; memory-bound interop tests against it (RSS means nothing under ASan)"
scripts/build.sh release build-release warren
tests/interop/run.sh --broker warren --warren build-release/broker/warren -k test_flow_control

step "fuzzing (short run)"
tools/fuzz.sh 10

step "examples against warren"
examples/run_examples_test.sh build-asan/broker/warren

step "all tests passed in $(( $(date +%s) - start ))s"
