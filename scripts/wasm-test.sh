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
# Generous waits for chromedriver and the page: CI machines are loaded.
export WASM_BINDGEN_TEST_DRIVER_TIMEOUT="${WASM_BINDGEN_TEST_DRIVER_TIMEOUT:-60}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"

echo "== cargo test -p shoal-web (wasm32, headless Chromium)"
# --release: shares the standard library and dependencies scripts/wasm-build.sh
# built (a debug profile would build them all a second time, minutes cold).
# --lib --tests: the doc tests would run rustdoc for wasm32, which has nothing to run there.
cargo test -p shoal-web --release --lib --tests "${WASM_CARGO_FLAGS[@]}"
