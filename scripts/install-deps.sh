#!/usr/bin/env bash
# Installs the Debian packages Warren needs that are missing, and the web console's npm
# dependency (uPlot, from mgmt/console/package-lock.json). Idempotent and quick when everything
# is there. Usage: scripts/install-deps.sh [build|test|bench]
#   build  compiler, CMake, the libraries, OpenSSL 3 for TLS, Node.js/npm and the console's locked
#          npm packages (default)
#   test   + pika, Celery, amqp-tools, the Java client with a JDK, Go with the amqp091-go client,
#          clang (libFuzzer), the openssl command (the TLS tests make their certificates with it),
#          python3-prometheus-client (the metrics test parses a scrape with it) and Chromium (the
#          console's browser test)
#   bench  + rabbitmq-server (the comparison runs against it), Go and the Go client (warren-bench-go)
set -euo pipefail

what="${1:-build}"
packages=(g++ cmake make pkg-config libasio-dev libfmt-dev nlohmann-json3-dev catch2 libssl-dev libsodium-dev libpcre2-dev node-llhttp)
if [[ "$what" == test || "$what" == bench ]]; then
  packages+=(python3 python3-pika python3-celery amqp-tools clang libclang-rt-14-dev procps
             librabbitmq-client-java libslf4j-java default-jdk-headless
             golang-go golang-github-rabbitmq-amqp091-go-dev openssl python3-prometheus-client chromium)
fi
if [[ "$what" == bench ]]; then
  packages+=(rabbitmq-server golang-go golang-github-rabbitmq-amqp091-go-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (the console's uPlot at build time, the amqplib and browser tests): a machine
# may have them from elsewhere (nodesource); take Debian's only if absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts a RabbitMQ on 5672; the bench starts its own on a free port.
  if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then
    $SUDO systemctl stop rabbitmq-server 2>/dev/null || $SUDO service rabbitmq-server stop 2>/dev/null || true
    $SUDO systemctl disable rabbitmq-server 2>/dev/null || true
  fi
fi

# The console's front-end dependency, exactly as locked; the build embeds it from node_modules
# (mgmt/console/CMakeLists.txt) and never downloads. Skipped when the lockfile is unchanged
# since the last install.
console="$(cd "$(dirname "$0")/.." && pwd)/mgmt/console"
if ! cmp -s "$console/package-lock.json" "$console/node_modules/.warren-installed-lock.json"; then
  echo "installing the console's npm packages (npm ci in mgmt/console)"
  (cd "$console" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$console/package-lock.json" "$console/node_modules/.warren-installed-lock.json"
fi
