#!/usr/bin/env bash
# Interop suite: real clients (pika, Celery, amqplib, amqp091-go, the Java client, amqp-tools,
# raw sockets) against a real broker, and the web console in headless Chromium.
#
#   tests/interop/run.sh [--broker warren|rabbitmq] [--warren PATH] [-k FILTER]... [-q] [-x]
#
# --broker warren (default) starts PATH (default build/broker/warren) on free ports;
# --broker rabbitmq starts private RabbitMQ nodes (Debian's rabbitmq-server) instead, to check
# that the assertions encode RabbitMQ's behaviour. -k keeps tests whose id contains FILTER
# (or matches it as a glob), e.g. -k test_routing, -k DeadLetter, -k 'test_*ttl*'.
# The fixtures stop every process they start, also on failure and Ctrl-C.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
broker=warren
warren="$repo/build/broker/warren"
args=()

usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --broker) broker="${2:?--broker needs warren or rabbitmq}"; shift 2 ;;
    --broker=*) broker="${1#*=}"; shift ;;
    --warren) warren="${2:?--warren needs a path}"; shift 2 ;;
    --warren=*) warren="${1#*=}"; shift ;;
    -k) args+=(-k "${2:?-k needs a filter}"); shift 2 ;;
    -q) args+=(-q); shift ;;
    -x|--failfast) args+=(--failfast); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# Debian's interpreter: the python3 first on PATH may be another one without python3-pika.
python=/usr/bin/python3
if ! "$python" -c 'import pika' 2>/dev/null; then
  echo "run.sh: $python cannot import pika: apt-get install python3-pika" >&2
  exit 2
fi
if ! "$python" -c 'import celery' 2>/dev/null; then
  echo "run.sh: $python cannot import celery: apt-get install python3-celery" >&2
  exit 2
fi

case "$broker" in
  warren)
    case "$warren" in /*) ;; *) warren="$(pwd)/$warren" ;; esac
    if [ ! -x "$warren" ]; then
      echo "run.sh: no Warren executable at $warren (build it, or pass --warren PATH)" >&2
      exit 2
    fi ;;
  rabbitmq)
    if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
      echo "run.sh: rabbitmq-server is not installed: apt-get install rabbitmq-server" >&2
      exit 2
    fi ;;
  *) echo "run.sh: --broker must be warren or rabbitmq, not '$broker'" >&2; exit 2 ;;
esac

for tool in amqp-publish amqp-get amqp-consume amqp-declare-queue; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool missing: apt-get install amqp-tools" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "run.sh: the TLS tests make certificates with openssl: apt-get install openssl" >&2; exit 2; }
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run.sh: node and npm are needed for the amqplib tests: apt-get install nodejs npm" >&2
  exit 2
fi

if ! command -v javac >/dev/null || [ ! -f /usr/share/java/amqp-client.jar ]; then
  echo "run.sh: javac and the Java client are needed: apt-get install default-jdk-headless librabbitmq-client-java" >&2
  exit 2
fi
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/rabbitmq/amqp091-go ]; then
  echo "run.sh: the Go tests need: apt-get install golang-go golang-github-rabbitmq-amqp091-go-dev" >&2
  exit 2
fi

# amqplib and playwright-core (the console test), exactly as locked in package-lock.json.
(cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

export INTEROP_BROKER="$broker" INTEROP_WARREN="$warren"
exec "$python" "$here/python/run_tests.py" ${args[@]+"${args[@]}"}
