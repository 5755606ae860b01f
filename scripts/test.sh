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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== browser tests"; scripts/browser-test.sh
