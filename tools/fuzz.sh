#!/usr/bin/env bash
# Builds the codec's libFuzzer targets in build-fuzz/ (clang, ASan+UBSan) and runs each for a
# bounded time. Exits non-zero if a fuzzer finds a crash, a leak, a timeout or a failed
# invariant; the input that did it is left in build-fuzz/fuzz-artifacts/.
#
# usage: tools/fuzz.sh [seconds per fuzzer]     (default 60; the test run uses 10)
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [seconds per fuzzer]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"

cxx="${WARREN_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
if [ -z "$cxx" ]; then
  echo "fuzz.sh: clang++ not found (install clang and libclang-rt-14-dev)" >&2
  exit 1
fi

jobs="$(nproc 2>/dev/null || echo 2)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DWARREN_FUZZ=ON -DWARREN_TESTS=OFF -DWARREN_SANITIZE=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$jobs" --target warren_fuzz_frames warren_fuzz_field_table warren_fuzz_seeds

# Seeds are regenerated each run; the corpus each fuzzer grows is kept between runs.
seeds="$build/fuzz-seeds"
rm -rf "$seeds"
"$build/tests/fuzz/warren_fuzz_seeds" "$seeds"
mkdir -p "$build/fuzz-artifacts"

status=0
for name in frames field_table; do
  corpus="$build/fuzz-corpus/$name"
  mkdir -p "$corpus"
  echo "== fuzzing $name for ${seconds}s"
  if ! "$build/tests/fuzz/warren_fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=8192 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$name-" \
      "$corpus" "$seeds/$name" 2>"$build/fuzz-$name.log"; then
    status=1
    echo "fuzz.sh: warren_fuzz_$name FAILED; log in $build/fuzz-$name.log:" >&2
    tail -n 60 "$build/fuzz-$name.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$build/fuzz-$name.log" || true
    grep -E 'cov: [0-9]+' "$build/fuzz-$name.log" | tail -n 1 || true
  fi
done

if [ "$status" -eq 0 ]; then
  echo "fuzz.sh: no crashes"
fi
exit "$status"
