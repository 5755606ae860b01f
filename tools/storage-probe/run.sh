#!/usr/bin/env bash
# Measures browser storage alone (no Shoal), as docs/web.md reports under
# "What browser storage allows here": durable single puts/s through
# IndexedDB from the page, and through SQLite on OPFS in a dedicated Worker
# (called from the page, and inside the worker). Three rounds, alternating.
# Needs Debian's wasm toolchain (scripts/wasm-env.sh installs it), clang and
# chromium + chromedriver; installs wasm-bindgen-cli 0.2.129 into ./.bin.
# Run on a quiet machine; nothing else may be building.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
source scripts/wasm-env.sh
command -v clang >/dev/null || wasm_apt_install clang
command -v chromedriver >/dev/null || wasm_apt_install chromium chromium-driver
export CARGO_TARGET_DIR="${PROBE_TARGET_DIR:-$here/target}"
cd "$here"
if [ "$(.bin/bin/wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != 0.2.129 ]; then
  RUSTC=$(command -v rustc) cargo install wasm-bindgen-cli --version 0.2.129 --locked \
    --no-default-features --root "$here/.bin"
fi
cargo build --locked --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
wasm_bindgen_ready
.bin/bin/wasm-bindgen --target web --out-dir www/pkg \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/storage_probe.wasm"
for round in 1 2 3; do
  echo "== round $round"
  python3 drive.py sqlite.html run '["NORMAL","WAL",3000]'
  python3 drive.py idb.html shoal_like '["strict",1000]' '["relaxed",1000]'
  python3 drive.py idb.html run '["strict","none",1000]' '["relaxed","none",1000]'
done
python3 drive.py sqlite.html run '["FULL","WAL",2000]'
