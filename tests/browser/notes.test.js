// The notes example app (/apps/notes/, crates/shoal-server/apps/notes/)
// served by a real `shoal serve --web-pkg DIR` daemon, in Debian's headless
// Chromium through playwright-core: notes are created, edited and deleted
// through the page's own form and buttons; a reload keeps them; a second
// tab of the same origin waits (one owner at a time, a Web Lock) and takes
// over, with every note, when the first tab closes; a daemon serving no
// browser build makes the page say how to serve it. The store is kept in
// a worker on OPFS: notes an earlier version kept in IndexedDB move there
// (or, when the OPFS store already has notes of its own, stay and the page
// says so), and a browser without OPFS keeps them in IndexedDB from the page. A note
// written in the page reaches the daemon and one written on the daemon
// reaches the page.
//
// Needs the wasm build (SHOAL_WEB_PKG, default target/wasm/pkg) and a
// `shoal` binary (SHOAL_BIN). Run by scripts/browser-test.sh, or directly:
// node --test tests/browser/notes.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, SECRET, removeTempDir, startDaemon, stopDaemons, tempDir, waitFor } from './daemons.js';

const PKG = process.env.SHOAL_WEB_PKG || path.join(ROOT, 'target', 'wasm', 'pkg');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let daemon;
let bare;
let browser;
let context;

before(async () => {
  assert.ok(fs.existsSync(path.join(PKG, 'shoal_web.js')), `no wasm build in ${PKG}: run scripts/wasm-build.sh`);
  const tmp = tempDir();
  // The daemon listens for WebSocket peers on loopback by default (once the
  // transport is in; issue 16), which the sync test below dials.
  daemon = await startDaemon(tmp, 'notes', ['--web-pkg', PKG]);
  bare = await startDaemon(tmp, 'no-pkg');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  context = await browser.newContext();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopDaemons();
  if (!process.env.KEEP_NODES) removeTempDir();
});

/** A new tab with the notes page of `node` loaded (not waiting for the store). */
async function openNotes(node = daemon) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(`${node.url}/apps/notes/`);
  return page;
}

/** Waits until the page's store state is `state`. */
async function storeState(page, state) {
  await page.waitForSelector(`[data-testid="store-state"][data-state="${state}"]`, { timeout: 60000 });
}

/** The notes as the page lists them: [{title, body}], newest first. */
function listed(page) {
  return page.$$eval('[data-testid="note"]', (items) =>
    items.map((item) => ({ title: item.querySelector('.title').textContent, body: item.querySelector('.body').textContent })));
}

/** Fills the form and saves; waits until the list shows `title`. */
async function save(page, title, body) {
  await page.fill('[data-testid="note-title"]', title);
  await page.fill('[data-testid="note-body"]', body);
  await page.click('[data-testid="save-note"]');
  await page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="note"] .title')].some((e) => e.textContent === t), title);
}

/** The list item of the note titled `title`. */
function noteTitled(page, title) {
  return page.locator('[data-testid="note"]', { has: page.locator('.title', { hasText: title }) });
}

describe('the notes app served by the daemon', () => {
  test('creates, edits and deletes notes, and a reload keeps them', async () => {
    const page = await openNotes();
    await storeState(page, 'ready');
    assert.deepEqual(await listed(page), []);
    await save(page, 'milk', 'two litres');
    await save(page, 'call Ana', 'about the trip');
    assert.equal(await page.textContent('[data-testid="note-count"]'), '2');

    await noteTitled(page, 'milk').locator('[data-testid="edit-note"]').click();
    assert.equal(await page.inputValue('[data-testid="note-title"]'), 'milk');
    await save(page, 'oat milk', 'two litres, unsweetened');
    assert.deepEqual(await listed(page), [
      { title: 'oat milk', body: 'two litres, unsweetened' },
      { title: 'call Ana', body: 'about the trip' },
    ]);

    await save(page, 'to delete', '');
    await noteTitled(page, 'to delete').locator('[data-testid="delete-note"]').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '2');

    await page.reload();
    await storeState(page, 'ready');
    await page.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '2');
    assert.deepEqual(await listed(page), [
      { title: 'oat milk', body: 'two litres, unsweetened' },
      { title: 'call Ana', body: 'about the trip' },
    ]);
    await page.screenshot({ path: path.join(ROOT, 'tests', 'browser', 'screenshots', 'notes.png') }).catch(() => {});
    await page.close();
  });

  test('a second tab waits for the first and takes over with every note', async () => {
    const first = await openNotes();
    await storeState(first, 'ready');
    const second = await openNotes();
    await storeState(second, 'waiting');
    assert.match(await second.textContent('[data-testid="store-state"]'), /open in another tab/);
    assert.ok(await second.isDisabled('[data-testid="save-note"]'), 'the waiting tab cannot write');
    await save(first, 'from the first tab', 'written while the second waited');
    await first.close();
    await storeState(second, 'ready');
    await second.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '3');
    assert.deepEqual((await listed(second))[0], { title: 'from the first tab', body: 'written while the second waited' });
    await second.close();
  });

  test('notes an earlier version kept in IndexedDB move into the worker\'s store', async () => {
    // A browser profile of its own: the other tests' store is not in it.
    const own = await browser.newContext();
    const page = await own.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    // What an earlier version of the app left: the store "notes" in
    // IndexedDB, written from a page of the same origin.
    await page.goto(`${daemon.url}/apps/`);
    const oldPeer = await page.evaluate(async () => {
      const shoal = await import('/apps/pkg/shoal_web.js');
      await shoal.default();
      const store = await shoal.Store.open('notes');
      const notes = store.collection('notes');
      await notes.put('old-1', { title: 'kept in IndexedDB', body: 'moves along', updated_at: 1 });
      await notes.put('old-2', { title: 'deleted before the move', body: '', updated_at: 2 });
      await notes.delete('old-2');
      const peer = store.peerId;
      await store.close();
      return peer;
    });

    await page.goto(`${daemon.url}/apps/notes/`);
    await storeState(page, 'ready');
    await page.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '1');
    assert.deepEqual(await listed(page), [{ title: 'kept in IndexedDB', body: 'moves along' }]);
    const after = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    assert.ok(!after.includes('shoal:notes'), `the IndexedDB copy is gone: ${after}`);
    // The same store, not a copy: its identity moved with it.
    await save(page, 'written after the move', '');
    await page.reload();
    await storeState(page, 'ready');
    await page.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '2');
    await page.waitForFunction(() => document.querySelector('[data-testid="own-peer"]').textContent !== '');
    assert.equal(await page.textContent('[data-testid="own-peer"]'), oldPeer);
    await own.close();
  });

  test('notes that cannot be moved stay in IndexedDB and the page says so', async () => {
    const own = await browser.newContext();
    const page = await own.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    // Both stores hold notes of their own: the move would mix two stores.
    await page.goto(`${daemon.url}/apps/`);
    await page.evaluate(async () => {
      const { WorkerStore } = await import('/apps/pkg/shoal_client.js');
      const opfs = await WorkerStore.open('notes');
      await opfs.collection('notes').put('in-opfs', { title: 'already in OPFS', body: '', updated_at: 2 });
      await opfs.close();
      const shoal = await import('/apps/pkg/shoal_web.js');
      await shoal.default();
      const idb = await shoal.Store.open('notes');
      await idb.collection('notes').put('in-idb', { title: 'left in IndexedDB', body: '', updated_at: 1 });
      await idb.close();
    });
    await page.goto(`${daemon.url}/apps/notes/`);
    await storeState(page, 'ready');
    assert.match(await page.textContent('[data-testid="store-state"]'), /were not moved/);
    await page.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '1');
    assert.deepEqual(await listed(page), [{ title: 'already in OPFS', body: '' }]);
    const databases = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    assert.ok(databases.includes('shoal:notes'), `the IndexedDB store is kept: ${databases}`);
    await own.close();
  });

  test('a browser without OPFS keeps the notes in IndexedDB from the page', async () => {
    const own = await browser.newContext();
    // As in Firefox's private windows: the origin gets no private file system.
    await own.addInitScript(() => {
      navigator.storage.getDirectory = () => Promise.reject(new DOMException('no OPFS here', 'SecurityError'));
    });
    const page = await own.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await page.goto(`${daemon.url}/apps/notes/`);
    await storeState(page, 'ready');
    assert.match(await page.textContent('[data-testid="store-state"]'), /IndexedDB/);
    await save(page, 'without OPFS', 'kept in IndexedDB');
    await page.reload();
    await storeState(page, 'ready');
    await page.waitForFunction(() => document.querySelector('[data-testid="note-count"]').textContent === '1');
    assert.deepEqual(await listed(page), [{ title: 'without OPFS', body: 'kept in IndexedDB' }]);
    const databases = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    assert.ok(databases.includes('shoal:notes'), `${databases}`);
    await own.close();
  });

  test('a daemon serving no browser build makes the page say how to serve it', async () => {
    const page = await openNotes(bare);
    await storeState(page, 'failed');
    const text = await page.textContent('[data-testid="store-state"]');
    assert.match(text, /--web-pkg/);
    assert.match(text, /scripts\/wasm-build\.sh/);
    await page.close();
  });

  test('the page syncs with its daemon', async () => {
    const page = await openNotes();
    await storeState(page, 'ready');
    // The page fills the address in once its fetch of /apps/daemon.json
    // answers, which may come after the store is ready.
    await page.waitForFunction(() => document.querySelector('[data-testid="peer-address"]').value !== '', null, { timeout: 10000 });
    const address = await page.inputValue('[data-testid="peer-address"]');
    assert.match(address, /\/ws\/p2p\//, 'the address comes from /apps/daemon.json');
    await page.fill('[data-testid="group-secret"]', SECRET);
    await page.click('[data-testid="connect"]');
    await page.waitForSelector('[data-testid="peer-rows"] tr[data-state="connected"]', { timeout: 30000 });

    await save(page, 'from the tab', 'reaches the daemon');
    const onDaemon = await waitFor('the tab\'s note on the daemon', async () => {
      const { body } = await daemon.api('GET', '/api/collections/notes/records?limit=100');
      return (body.records || []).find((r) => r.value && r.value.title === 'from the tab');
    });
    assert.equal(onDaemon.value.body, 'reaches the daemon');

    const put = await daemon.api('PUT', '/api/collections/notes/records/from-daemon', { title: 'from the daemon', body: 'reaches the tab', updated_at: Date.now() });
    assert.ok(put.status < 300, JSON.stringify(put.body));
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="note"] .title')].some((e) => e.textContent === 'from the daemon'), null, { timeout: 30000 });
    await page.close();
  });
});
