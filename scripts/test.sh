#!/usr/bin/env bash
# Runs Shoal's whole test suite on a fresh machine: formatting, lints, and every
# unit, property, integration and doc test. Installs what it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

# The mDNS test runs two nodes in network namespaces joined by a veth pair;
# it needs `ip` (iproute2) and root, and skips itself, saying why, without them.
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing iproute2 (for the mDNS namespace test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

# The service test checks the generated systemd unit with `systemd-analyze
# verify` (Debian's systemd package; nothing is started), and only checks the
# unit's text, saying so, without it.
if ! command -v systemd-analyze >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing systemd (for systemd-analyze verify of the service unit)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# The NAT lab tests (crates/shoal-cli/tests/it/natlab.rs, scripts/natlab.sh)
# build routers doing NAT with nftables in network namespaces; they need root
# and nftables, and skip themselves, saying why, without them.
if ! command -v nft >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing nftables (for the NAT lab tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi

# The OpenAPI test (crates/shoal-cli/tests/it/openapi_valid.rs) runs a real
# validator, openapi-spec-validator from PyPI, and the metrics test
# (crates/shoal-cli/tests/it/metrics.rs) parses /metrics with the Python
# prometheus_client package's parsers: both from PyPI, in one virtualenv.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/shoal-openapi-venv"
if [ ! -x "$venv/bin/openapi-spec-validator" ] || ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing python3-venv (for the OpenAPI validator)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
  fi
  echo "== installing openapi-spec-validator and prometheus-client (PyPI) in $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openapi-spec-validator prometheus-client
fi
export SHOAL_OPENAPI_VALIDATOR="$venv/bin/openapi-spec-validator"
export SHOAL_PROMETHEUS_PYTHON="$venv/bin/python"

# A fresh clone builds everything once: incremental state would only take
# disk (a CI machine's disk once filled mid-suite). Each step's header says
# how much space is left.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step() { echo "== $* [$(df -h --output=avail . | tail -n 1 | tr -d ' ') free on disk]"; }

echo "== cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "module cycles (no two files import each other in a circle)"
scripts/module-cycles.py crates
step "cargo test"
cargo test --workspace --locked
# Every fuzz target for 15 s (fuzz/, its own workspace and target dir;
# installs cargo-fuzz; the long runs are in the README's Fuzzing section).
step "fuzz"
scripts/fuzz.sh 15
# Nothing later uses the fuzz build (about 0.7 GB): its disk goes back to
# the steps after it. A failing target stopped the script above, build kept.
rm -rf fuzz/target
# The browser peer (crates/shoal-web): built for wasm32 with Debian's
# toolchain, its storage tests in headless Chromium (scripts/wasm-env.sh
# installs what is missing; see docs/web.md).
step "wasm build"; scripts/wasm-build.sh
step "wasm tests"; scripts/wasm-test.sh
# After the wasm steps: `shoal-bench browser` needs their build and chromedriver.
step "bench smoke (every benchmark scenario once, small; checks figures' JSON, not speed)"
scripts/bench-smoke.sh
step "browser tests"; scripts/browser-test.sh
step "done"
