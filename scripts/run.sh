#!/usr/bin/env bash
# Installs what is missing, builds the Release broker (only the warren target: not the tests and
# benchmarks) and starts it on 127.0.0.1:5672 with the built-in configuration (user guest/guest
# from loopback, vhost "/").
# Extra arguments go to warren, e.g. scripts/run.sh --port 5673 --config warren.json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
scripts/build.sh release build-release warren
# The data directory is data/ under the clone (ignored by git) unless --data-dir is given.
case " $* " in
  *" --data-dir "*) exec build-release/broker/warren "$@" ;;
  *) exec build-release/broker/warren --data-dir "$PWD/data" "$@" ;;
esac
