#!/usr/bin/env bash
# Builds the browser peer (crates/shoal-web) for wasm32 and generates its
# JavaScript glue and TypeScript types with wasm-bindgen into
# target/wasm/pkg/ (shoal_web.js, shoal_web.d.ts, shoal_web_bg.wasm; not
# committed), beside the worker route's scripts (crates/shoal-web/js:
# shoal_worker.js, shoal_client.js and its types). Installs the toolchain it needs (scripts/wasm-env.sh). Prints
# the .wasm's size, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh

echo "== cargo build -p shoal-web (wasm32, profile wasm, with its test binaries)"
# The test binaries are built here too, in the same invocation: the
# library (a cdylib for the package) is then compiled once with the
# features the tests need, and scripts/wasm-test.sh only runs them.
# Its wasm-only code is not in the workspace's clippy run (which builds for
# the host), so a warning here fails the build (cargo repeats a cached
# crate's warnings, so a no-op build still shows them).
build_log="$(mktemp)"
trap 'rm -f "$build_log"' EXIT
cargo build "${WASM_CARGO_FLAGS[@]}" 2>&1 | tee "$build_log"
if grep -q '^warning: `shoal' "$build_log"; then
  echo "error: the wasm32 build of shoal-web has warnings (above); fix them" >&2
  exit 1
fi
wasm_bindgen_ready
pkg="$CARGO_TARGET_DIR/pkg"
# Without the name section (function names for stack traces: 0.2 MB
# gzipped), as a page ships it.
wasm-bindgen --target web --remove-name-section --out-dir "$pkg" \
  "$WASM_PROFILE_DIR/shoal_web.wasm"
# The worker route (docs/web.md): a page's store in a dedicated Worker.
cp crates/shoal-web/js/shoal_worker.js crates/shoal-web/js/shoal_client.js \
  crates/shoal-web/js/shoal_client.d.ts "$pkg/"
raw=$(stat -c %s "$pkg/shoal_web_bg.wasm")
gz=$(gzip -9c "$pkg/shoal_web_bg.wasm" | wc -c)
echo "== $pkg: shoal_web_bg.wasm $raw bytes, $gz gzipped"
