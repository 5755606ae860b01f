// Page-level tests of the browser peer (crates/shoal-web) in Debian's
// headless Chromium, driven by playwright-core: writes survive a reload of
// the page, and a crash of the tab mid-write; a second tab is told the store is busy until the first lets go;
// when the browser refuses more space the write fails with
// `quota-exceeded`, is rolled back whole, and what was written before is
// intact after a reload. Writes made together (sharing transactions, the
// write queue) each get their own outcome, are heard in order, survive a
// crash once acknowledged, and past the quota fail or stay whole. And the
// worker route (WorkerStore, pkg/shoal_client.js: a store in a dedicated
// Worker on OPFS, called from the page): writes survive a reload, errors
// keep their codes across the worker and changes reach the page, one tab
// owns the store at a time, the quota refuses a write whole with
// `quota-exceeded`, and a crash keeps every acknowledged write.
//
// Needs the wasm build (scripts/wasm-build.sh; SHOAL_WEB_PKG names its
// pkg/ directory, default target/wasm/pkg). Run by scripts/browser-test.sh,
// or directly: node --test tests/browser/web-store.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const PKG = process.env.SHOAL_WEB_PKG || path.join(ROOT, 'target', 'wasm', 'pkg');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

let server;
let origin;
let browser;
let context;

/** Serves the test page at / and the wasm build under /pkg/ (loopback only). */
function serve() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://x');
      const file = url.pathname === '/'
        ? path.join(here, 'web-store', 'index.html')
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

/** A new tab with the page (of `at`, default the test origin) loaded and `window.Store` ready. */
async function openTab(at = origin) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(`${at}/`);
  await page.waitForFunction(() => document.title === 'ready');
  return page;
}

/** Runs `fn` in the page; a rejection comes back as `{error: code}`. */
function run(page, fn, arg) {
  return page.evaluate(async ([source, arg]) => {
    try {
      return await (0, eval)(source)(arg);
    } catch (e) {
      return { error: e.code || String(e) };
    }
  }, [fn.toString(), arg]);
}

/**
 * Runs `writer` (which logs `acked ID` as each write resolves, forever) in
 * a new tab of store `name`, crashes the tab once at least `least` writes
 * were acknowledged, and checks in another tab that every one of them is
 * stored (through `Store`, or `WorkerStore` when `worker`: the store in a
 * dedicated Worker on OPFS).
 */
async function crashWhileWriting(name, least, writer, { worker = false } = {}) {
  const page = await openTab();
  const acked = [];
  page.on('console', (message) => {
    const m = /^acked (\S+)$/.exec(message.text());
    if (m) acked.push(m[1]);
  });
  page.evaluate(writer).catch(() => {});
  const deadline = Date.now() + 60000;
  while (acked.length < least && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(acked.length >= least, `only ${acked.length} writes acknowledged`);
  const cdp = await context.newCDPSession(page);
  // The renderer dies on this command, so it never answers: wait briefly instead.
  await Promise.race([cdp.send('Page.crash').catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
  const seen = acked.slice();
  const next = await openTab();
  const found = await run(next, async ([name, ids, worker]) => {
    const store = await (worker ? WorkerStore : Store).open(name, { wait: true });
    const notes = store.collection('notes');
    const missing = [];
    for (const id of ids) if ((await notes.get(id)) === null) missing.push(id);
    const version = await store.version();
    await store.close();
    return { missing, version };
  }, [name, seen, worker]);
  assert.deepEqual(found.missing, [], 'acknowledged writes lost by the crash');
  assert.ok(found.version >= seen.length, `version ${found.version} < ${seen.length} acknowledged writes`);
  await next.close();
  await Promise.race([page.close().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
}

/**
 * In a new tab of `at`, whose origin gets a 3 MB quota, puts a small record
 * and then 512 KB ones into the store `name` (through `Store`, or
 * `WorkerStore` when `worker`) until one is refused; checks it was refused
 * with `quota-exceeded` and nothing of it is stored, the log moved once per
 * stored write, and after a reload everything before it is whole.
 */
async function writePastQuota(at, name, { worker = false } = {}) {
  const page = await openTab(at);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: at, quotaSize: 3 * 1024 * 1024 });
  const result = await run(page, async ([name, worker]) => {
    const store = await (worker ? WorkerStore : Store).open(name);
    const files = store.collection('files');
    await files.put('small', { note: 'fits' });
    // Random text: IndexedDB compresses values, so a repeated letter would never fill it.
    const random = () => {
      const bytes = new Uint8Array(256 * 1024);
      for (let at = 0; at < bytes.length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
      return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    };
    let written = 1;
    for (let i = 0; i < 40; i++) {
      try {
        await files.put(`big${i}`, { body: random() });
        written += 1;
      } catch (e) {
        const failed = { code: e.code, name: e.name, failedAt: i, written, version: await store.version(), failed: await files.get(`big${i}`) };
        await store.close();
        return failed;
      }
    }
    return { code: null, written };
  }, [name, worker]);
  assert.equal(result.code, 'quota-exceeded', JSON.stringify(result));
  assert.equal(result.name, 'ShoalError');
  assert.equal(result.failed, null, 'the refused record is not there');
  assert.equal(result.version, result.written, 'the log moved once per stored write, not for the refused one');
  await page.reload();
  await page.waitForFunction(() => document.title === 'ready');
  const after = await run(page, async ([name, worker, failedAt]) => {
    const store = await (worker ? WorkerStore : Store).open(name, { wait: true });
    const files = store.collection('files');
    const small = await files.get('small');
    const last = failedAt > 0 ? await files.get(`big${failedAt - 1}`) : { body: '' };
    const found = { small, lastLength: last.body.length, version: await store.version() };
    await store.close();
    return found;
  }, [name, worker, result.failedAt]);
  assert.deepEqual(after.small, { note: 'fits' });
  assert.equal(after.version, result.version);
  if (result.failedAt > 0) assert.equal(after.lastLength, 512 * 1024, 'the last stored record is whole');
  await page.close();
}

before(async () => {
  assert.ok(fs.existsSync(path.join(PKG, 'shoal_web.js')), `no wasm build in ${PKG}: run scripts/wasm-build.sh`);
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
});

describe('the browser peer in a page', () => {
  test('writes survive a reload, with the log position', async () => {
    const page = await openTab();
    const written = await run(page, async () => {
      const store = await Store.open('reload');
      const notes = store.collection('notes');
      await notes.put('n1', { title: 'first', tags: {} });
      await notes.mapSet('n1', 'tags', 'home', true);
      await notes.put('n2', { title: 'second' });
      await notes.delete('n2');
      return { version: await store.version(), site: store.site };
    });
    assert.equal(written.version, 4);
    // A reload ends the page (and frees its lock) without close().
    await page.reload();
    await page.waitForFunction(() => document.title === 'ready');
    const after = await run(page, async () => {
      const store = await Store.open('reload');
      const notes = store.collection('notes');
      const page = await notes.list({ limit: 10 });
      return { version: await store.version(), site: store.site, page, n2: await notes.get('n2') };
    });
    assert.deepEqual(after.page, { records: [{ id: 'n1', value: { tags: { home: true }, title: 'first' } }], next: null });
    assert.equal(after.n2, null);
    assert.equal(after.version, 4);
    assert.equal(after.site, written.site);
    await page.close();
  });

  test('a second tab is told the store is busy, and gets it when the first closes', async () => {
    const first = await openTab();
    const second = await openTab();
    assert.deepEqual(await run(first, async () => { window.s = await Store.open('tabs'); return 'open'; }), 'open');
    assert.deepEqual(await run(second, async () => Store.open('tabs')), { error: 'store-busy' });
    const waiting = run(second, async () => {
      const store = await Store.open('tabs', { wait: true });
      return store.collection('c').get('x');
    });
    await run(first, async () => { await s.collection('c').put('x', { by: 'first' }); await s.close(); return null; });
    assert.deepEqual(await waiting, { by: 'first' });
    await first.close();
    await second.close();
  });

  test('a tab that crashes mid-write keeps every write it acknowledged', async () => {
    // Writes one after another, logging each acknowledgement, until the tab dies.
    await crashWhileWriting('crash', 20, async () => {
      const store = await Store.open('crash');
      const notes = store.collection('notes');
      for (let i = 0; ; i++) {
        await notes.put(`n${i}`, { i });
        console.log(`acked n${i}`);
      }
    });
  });

  test('writes made together each get their own outcome and are heard in order', async () => {
    const page = await openTab();
    const result = await run(page, async () => {
      const store = await Store.open('together');
      const notes = store.collection('notes');
      await notes.put('old', { i: -1 });
      const heard = [];
      store.subscribe((change) => heard.push([change.id, change.version]));
      const writes = [];
      for (let i = 0; i < 50; i++) writes.push(notes.put(`n${i}`, { i }));
      writes.push(notes.patch('n3', { done: true }));
      writes.push(notes.create('old', { i: 0 }));
      writes.push(notes.patch('missing', { i: 0 }));
      writes.push(notes.put('old', { i: -1 }));
      const settled = await Promise.allSettled(writes);
      return {
        settled: settled.map((s) => (s.status === 'fulfilled' ? s.value : { code: s.reason.code, name: s.reason.name })),
        heard,
        n3: await notes.get('n3'),
        version: await store.version(),
      };
    });
    const puts = result.settled.slice(0, 50);
    assert.deepEqual(puts.map((r) => r.version), Array.from({ length: 50 }, (_, i) => i + 2));
    assert.ok(puts.every((r) => r.changed));
    assert.deepEqual(result.settled[50], { changed: true, version: 52 });
    assert.deepEqual(result.settled[51], { code: 'already-exists', name: 'ShoalError' });
    assert.deepEqual(result.settled[52], { code: 'not-found', name: 'ShoalError' });
    assert.equal(result.settled[53].changed, false, 'the same put again changes nothing');
    assert.deepEqual(result.heard, [
      ...Array.from({ length: 50 }, (_, i) => [`n${i}`, i + 2]),
      ['n3', 52],
    ]);
    assert.deepEqual(result.n3, { done: true, i: 3 });
    assert.equal(result.version, 52);
    await page.reload();
    await page.waitForFunction(() => document.title === 'ready');
    const after = await run(page, async () => {
      const store = await Store.open('together');
      const page = await store.collection('notes').list({ limit: 100 });
      return { count: page.records.length, version: await store.version() };
    });
    assert.deepEqual(after, { count: 51, version: 52 });
    await page.close();
  });

  test('a tab that crashes while writes made together wait keeps every write it acknowledged', async () => {
    // Groups of 25 puts made together, each logged as it resolves, until the tab dies.
    await crashWhileWriting('crash-together', 200, async () => {
      const store = await Store.open('crash-together');
      const notes = store.collection('notes');
      for (let i = 0; ; i += 25) {
        const group = [];
        for (let j = i; j < i + 25; j++) {
          group.push(notes.put(`n${j}`, { j }).then(() => console.log(`acked n${j}`)));
        }
        await Promise.all(group);
      }
    });
  });

  test('writes made together past the quota fail whole or are stored whole', async () => {
    // An origin of its own (another port): the quota override applies only
    // to an origin whose storage is not in use yet.
    const second = await serve();
    const own = `http://127.0.0.1:${second.address().port}`;
    try {
      const page = await openTab(own);
      const cdp = await context.newCDPSession(page);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: own, quotaSize: 3 * 1024 * 1024 });
      const result = await run(page, async () => {
        const store = await Store.open('quota-together');
        const files = store.collection('files');
        const random = () => {
          const bytes = new Uint8Array(256 * 1024);
          for (let at = 0; at < bytes.length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
          return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
        };
        // Rounds of 4 half-megabyte puts made together, until the quota refuses some.
        const outcomes = [];
        for (let round = 0; round < 10 && !outcomes.some((o) => o.code); round++) {
          const group = [];
          for (let j = 0; j < 4; j++) {
            const id = `big${round * 4 + j}`;
            group.push(files.put(id, { body: random() }).then(
              (r) => ({ id, version: r.version }),
              (e) => ({ id, code: e.code }),
            ));
          }
          outcomes.push(...(await Promise.all(group)));
        }
        return { outcomes, version: await store.version() };
      });
      const refused = result.outcomes.filter((o) => o.code);
      const stored = result.outcomes.filter((o) => !o.code);
      assert.ok(refused.length > 0, `the quota refused nothing: ${JSON.stringify(result.outcomes)}`);
      assert.ok(refused.every((o) => o.code === 'quota-exceeded'), JSON.stringify(refused));
      // Each round's four (2 MB, within one transaction's bound) shared a
      // transaction: all stored or all refused, never split.
      for (let round = 0; round * 4 < result.outcomes.length; round++) {
        const four = result.outcomes.slice(round * 4, round * 4 + 4);
        assert.equal(new Set(four.map((o) => Boolean(o.code))).size, 1, `round ${round} split: ${JSON.stringify(four)}`);
      }
      assert.equal(result.version, stored.length, 'the log moved once per stored write');
      await page.reload();
      await page.waitForFunction(() => document.title === 'ready');
      const after = await run(page, async (ids) => {
        const store = await Store.open('quota-together');
        const files = store.collection('files');
        const lengths = {};
        for (const id of ids) lengths[id] = ((await files.get(id)) || { body: '' }).body.length;
        return { lengths, version: await store.version() };
      }, result.outcomes.map((o) => o.id));
      for (const o of stored) assert.equal(after.lengths[o.id], 512 * 1024, `${o.id} was acknowledged and is whole`);
      for (const o of refused) assert.equal(after.lengths[o.id], 0, `${o.id} was refused and is not there`);
      assert.equal(after.version, result.version);
      await page.close();
    } finally {
      second.close();
    }
  });

  test('a write past the quota fails with quota-exceeded and leaves nothing half-written', async () => {
    // An origin of its own (localhost, not 127.0.0.1): Chromium applies a
    // quota override only to an origin whose storage is not in use yet.
    await writePastQuota(origin.replace('127.0.0.1', 'localhost'), 'quota');
  });
});

describe('the browser peer in a dedicated Worker, on OPFS (WorkerStore)', () => {
  test('writes survive a reload, with the log position and the site', async () => {
    const page = await openTab();
    const written = await run(page, async () => {
      const store = await WorkerStore.open('w-reload');
      const notes = store.collection('notes');
      await notes.put('n1', { title: 'first', tags: {} });
      await notes.mapSet('n1', 'tags', 'home', true);
      await notes.put('n2', { title: 'second' });
      await notes.delete('n2');
      return { version: await store.version(), site: store.site, peerId: store.peerId };
    });
    assert.equal(written.version, 4);
    assert.match(written.site, /^[0-9a-f]{16}$/);
    await page.reload();
    await page.waitForFunction(() => document.title === 'ready');
    const after = await run(page, async () => {
      const store = await WorkerStore.open('w-reload', { wait: true });
      const notes = store.collection('notes');
      const page = await notes.list({ limit: 10 });
      const result = { version: await store.version(), site: store.site, peerId: store.peerId, page, n2: await notes.get('n2') };
      await store.close();
      return result;
    });
    assert.deepEqual(after.page, { records: [{ id: 'n1', value: { tags: { home: true }, title: 'first' } }], next: null });
    assert.equal(after.n2, null);
    assert.equal(after.version, 4);
    assert.equal(after.site, written.site);
    assert.equal(after.peerId, written.peerId);
    // The IndexedDB store of the same name is another store.
    const other = await run(page, async () => {
      const store = await Store.open('w-reload');
      const version = await store.version();
      await store.close();
      return version;
    });
    assert.equal(other, 0);
    await page.close();
  });

  test('errors keep their codes across the worker, and the page hears each change', async () => {
    const page = await openTab();
    const result = await run(page, async () => {
      const store = await WorkerStore.open('w-errors');
      const notes = store.collection('notes');
      const heard = [];
      const subscription = store.subscribe((change) => heard.push([change.id, change.version, change.value]));
      await notes.put('n1', { a: 1 });
      const codes = [];
      for (const attempt of [
        () => notes.create('n1', {}),
        () => notes.patch('missing', { a: 1 }),
        () => notes.get('a b'),
        () => notes.put('n2', [1]),
        () => store.collection('9bad').get('x'),
        () => notes.list({ limit: 0 }),
        () => notes.put('n4', undefined),
        () => notes.put('n4', { loop: window }),
      ]) {
        try {
          await attempt();
          codes.push('resolved');
        } catch (e) {
          codes.push(`${e.name}:${e.code}`);
        }
      }
      // As the store itself reads values: JSON, so a function field is left out.
      await notes.put('n5', { a: 1, f: () => 1 });
      const n5 = await notes.get('n5');
      await notes.delete('n1');
      subscription.unsubscribe();
      await notes.put('n3', {});
      await store.close();
      let closed;
      try {
        await notes.get('n3');
      } catch (e) {
        closed = e.code;
      }
      return { codes, heard, closed, n5 };
    });
    assert.deepEqual(result.codes, [
      'ShoalError:already-exists',
      'ShoalError:not-found',
      'ShoalError:invalid-id',
      'ShoalError:bad-request',
      'ShoalError:invalid-collection',
      'ShoalError:bad-request',
      'ShoalError:bad-request',
      'ShoalError:bad-request',
    ]);
    assert.deepEqual(result.n5, { a: 1 });
    assert.deepEqual(result.heard, [['n1', 1, { a: 1 }], ['n5', 2, { a: 1 }], ['n1', 3, null]]);
    assert.equal(result.closed, 'store-closed');
    await page.close();
  });

  test('writes in flight when the page closes the store are each answered, and the stored ones stay', async () => {
    const page = await openTab();
    const result = await run(page, async () => {
      // IndexedDB in the worker: its slower transactions leave writes in
      // flight (600: two groups) when the close comes.
      const store = await WorkerStore.open('w-close', { storage: 'indexeddb' });
      const notes = store.collection('notes');
      const writes = [];
      for (let i = 0; i < 600; i++) writes.push(notes.put(`n${i}`, { i }).then(() => 'stored', (e) => e.code));
      // The close in a later turn than the puts (calls of one turn reach
      // the worker together, and a close among them would refuse every
      // write still waiting, as the store itself does).
      await new Promise((resolve) => setTimeout(resolve, 0));
      await store.close();
      const outcomes = await Promise.all(writes);
      const again = await WorkerStore.open('w-close', { storage: 'indexeddb' });
      const found = [];
      for (let i = 0; i < 600; i++) found.push((await again.collection('notes').get(`n${i}`)) !== null);
      await again.close();
      let subscribed;
      try {
        store.subscribe(() => {});
        subscribed = 'subscribed';
      } catch (e) {
        subscribed = e.code;
      }
      return { outcomes, found, subscribed };
    });
    assert.ok(result.outcomes.every((o) => o === 'stored' || o === 'store-closed'), JSON.stringify(result.outcomes));
    assert.ok(result.outcomes.includes('stored'), 'the first group was written');
    assert.deepEqual(result.found, result.outcomes.map((o) => o === 'stored'), 'stored exactly when answered so');
    assert.equal(result.subscribed, 'store-closed');
    await page.close();
  });

  test('calls made together reach the worker in one message, and one it cannot copy is refused alone', async () => {
    const page = await openTab();
    const result = await run(page, async () => {
      const store = await WorkerStore.open('w-together');
      const notes = store.collection('notes');
      const posted = [];
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (message, ...rest) {
        posted.push(message.calls.length);
        return post.call(this, message, ...rest);
      };
      try {
        const written = await Promise.all(Array.from({ length: 200 }, (_, i) => notes.put(`n${i}`, { i })));
        const messages = [...posted];
        posted.length = 0;
        // A function in connect's options cannot be copied to the worker:
        // that call is refused, the puts made with it are not.
        const mixed = await Promise.all([
          notes.put('a', { x: 1 }).then(() => 'stored', (e) => e.code),
          store.connect('/ip4/127.0.0.1/tcp/9/ws', 'secret', { f: () => 1 }).then(() => 'connected', (e) => e.code),
          notes.put('b', { x: 2 }).then(() => 'stored', (e) => e.code),
        ]);
        const values = [await notes.get('a'), await notes.get('b'), await notes.get('n199')];
        return { messages, versions: written.map((w) => w.version), mixed, retried: [...posted], values };
      } finally {
        Worker.prototype.postMessage = post;
        await store.close();
      }
    });
    assert.deepEqual(result.messages, [200], 'the 200 puts in one message');
    assert.deepEqual(result.versions, Array.from({ length: 200 }, (_, i) => i + 1), 'each its own version, in call order');
    assert.deepEqual(result.mixed, ['stored', 'bad-request', 'stored']);
    assert.deepEqual(result.retried.slice(0, 4), [3, 1, 1, 1], 'the three together could not be copied, then one at a time');
    assert.deepEqual(result.values, [{ x: 1 }, { x: 2 }, { i: 199 }]);
    await page.close();
  });

  test('a second tab is told the store is busy, and gets it when the first closes', async () => {
    const first = await openTab();
    const second = await openTab();
    assert.deepEqual(await run(first, async () => { window.s = await WorkerStore.open('w-tabs'); return 'open'; }), 'open');
    assert.deepEqual(await run(second, async () => WorkerStore.open('w-tabs')), { error: 'store-busy' });
    const waiting = run(second, async () => {
      const store = await WorkerStore.open('w-tabs', { wait: true });
      const value = await store.collection('c').get('x');
      await store.close();
      return value;
    });
    await run(first, async () => { await s.collection('c').put('x', { by: 'first' }); await s.close(); return null; });
    assert.deepEqual(await waiting, { by: 'first' });
    await first.close();
    await second.close();
  });

  test('a write past the quota fails with quota-exceeded and leaves nothing half-written', async () => {
    // An origin of its own (another port): Chromium applies a quota
    // override only to an origin whose storage is not in use yet.
    const second = await serve();
    try {
      await writePastQuota(`http://127.0.0.1:${second.address().port}`, 'w-quota', { worker: true });
    } finally {
      second.close();
    }
  });

  test('a tab that crashes mid-write keeps every write its worker acknowledged', async () => {
    await crashWhileWriting('w-crash', 50, async () => {
      const store = await WorkerStore.open('w-crash');
      const notes = store.collection('notes');
      for (let i = 0; ; i++) {
        await notes.put(`n${i}`, { i });
        console.log(`acked n${i}`);
      }
    }, { worker: true });
  });
});
