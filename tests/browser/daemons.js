// Two real `shoal serve` daemons for the browser tests: fresh data
// directories, one shared group secret (--secret-file), loopback only,
// mDNS off; and a `shoal relay` on a WebSocket listener for the tab's
// relayed connections. Their pids go to PIDS_FILE so scripts/browser-test.sh can kill
// them whatever happens to this process.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const BIN = process.env.SHOAL_BIN || path.join(ROOT, 'target', 'debug', 'shoal');

/** 64 hex digits: a raw group key (no passphrase stretching to wait for). */
export const SECRET = '5eedc0de'.repeat(8);

const children = [];

function environment(home) {
  const env = { ...process.env, HOME: home, RUST_LOG: process.env.RUST_LOG || 'info' };
  for (const name of ['SHOAL_DATA', 'SHOAL_SECRET', 'XDG_DATA_HOME']) delete env[name];
  return env;
}

/** Polls `fn` until it returns a truthy value; throws `what` after `ms`. */
export async function waitFor(what, fn, ms = 30000, every = 200) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/**
 * Initializes `name`'s data directory and starts its daemon; `extra`: more
 * `serve` arguments; `secret`: the group secret file's text (a passphrase
 * needs its own `tmp`: the secret file is shared by the daemons of one).
 */
export async function startDaemon(tmp, name, extra = [], { secret = SECRET } = {}) {
  const home = path.join(tmp, name);
  const data = path.join(home, 'data');
  fs.mkdirSync(home, { recursive: true });
  const env = environment(home);
  execFileSync(BIN, ['--data', data, 'init'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const secretFile = path.join(tmp, 'group-secret');
  if (!fs.existsSync(secretFile)) fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const node = { name, data, home, env, args: ['--data', data, 'serve', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', '127.0.0.1:0', '--secret-file', secretFile, ...extra] };
  node.api = (method, route, body) => api(node, method, route, body);
  node.logText = () => fs.readFileSync(node.log, 'utf8');
  await serveDaemon(node);
  return node;
}

/** Starts (again) the daemon of `node` on its data directory; fills in its addresses. */
async function serveDaemon(node) {
  node.log = path.join(node.home, 'serve.log');
  // The previous run's daemon.json must not be taken for this one's.
  fs.rmSync(path.join(node.data, 'daemon.json'), { force: true });
  const child = spawn(BIN, node.args, {
    env: node.env,
    stdio: ['ignore', fs.openSync(path.join(node.home, 'serve.out'), 'a'), fs.openSync(node.log, 'a')],
  });
  children.push(child);
  if (process.env.PIDS_FILE) fs.appendFileSync(process.env.PIDS_FILE, `${child.pid}\n`);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = signal || code;
  });
  const info = await waitFor(`${node.name}'s daemon.json`, () => {
    if (exited !== null) throw new Error(`shoal serve exited (${exited}):\n${fs.readFileSync(node.log, 'utf8')}`);
    try {
      return JSON.parse(fs.readFileSync(path.join(node.data, 'daemon.json'), 'utf8'));
    } catch {
      return null;
    }
  });
  Object.assign(node, {
    info,
    token: fs.readFileSync(path.join(node.data, 'token'), 'utf8').trim(),
    http: info.http,
    peerId: info.peer_id,
    address: info.listen[0],
    url: `http://${info.http}`,
    child,
  });
  return node;
}

/**
 * Starts `shoal relay` for the group of `secret`, listening on WebSocket
 * only (a loopback port, announced as its external address: a relay grants
 * reservations only with one). Resolves to `{ peerId, address (its /ws
 * address ending in /p2p/<id>), stats() (its stats.json) }`.
 */
export async function startRelay(tmp, name = 'relay', { secret = SECRET } = {}) {
  const home = path.join(tmp, name);
  fs.mkdirSync(home, { recursive: true });
  const env = environment(home);
  const secretFile = path.join(home, 'group-secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const scratch = path.join(home, 'token-data');
  execFileSync(BIN, ['--data', scratch, 'init'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const token = execFileSync(BIN, ['--data', scratch, 'relay-token', '--secret-file', secretFile], { env }).toString().trim();
  const ws = `/ip4/127.0.0.1/tcp/${await freePort()}/ws`;
  const dir = path.join(home, 'relay');
  const out = path.join(home, 'relay.out');
  const log = path.join(home, 'serve.log');
  const child = spawn(BIN, ['relay', '--dir', dir, '--token', token, '--listen', ws, '--external-address', ws], {
    env,
    stdio: ['ignore', fs.openSync(out, 'a'), fs.openSync(log, 'a')],
  });
  children.push(child);
  if (process.env.PIDS_FILE) fs.appendFileSync(process.env.PIDS_FILE, `${child.pid}\n`);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = signal || code;
  });
  const info = await waitFor(`${name}'s listen line`, () => {
    if (exited !== null) throw new Error(`shoal relay exited (${exited}):\n${fs.readFileSync(log, 'utf8')}`);
    const line = fs.readFileSync(out, 'utf8').split('\n')[0];
    try {
      return JSON.parse(line);
    } catch {
      return null;
    }
  });
  return {
    name,
    child,
    peerId: info.peer_id,
    listening: info.listening,
    address: `${ws}/p2p/${info.peer_id}`,
    stats: () => {
      try {
        return JSON.parse(fs.readFileSync(path.join(dir, 'stats.json'), 'utf8'));
      } catch {
        return {};
      }
    },
  };
}

/** Stops `node`'s daemon (SIGTERM, SIGKILL after 5 s); its data stays. */
export function stopDaemon(node) {
  return stopChild(node.child);
}

/** Starts `node`'s daemon again on the same data (after stopDaemon). */
export function restartDaemon(node) {
  return serveDaemon(node);
}

/** The daemon's WebSocket address for browser tabs (from /apps/daemon.json, once listening). */
export async function websocketAddress(node) {
  return waitFor(`${node.name}'s WebSocket address`, async () => {
    const response = await fetch(`${node.url}/apps/daemon.json`);
    const daemon = await response.json();
    return daemon.websocket && daemon.websocket[0];
  });
}

/** A free TCP port on loopback (for a listener that must keep its port across restarts). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** One call to a daemon's HTTP API: `{ status, body }`. */
export async function api(node, method, route, body) {
  const headers = { Authorization: `Bearer ${node.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${node.url}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Stops one child: SIGTERM, then SIGKILL after 5 s. */
function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Stops every daemon started here: SIGTERM, then SIGKILL after 5 s. */
export async function stopDaemons() {
  await Promise.all(children.map(stopChild));
}

process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

let ownTemp = null;

/** Where the data directories go: $SHOAL_BROWSER_TMP (the script's), or a new temporary one. */
export function tempDir() {
  if (process.env.SHOAL_BROWSER_TMP) {
    fs.mkdirSync(process.env.SHOAL_BROWSER_TMP, { recursive: true });
    return process.env.SHOAL_BROWSER_TMP;
  }
  ownTemp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-browser-'));
  return ownTemp;
}

/** Removes the temporary directory made by tempDir (the script removes its own). */
export function removeTempDir() {
  if (ownTemp) fs.rmSync(ownTemp, { recursive: true, force: true });
  ownTemp = null;
}
