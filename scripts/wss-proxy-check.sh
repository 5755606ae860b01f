#!/usr/bin/env bash
# Checks the wss:// reverse-proxy example of docs/web.md against a real
# daemon: the nginx site is taken from the doc as written (only the
# certificate paths, the ports and the listen address are replaced: a
# self-signed certificate, free loopback ports), `nginx -t` must accept it,
# a WebSocket upgrade through TLS must be answered `101 Switching Protocols`
# by the daemon's libp2p WebSocket listener, and a plain request must reach
# the daemon's HTTP API. Installs nginx-light when run as root and missing.
# Not part of scripts/test.sh; run it after changing the example.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
  else
    echo "error: nginx missing (Debian: apt-get install nginx-light)" >&2
    exit 1
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build -p shoal-cli --locked
SHOAL="${CARGO_TARGET_DIR:-$PWD/target}/debug/shoal"

work="$(mktemp -d "${TMPDIR:-/tmp}/shoal-wss.XXXXXX")"
daemon_pid=""
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
ws_port=$(free_port)
tls_port=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# The example as docs/web.md prints it.
awk '/^```nginx$/{on=1; next} on && /^```$/{exit} on' docs/web.md >"$work/example.conf"
grep -q 'map $http_upgrade' "$work/example.conf"
sed -e "s#/etc/letsencrypt/live/shoal.example.org/fullchain.pem#$work/cert.pem#" \
    -e "s#/etc/letsencrypt/live/shoal.example.org/privkey.pem#$work/key.pem#" \
    -e "s#127.0.0.1:4041#127.0.0.1:$http_port#" \
    -e "s#127.0.0.1:4042#127.0.0.1:$ws_port#" \
    -e "s#listen 443 ssl;#listen 127.0.0.1:$tls_port ssl;#" \
    -e '/listen \[::\]:443 ssl;/d' \
    "$work/example.conf" >"$work/site.conf"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
    access_log $work/access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $work/site.conf;
}
EOF
"$NGINX" -t -c "$work/nginx.conf" -p "$work"

"$SHOAL" --data "$work/data" init >/dev/null
SHOAL_SECRET=$(printf 'ab%.0s' $(seq 32)) "$SHOAL" --data "$work/data" serve \
  --listen /ip4/127.0.0.1/tcp/0 --no-mdns --http "127.0.0.1:$http_port" \
  --ws-listen "/ip4/127.0.0.1/tcp/$ws_port/ws" >"$work/serve.out" 2>"$work/serve.err" &
daemon_pid=$!
for _ in $(seq 100); do
  [ -f "$work/data/daemon.json" ] && break
  sleep 0.1
done
"$NGINX" -c "$work/nginx.conf" -p "$work"
sleep 0.5

upgrade="GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
answer=$( (printf "$upgrade"; sleep 2) | timeout 10 openssl s_client -quiet \
  -connect "127.0.0.1:$tls_port" 2>/dev/null | head -1 | tr -d '\r' || true)
if [ "$answer" != "HTTP/1.1 101 Switching Protocols" ]; then
  echo "error: a WebSocket upgrade through the proxy got: '$answer'" >&2
  exit 1
fi
api=$(curl -sk "https://127.0.0.1:$tls_port/api/node")
case "$api" in
  *'"code":"unauthorized"'*) ;;
  *) echo "error: a plain request through the proxy got: $api" >&2; exit 1 ;;
esac
echo "ok: nginx -t accepts the example; wss upgrade answered 101 by the daemon; https reaches the HTTP API"
