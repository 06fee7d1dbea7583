#!/usr/bin/env bash
# scripts/run.sh and scripts/build.sh with cmake and the package installer stubbed out (runs in
# milliseconds, from ctest): run.sh builds only the warren target, in build-release, and passes
# its arguments to warren; build.sh passes targets to `cmake --build`, and none means all.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/repo/scripts" "$tmp/bin"
cp "$repo/scripts/run.sh" "$repo/scripts/build.sh" "$tmp/repo/scripts/"
printf '#!/bin/sh\nexit 0\n' >"$tmp/repo/scripts/install-deps.sh"
# The stub cmake logs its arguments; a build leaves a warren that prints its own arguments.
cat >"$tmp/bin/cmake" <<'EOF'
#!/bin/sh
echo "cmake $*" >>"$CMAKE_LOG"
if [ "$1" = --build ]; then
  mkdir -p "$2/broker"
  printf '#!/bin/sh\necho "warren $*"\n' >"$2/broker/warren"
  chmod +x "$2/broker/warren"
fi
EOF
chmod +x "$tmp/bin/cmake" "$tmp/repo/scripts/install-deps.sh"
export PATH="$tmp/bin:$PATH" CMAKE_LOG="$tmp/cmake.log" WARREN_JOBS=2

fail() { echo "FAIL: $*" >&2; cat "$CMAKE_LOG" >&2; exit 1; }

out="$("$tmp/repo/scripts/run.sh" --port 5673 --log-level debug)"
[ "$out" = "warren --data-dir $tmp/repo/data --port 5673 --log-level debug" ] || fail "run.sh ran warren as: $out"
out="$("$tmp/repo/scripts/run.sh" --data-dir /elsewhere)"
[ "$out" = "warren --data-dir /elsewhere" ] || fail "run.sh with --data-dir ran warren as: $out"
grep -qx "cmake --build build-release -j 2 --target warren" "$CMAKE_LOG" ||
  fail "run.sh must build only the warren target of build-release"

: >"$CMAKE_LOG"
"$tmp/repo/scripts/build.sh" debug >/dev/null
grep -qx "cmake --build build -j 2" "$CMAKE_LOG" || fail "build.sh without a target must build everything"

: >"$CMAKE_LOG"
"$tmp/repo/scripts/build.sh" asan build-x warren warren_broker_tests >/dev/null
grep -qx "cmake --build build-x -j 2 --target warren warren_broker_tests" "$CMAKE_LOG" ||
  fail "build.sh must pass its targets to cmake --build"
echo "ok"
