// Two real `shoal serve` daemons for the browser tests: fresh data
// directories, one shared group secret (--secret-file), loopback only,
// mDNS off. Their pids go to PIDS_FILE so scripts/browser-test.sh can kill
// them whatever happens to this process.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
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

/** Initializes `name`'s data directory and starts its daemon; `extra`: more `serve` arguments. */
export async function startDaemon(tmp, name, extra = []) {
  const home = path.join(tmp, name);
  const data = path.join(home, 'data');
  fs.mkdirSync(home, { recursive: true });
  const env = environment(home);
  execFileSync(BIN, ['--data', data, 'init'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const secretFile = path.join(tmp, 'group-secret');
  if (!fs.existsSync(secretFile)) fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const log = path.join(home, 'serve.log');
  const child = spawn(
    BIN,
    ['--data', data, 'serve', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', '127.0.0.1:0', '--secret-file', secretFile, ...extra],
    { env, stdio: ['ignore', fs.openSync(path.join(home, 'serve.out'), 'w'), fs.openSync(log, 'w')] },
  );
  children.push(child);
  if (process.env.PIDS_FILE) fs.appendFileSync(process.env.PIDS_FILE, `${child.pid}\n`);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = signal || code;
  });
  const info = await waitFor(`${name}'s daemon.json`, () => {
    if (exited !== null) throw new Error(`shoal serve exited (${exited}):\n${fs.readFileSync(log, 'utf8')}`);
    try {
      return JSON.parse(fs.readFileSync(path.join(data, 'daemon.json'), 'utf8'));
    } catch {
      return null;
    }
  });
  const token = fs.readFileSync(path.join(data, 'token'), 'utf8').trim();
  const node = {
    name,
    data,
    log,
    info,
    token,
    http: info.http,
    peerId: info.peer_id,
    address: info.listen[0],
    url: `http://${info.http}`,
    child,
    logText: () => fs.readFileSync(log, 'utf8'),
  };
  node.api = (method, route, body) => api(node, method, route, body);
  return node;
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

/** Stops every daemon started here: SIGTERM, then SIGKILL after 5 s. */
export async function stopDaemons() {
  await Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
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
