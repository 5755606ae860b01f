#!/usr/bin/env bash
# Runs the browser peer's wasm-bindgen tests (crates/shoal-web/tests) in
# headless Chromium through chromedriver (wasm-bindgen-test-runner; options
# in crates/shoal-web/webdriver.json). Installs the toolchain
# (scripts/wasm-env.sh) and, on Debian as root, chromium and
# chromium-driver when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "== installing chromium and chromium-driver"
  wasm_apt_install chromium chromium-driver
fi
export CHROMEDRIVER=/usr/bin/chromedriver
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner

echo "== cargo test -p shoal-web (wasm32, headless Chromium)"
# --lib --tests: the doc tests would run rustdoc for wasm32, which has nothing to run there.
cargo test -p shoal-web --lib --tests "${WASM_CARGO_FLAGS[@]}"
