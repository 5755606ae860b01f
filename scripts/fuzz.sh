#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each
# (default 60), one after the other, starting from the committed seeds
# (fuzz/seeds/TARGET) plus whatever an earlier run left in fuzz/corpus/TARGET.
# Installs cargo-fuzz from crates.io if missing. Builds without a sanitizer
# (`-s none`), which works on the stable toolchain with RUSTC_BOOTSTRAP=1,
# into fuzz/target (its own target dir, never the main workspace's).
#
# A crash or a timeout leaves its input in fuzz/artifacts/TARGET/ and makes
# the script exit non-zero (after running the other targets). The last line
# of output is one JSON object:
#   {"scenario":"fuzz","targets":N,"seconds_each":S,"execs":E,"crashes":C,"timeouts":T}
# Replay a crash: fuzz/target/x86_64-unknown-linux-gnu/release/TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

# The lock file must be current, as the main workspace's is (--locked).
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

echo "== cargo fuzz build (no sanitizer, fuzz/target)"
build=(cargo fuzz build -s none --codegen-units 16 --target-dir fuzz/target)
"${build[@]}"
bin_dir="fuzz/target/x86_64-unknown-linux-gnu/release"

targets=$(cargo fuzz list)
count=0
execs=0
crashes=0
timeouts=0
for target in $targets; do
  count=$((count + 1))
  corpus="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts" "fuzz/seeds/$target"
  log="$(mktemp)"
  echo "== $target: ${seconds}s"
  set +e
  "$bin_dir/$target" "$corpus" "fuzz/seeds/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  status=$?
  set -e
  ran=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  ran=${ran:-0}
  execs=$((execs + ran))
  if [ "$status" -ne 0 ]; then
    if grep -q "libFuzzer: timeout" "$log"; then
      timeouts=$((timeouts + 1))
      kind="timeout"
    else
      crashes=$((crashes + 1))
      kind="crash"
    fi
    echo "!! $target: $kind (exit $status); input saved in $artifacts/:"
    grep -m 20 -E "panicked|ERROR|SUMMARY|Test unit written" "$log" || tail -20 "$log"
  else
    echo "   $target: $ran execs, $(find "$corpus" -type f | wc -l) inputs in its corpus"
  fi
  rm -f "$log"
done

printf '{"scenario":"fuzz","targets":%d,"seconds_each":%d,"execs":%d,"crashes":%d,"timeouts":%d}\n' \
  "$count" "$seconds" "$execs" "$crashes" "$timeouts"
[ "$crashes" -eq 0 ] && [ "$timeouts" -eq 0 ]
