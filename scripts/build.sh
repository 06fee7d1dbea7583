#!/usr/bin/env bash
# Configures and builds Warren. Usage: scripts/build.sh [release|debug|asan] [build dir] [target...]
# With no target, builds everything (broker, unit tests, benchmarks, fuzz targets if enabled);
# scripts/run.sh names only `warren`, the broker it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-release}"
case "$kind" in
  release) dir="${2:-build-release}"; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  debug)   dir="${2:-build}";         flags=(-DCMAKE_BUILD_TYPE=Debug) ;;
  asan)    dir="${2:-build-asan}";    flags=(-DCMAKE_BUILD_TYPE=Debug -DWARREN_SANITIZE=ON) ;;
  *) echo "usage: $0 [release|debug|asan] [dir] [target...]" >&2; exit 2 ;;
esac
targets=("${@:3}")
jobs="${WARREN_JOBS:-$(nproc)}"
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs" ${targets[@]+--target "${targets[@]}"}
