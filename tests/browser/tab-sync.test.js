// The browser peer syncing with real daemons (issue 16), in Debian's
// headless Chromium through playwright-core: a tab connects to a `shoal
// serve` daemon over libp2p on WebSocket (store.connect), proves group
// membership as native peers do, and then — with the tab's store in the
// page on IndexedDB, and again in a dedicated Worker on OPFS through
// WorkerStore (the route the notes app takes):
// - a write in the tab reaches the daemon and one on the daemon reaches the
//   tab (through the tab's change feed);
// - concurrent edits of one record in the tab and on the daemon converge
//   field by field, to the same record on both;
// - with the daemon stopped the tab keeps writing, a reload keeps those
//   writes, and they reach the daemon once it is back;
// - a tab with the wrong secret is refused (`wrong-secret`) and receives
//   nothing;
// - the tab's peer id is stable across reloads (daemons keep cursors per
//   peer);
// and, in the page: bad addresses and secrets are named errors, and an
// invite code or a passphrase with the group's salt work as the secret too;
// - through the group's relay (`shoal relay` listening on /ws, a daemon
//   reserved on it with --relay): a tab given only the circuit address
//   proves membership to the relay, reaches the daemon through it and
//   syncs both ways; a tab with the wrong secret is refused by the relay
//   and receives nothing.
//
// Needs the wasm build (SHOAL_WEB_PKG, default target/wasm/pkg) and a
// `shoal` binary (SHOAL_BIN). Run by scripts/browser-test.sh, or directly:
// node --test tests/browser/tab-sync.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  ROOT, SECRET, freePort, removeTempDir, restartDaemon, startDaemon, startRelay, stopDaemon, stopDaemons,
  tempDir, waitFor, websocketAddress,
} from './daemons.js';

const PKG = process.env.SHOAL_WEB_PKG || path.join(ROOT, 'target', 'wasm', 'pkg');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PAGE = path.join(ROOT, 'tests', 'browser', 'web-store', 'index.html');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

let server;
let origin;
let browser;
let context;
let tmp;
let daemon;
let ws;

/** Serves the test page at / and the wasm build under /pkg/ (loopback only). */
function serve() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://x');
      const file = url.pathname === '/' ? PAGE
        : url.pathname.startsWith('/pkg/') ? path.join(PKG, path.basename(url.pathname)) : null;
      if (!file || !fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

/** A new tab with the page loaded and `window.Store` ready. */
async function openTab() {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  if (process.env.SHOAL_TAB_CONSOLE) page.on('console', (message) => console.error(`tab: ${message.text()}`));
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.title === 'ready');
  return page;
}

/** Runs `fn(arg)` in the page; a rejection comes back as `{error: code, message}`. */
function run(page, fn, arg) {
  if (process.env.SHOAL_TAB_CONSOLE) console.error(`run: ${fn.toString().slice(0, 70)}`);
  return page.evaluate(async ([source, arg]) => {
    try {
      return await (0, eval)(source)(arg);
    } catch (e) {
      return { error: e.code || String(e), message: e.message };
    }
  }, [fn.toString(), arg]);
}

/**
 * Opens `name` in the page as `window.store` through `opener` (`Store` or
 * `WorkerStore`), its change feed collected in `window.changes`, and
 * connects it to `address` with `secret` (unless null): resolves to
 * connect's outcome.
 */
function openAndConnect(page, opener, name, address, secret, options) {
  return run(page, async ({ opener, name, address, secret, options }) => {
    window.store = await window[opener].open(name);
    window.changes = [];
    window.store.subscribe((change) => window.changes.push(change));
    if (secret === null) return { peerId: window.store.peerId };
    const started = performance.now();
    await window.store.connect(address, secret, options);
    return { peerId: window.store.peerId, ms: performance.now() - started };
  }, { opener, name, address, secret, options });
}

/** The record `id` of collection `c` on `node`, or null. */
async function onDaemon(node, c, id) {
  const { status, body } = await node.api('GET', `/api/collections/${c}/records/${id}`);
  return status === 200 ? body.value : null;
}

/** The record `id` of collection `c` in the page's store, or null. */
function inTab(page, c, id) {
  return run(page, ({ c, id }) => window.store.collection(c).get(id), { c, id });
}

/** The daemon's row for `peerId` in /api/peers. */
async function daemonPeer(node, peerId) {
  const { body } = await node.api('GET', '/api/peers');
  return (body.peers || []).find((p) => p.peer === peerId);
}

before(async () => {
  assert.ok(fs.existsSync(path.join(PKG, 'shoal_web.js')), `no wasm build in ${PKG}: run scripts/wasm-build.sh`);
  tmp = tempDir();
  // A fixed WebSocket port: the offline test restarts the daemon, and the
  // tab redials the address it knows.
  const port = await freePort();
  daemon = await startDaemon(tmp, 'tabsync', ['--ws-listen', `/ip4/127.0.0.1/tcp/${port}/ws`]);
  ws = await websocketAddress(daemon);
  server = await serve();
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  context = await browser.newContext();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) server.close();
  await stopDaemons();
  if (!process.env.KEEP_NODES) removeTempDir();
});

/**
 * Where the tab's store runs: in the page on IndexedDB (`Store`), or in a
 * dedicated Worker on OPFS called from the page (`WorkerStore`, what the
 * notes app uses). `tag` keeps each route's records apart on the daemon.
 */
const ROUTES = [
  { name: 'in the page, on IndexedDB', opener: 'Store', tag: '' },
  { name: 'through WorkerStore, on OPFS', opener: 'WorkerStore', tag: '-w' },
];

for (const route of ROUTES) {
  const { opener, tag } = route;
  describe(`a browser tab syncing with a daemon, its store ${route.name}`, () => {
    test('a write in the tab reaches the daemon, and one on the daemon reaches the tab', async () => {
      const page = await openTab();
      const opened = await openAndConnect(page, opener, 'sync-both-ways', ws, SECRET);
      assert.equal(opened.error, undefined, JSON.stringify(opened));
      const peers = await run(page, () => window.store.peers());
      assert.equal(peers.length, 1);
      assert.equal(peers[0].peer_id, daemon.peerId);
      assert.equal(peers[0].state, 'connected');
      assert.equal(peers[0].address, ws);
      // The daemon sees the tab as a peer, under the tab's peer id.
      await waitFor('the tab\'s row in the daemon\'s peers', async () => (await daemonPeer(daemon, opened.peerId))?.state === 'connected');

      await run(page, (id) => window.store.collection('notes').put(id, { title: 'tab', n: 1 }), `from-tab${tag}`);
      const arrived = await waitFor('the tab\'s write on the daemon', () => onDaemon(daemon, 'notes', `from-tab${tag}`));
      assert.deepEqual(arrived, { title: 'tab', n: 1 });

      const put = await daemon.api('PUT', `/api/collections/notes/records/from-daemon${tag}`, { title: 'daemon', n: 2 });
      assert.ok(put.status < 300, JSON.stringify(put.body));
      const got = await waitFor('the daemon\'s write in the tab', () => inTab(page, 'notes', `from-daemon${tag}`));
      assert.deepEqual(got, { title: 'daemon', n: 2 });
      // Subscribers saw it arrive through the change feed.
      const changes = await run(page, (id) => window.changes.filter((c) => c.id === id), `from-daemon${tag}`);
      assert.ok(changes.length >= 1, 'the change feed named the daemon\'s record');
      assert.deepEqual(changes.at(-1).value, { title: 'daemon', n: 2 });
      await waitFor('caught_up', async () => (await run(page, () => window.store.peers()))[0].caught_up);
      // Closing the store ends its connection: the daemon sees the tab go.
      await run(page, () => window.store.close());
      await waitFor('the tab gone from the daemon', async () => (await daemonPeer(daemon, opened.peerId))?.state !== 'connected');
      const closed = await run(page, ({ address, secret }) => window.store.connect(address, secret), { address: ws, secret: SECRET });
      assert.equal(closed.error, 'store-closed', JSON.stringify(closed));
      await page.close();
    });

    test('concurrent edits of one record in the tab and on the daemon converge field by field', async () => {
      const page = await openTab();
      const opened = await openAndConnect(page, opener, 'sync-concurrent', ws, SECRET);
      assert.equal(opened.error, undefined, JSON.stringify(opened));
      const id = `d1${tag}`;
      await run(page, (id) => window.store.collection('docs').put(id, { title: 'first', body: 'first', tag: 'first' }), id);
      await waitFor(`${id} on the daemon`, () => onDaemon(daemon, 'docs', id));
      // Apart: each side edits a different field, and both edit `tag`.
      await run(page, () => window.store.disconnect());
      assert.equal((await run(page, () => window.store.peers()))[0].state, 'disconnected');
      await run(page, (id) => window.store.collection('docs').patch(id, { title: 'tab title', tag: 'tab' }), id);
      const patched = await daemon.api('PATCH', `/api/collections/docs/records/${id}`, { body: 'daemon body', tag: 'daemon' });
      assert.ok(patched.status < 300, JSON.stringify(patched.body));
      // Together again: each side keeps the other's field; `tag`, written on
      // both, takes the later write's value on both.
      const reconnected = await run(page, ({ address, secret }) => window.store.connect(address, secret), { address: ws, secret: SECRET });
      assert.equal(reconnected?.error, undefined, JSON.stringify(reconnected));
      const converged = await waitFor('both sides equal', async () => {
        const [tab, node] = [await inTab(page, 'docs', id), await onDaemon(daemon, 'docs', id)];
        return tab && node && tab.title === 'tab title' && node.body === 'daemon body'
          && JSON.stringify(tab) === JSON.stringify(node) ? tab : null;
      });
      assert.equal(converged.title, 'tab title');
      assert.equal(converged.body, 'daemon body');
      assert.equal(converged.tag, 'daemon', 'the daemon wrote tag after the tab');
      await run(page, () => window.store.close());
      await page.close();
    });

    test('offline: the tab writes with the daemon stopped, a reload keeps the writes, and they reach the daemon when it is back', async () => {
      const page = await openTab();
      const opened = await openAndConnect(page, opener, 'sync-offline', ws, SECRET);
      assert.equal(opened.error, undefined, JSON.stringify(opened));
      const collection = `offline${tag}`;
      await stopDaemon(daemon);
      await waitFor('the tab notices', async () => (await run(page, () => window.store.peers()))[0].state !== 'connected');
      const written = await run(page, async (collection) => {
        const notes = window.store.collection(collection);
        for (let i = 0; i < 5; i++) await notes.put(`o${i}`, { i });
        return (await notes.list({})).records.length;
      }, collection);
      assert.equal(written, 5);
      const refused = await run(page, ({ address, secret }) => window.store.connect(address, secret), { address: ws, secret: SECRET });
      assert.equal(refused.error, 'unreachable', JSON.stringify(refused));

      await page.reload();
      await page.waitForFunction(() => document.title === 'ready');
      const kept = await run(page, async ({ opener, collection }) => {
        window.store = await window[opener].open('sync-offline', { wait: true });
        return { peerId: window.store.peerId, records: (await window.store.collection(collection).list({})).records };
      }, { opener, collection });
      assert.equal(kept.peerId, opened.peerId, 'the peer id survives a reload');
      assert.deepEqual(kept.records.map((r) => r.id), ['o0', 'o1', 'o2', 'o3', 'o4']);

      await restartDaemon(daemon);
      assert.equal(await websocketAddress(daemon), ws, 'the daemon is back at the same address');
      const back = await run(page, ({ address, secret }) => window.store.connect(address, secret), { address: ws, secret: SECRET });
      assert.equal(back?.error, undefined, JSON.stringify(back));
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await waitFor(`o${i} on the daemon`, () => onDaemon(daemon, collection, `o${i}`)), { i });
      }
      await run(page, () => window.store.close());
      await page.close();
    });

    test('a tab with the wrong secret is refused and receives nothing', async () => {
      const page = await openTab();
      const hidden = `s1${tag}`;
      const put = await daemon.api('PUT', `/api/collections/secret/records/${hidden}`, { hidden: true });
      assert.ok(put.status < 300, JSON.stringify(put.body));
      const wrong = 'ba'.repeat(32);
      const refused = await openAndConnect(page, opener, 'sync-stranger', ws, wrong);
      assert.equal(refused.error, 'wrong-secret', JSON.stringify(refused));
      const peers = await run(page, () => window.store.peers());
      assert.equal(peers[0].state, 'rejected');
      assert.match(peers[0].last_error, /secret/);
      const mine = `m1${tag}`;
      await run(page, (id) => window.store.collection('mine').put(id, { from: 'stranger' }), mine);
      // Nothing either way: give a session the time it would have needed.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      assert.equal(await inTab(page, 'secret', hidden), null);
      assert.deepEqual(await run(page, () => window.changes.filter((c) => c.collection !== 'mine')), []);
      assert.equal(await onDaemon(daemon, 'mine', mine), null);
      const row = await daemonPeer(daemon, await run(page, () => window.store.peerId));
      if (row) assert.notEqual(row.state, 'connected');
      await run(page, () => window.store.close());
      await page.close();
    });
  });
}

describe('a browser tab syncing with a daemon: secrets and addresses', () => {
  test('an invite code, and a passphrase with the group\'s salt, are group secrets too', async () => {
    const { body } = await daemon.api('GET', '/api/node');
    assert.match(body.invite || '', /^shoal[23]:/);
    let page = await openTab();
    const invited = await openAndConnect(page, 'Store', 'sync-invite', ws, body.invite);
    assert.equal(invited.error, undefined, JSON.stringify(invited));
    await run(page, () => window.store.close());
    await page.close();

    // A group whose secret is a passphrase: its salt is in its invite codes.
    const passphrase = 'correct horse battery staple';
    const other = await startDaemon(path.join(tmp, 'passphrase-group'), 'passphrase', [], { secret: passphrase });
    const code = (await other.api('GET', '/api/node')).body.invite;
    const salt = code.split(':')[1].split('.')[1];
    assert.match(salt, /^[0-9a-f]{32}$/);
    const otherWs = await websocketAddress(other);
    page = await openTab();
    const stretched = await openAndConnect(page, 'Store', 'sync-passphrase', otherWs, passphrase, { salt });
    assert.equal(stretched.error, undefined, JSON.stringify(stretched));
    console.log(`connect with a passphrase (Argon2id in the tab, then the handshake): ${Math.round(stretched.ms)} ms`);
    await run(page, () => window.store.collection('notes').put('p1', { via: 'passphrase' }));
    assert.deepEqual(await waitFor('p1 on the passphrase daemon', () => onDaemon(other, 'notes', 'p1')), { via: 'passphrase' });
    // The same passphrase under another salt is another key.
    const wrongSalt = await run(page, ({ address, secret }) => window.store.connect(address, secret, { salt: '00'.repeat(16) }), { address: ws, secret: passphrase });
    assert.equal(wrongSalt.error, 'wrong-secret', JSON.stringify(wrongSalt));
    await run(page, () => window.store.close());
    await page.close();
    await stopDaemon(other);
  });

  test('bad addresses and secrets are named errors', async () => {
    const page = await openTab();
    await openAndConnect(page, 'Store', 'sync-errors', ws, null);
    const attempt = (address, secret, options) =>
      run(page, ({ address, secret, options }) => window.store.connect(address, secret, options), { address, secret, options });
    assert.equal((await attempt('not an address', SECRET)).error, 'bad-address');
    assert.equal((await attempt(ws.replace(/\/p2p\/.*$/, ''), SECRET)).error, 'bad-address');
    assert.equal((await attempt(daemon.address, SECRET)).error, 'bad-address', 'a TCP address is not for browsers');
    assert.equal((await attempt(ws, 'short')).error, 'bad-secret');
    assert.equal((await attempt(ws, 'a long passphrase without its salt')).error, 'bad-secret');
    assert.equal((await attempt(ws, 'shoal2:nonsense@x')).error, 'bad-secret');
    const port = await freePort();
    const nobody = ws.replace(/\/tcp\/\d+\//, `/tcp/${port}/`);
    assert.equal((await attempt(nobody, SECRET)).error, 'unreachable');
    await run(page, () => window.store.close());
    await page.close();
  });
});

describe('a browser tab reaching a daemon through the group\'s relay', () => {
  let relay;
  let behind;
  let circuit;

  before(async () => {
    relay = await startRelay(tmp, 'relay');
    assert.deepEqual(relay.listening, [relay.address], 'the relay listens on WebSocket only');
    behind = await startDaemon(path.join(tmp, 'relayed-group'), 'behind-relay', ['--relay', relay.address]);
    await waitFor('the daemon\'s reservation on the relay', () => relay.stats().reservations_now >= 1);
    circuit = `${relay.address}/p2p-circuit/p2p/${behind.peerId}`;
  });

  test('a tab given only the circuit address syncs with the daemon both ways', async () => {
    const page = await openTab();
    const opened = await openAndConnect(page, 'Store', 'relay-both-ways', circuit, SECRET);
    assert.equal(opened.error, undefined, JSON.stringify(opened));
    const peers = await run(page, () => window.store.peers());
    assert.equal(peers.length, 1, 'the relay is no peer of the tab');
    assert.equal(peers[0].peer_id, behind.peerId);
    assert.equal(peers[0].state, 'connected');
    assert.equal(peers[0].address, circuit);
    // stats.json is rewritten every 2 s.
    await waitFor('the daemon\'s and the tab\'s admissions and the circuit in the relay\'s counters', () => {
      const stats = relay.stats();
      return stats.admitted >= 2 && stats.circuits_accepted >= 1;
    });
    await waitFor('the tab in the daemon\'s peers', async () => (await daemonPeer(behind, opened.peerId))?.state === 'connected');

    await run(page, () => window.store.collection('notes').put('tab-via-relay', { via: 'relay', n: 1 }));
    assert.deepEqual(await waitFor('the tab\'s write on the daemon', () => onDaemon(behind, 'notes', 'tab-via-relay')), { via: 'relay', n: 1 });
    const put = await behind.api('PUT', '/api/collections/notes/records/daemon-via-relay', { via: 'relay', n: 2 });
    assert.ok(put.status < 300, JSON.stringify(put.body));
    assert.deepEqual(await waitFor('the daemon\'s write in the tab', () => inTab(page, 'notes', 'daemon-via-relay')), { via: 'relay', n: 2 });
    const changes = await run(page, () => window.changes.filter((c) => c.id === 'daemon-via-relay'));
    assert.ok(changes.length >= 1, 'the change feed named the daemon\'s record');
    await waitFor('caught_up', async () => (await run(page, () => window.store.peers()))[0].caught_up);
    await run(page, () => window.store.close());
    await page.close();
  });

  test('a tab with the wrong secret is refused by the relay and receives nothing', async () => {
    const put = await behind.api('PUT', '/api/collections/secret/records/r1', { hidden: true });
    assert.ok(put.status < 300, JSON.stringify(put.body));
    const refusedBefore = relay.stats().refused || 0;
    const page = await openTab();
    const refused = await openAndConnect(page, 'Store', 'relay-stranger', circuit, 'ba'.repeat(32));
    assert.equal(refused.error, 'wrong-secret', JSON.stringify(refused));
    assert.match(refused.message, /relay .* refused this tab's membership proof/);
    const peers = await run(page, () => window.store.peers());
    assert.equal(peers.length, 1);
    assert.equal(peers[0].peer_id, behind.peerId);
    assert.equal(peers[0].state, 'rejected');
    assert.match(peers[0].last_error, /relay/);
    await waitFor('the refusal in the relay\'s counters', () => relay.stats().refused > refusedBefore);
    await run(page, () => window.store.collection('mine').put('m1', { from: 'stranger' }));
    // Nothing either way: give a session the time it would have needed.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await inTab(page, 'secret', 'r1'), null);
    assert.deepEqual(await run(page, () => window.changes.filter((c) => c.collection !== 'mine')), []);
    assert.equal(await onDaemon(behind, 'mine', 'm1'), null);
    const row = await daemonPeer(behind, await run(page, () => window.store.peerId));
    assert.ok(!row || row.state !== 'connected', JSON.stringify(row));
    // Asked again, the relay's verdict stands.
    const again = await run(page, ({ address, secret }) => window.store.connect(address, secret), { address: circuit, secret: 'ba'.repeat(32) });
    assert.equal(again.error, 'wrong-secret', JSON.stringify(again));
    await run(page, () => window.store.close());
    await page.close();
  });

  test('bad relayed addresses are named errors', async () => {
    const page = await openTab();
    await openAndConnect(page, 'Store', 'relay-errors', circuit, null);
    const attempt = (address) => run(page, ({ address, secret }) => window.store.connect(address, secret), { address, secret: SECRET });
    const noPeer = await attempt(`${relay.address}/p2p-circuit`);
    assert.equal(noPeer.error, 'bad-address', JSON.stringify(noPeer));
    const noRelayId = await attempt(circuit.replace(`/p2p/${relay.peerId}`, ''));
    assert.equal(noRelayId.error, 'bad-address', JSON.stringify(noRelayId));
    assert.match(noRelayId.message, /relay's id/);
    // Nothing listens there: the relay is unreachable, named as such.
    const nobody = circuit.replace(/\/tcp\/\d+\//, `/tcp/${await freePort()}/`);
    const unreachable = await attempt(nobody);
    assert.equal(unreachable.error, 'unreachable', JSON.stringify(unreachable));
    assert.match(unreachable.message, /relay/);
    await run(page, () => window.store.close());
    await page.close();
  });
});
