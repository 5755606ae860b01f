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
# The same flags as scripts/wasm-build.sh (profile wasm, --lib --tests: the
# doc tests would run rustdoc for wasm32, which has nothing to run there),
# so after the build nothing is compiled again; run alone, this builds it.
cargo test "${WASM_CARGO_FLAGS[@]}" --no-run
wasm_bindgen_ready
cargo test "${WASM_CARGO_FLAGS[@]}"
