#!/usr/bin/env bash
# Builds the browser peer (crates/shoal-web) for wasm32 and generates its
# JavaScript glue and TypeScript types with wasm-bindgen into
# target/wasm/pkg/ (shoal_web.js, shoal_web.d.ts, shoal_web_bg.wasm; not
# committed). Installs the toolchain it needs (scripts/wasm-env.sh). Prints
# the .wasm's size, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh

echo "== cargo build -p shoal-web (wasm32, release)"
cargo build -p shoal-web --release "${WASM_CARGO_FLAGS[@]}"
pkg="$CARGO_TARGET_DIR/pkg"
wasm-bindgen --target web --out-dir "$pkg" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/shoal_web.wasm"
raw=$(stat -c %s "$pkg/shoal_web_bg.wasm")
gz=$(gzip -9c "$pkg/shoal_web_bg.wasm" | wc -c)
echo "== $pkg: shoal_web_bg.wasm $raw bytes, $gz gzipped"
