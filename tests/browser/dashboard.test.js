// Browser tests of the Shoal dashboard: Debian's headless Chromium driven
// by playwright-core against two real `shoal serve` daemons (A and B) on
// loopback. Screenshots of the key steps go to screenshots/.
//
// Run by scripts/browser-test.sh (which installs Chromium, builds the
// binary and kills the daemons whatever happens), or directly:
//   node --test --test-concurrency=1 tests/browser/dashboard.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { removeTempDir, startDaemon, stopDaemons, tempDir, waitFor } from './daemons.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(here, 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let A;
let B;
let browser;
let page;

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), animations: 'disabled' });
}

const peerRow = (peer) => page.locator(`[data-testid="peer-row"][data-peer="${peer}"]`);
const recordRow = (id) => page.locator(`[data-testid="record-row"][data-id="${id}"]`);
const statusVsB = (id) => recordRow(id).locator(`[data-testid="record-status"][data-peer="${B.peerId}"]`);
const drawer = () => page.locator('[data-testid="drawer"]');
const drawerPeerB = () => drawer().locator(`[data-testid="drawer-peer"][data-peer="${B.peerId}"]`);

/** The newest toast's text, once one appears that matches `pattern`. */
async function toastMatching(pattern, timeout = 30000) {
  const toast = page.locator('[data-testid="toast"]', { hasText: pattern }).last();
  await toast.waitFor({ state: 'visible', timeout });
  return toast.innerText();
}

async function openCollection(name) {
  await page.click('[data-testid="nav-collections"]');
  await page.click(`[data-testid="collection-item"][data-collection="${name}"]`);
  await page.locator('[data-testid="collection-title"]', { hasText: name }).waitFor();
}

/** Writes on a daemon through its HTTP API, asserting success. */
async function write(node, method, route, body) {
  const reply = await node.api(method, route, body);
  assert.ok(reply.status >= 200 && reply.status < 300, `${method} ${route} on ${node.name}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

async function reaches(node, collection, id, what) {
  await waitFor(what || `${collection}/${id} on ${node.name}`, async () => (await node.api('GET', `/api/collections/${collection}/records/${id}`)).status === 200);
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const tmp = tempDir();
  [A, B] = await Promise.all([startDaemon(tmp, 'a'), startDaemon(tmp, 'b')]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  page.on('console', (message) => {
    // The wrong-token step's 401 is expected.
    if (message.type() === 'error' && !message.text().includes('401')) console.error(`page console: ${message.text()}`);
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopDaemons();
  if (!process.env.KEEP_NODES) removeTempDir();
});

/** A test that leaves a screenshot of the page behind when it fails. */
function scenario(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (error) {
      const slug = name.split('.')[0];
      await shot(`failed-${slug}`).catch(() => {});
      throw error;
    }
  });
}

describe('the dashboard against two real daemons', () => {
  scenario('0. static files need no token, the API does, and the token form takes one', async () => {
    const index = await fetch(`${A.url}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), /^text\/html/);
    for (const [file, type] of [['app.js', /^text\/javascript/], ['style.css', /^text\/css/], ['drawer.js', /^text\/javascript/], ['conflicts.js', /^text\/javascript/]]) {
      const asset = await fetch(`${A.url}/assets/${file}`);
      assert.equal(asset.status, 200, file);
      assert.match(asset.headers.get('content-type'), type, file);
    }
    const missing = await fetch(`${A.url}/assets/nope.js`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).code, 'not-found');
    assert.equal((await fetch(`${A.url}/api/node`)).status, 401);

    // No token: the form, which says where the token is.
    await page.goto(`${A.url}/`);
    const form = page.locator('[data-testid="token-form"]');
    await form.waitFor();
    assert.match(await form.innerText(), /DATA\/token/);
    // A wrong one is refused (401) and the form comes back saying so.
    await page.fill('[data-testid="token-input"]', '0'.repeat(64));
    await page.click('[data-testid="token-submit"]');
    await page.locator('[data-testid="token-error"]').waitFor();
    await shot('01-token-form');
    await page.fill('[data-testid="token-input"]', A.token);
    await page.click('[data-testid="token-submit"]');
    await page.locator('[data-testid="node-peer-id"]', { hasText: A.peerId }).waitFor();

    // From the URL fragment: taken, kept in sessionStorage, removed from view.
    await page.evaluate(() => sessionStorage.clear());
    await page.goto(`${A.url}/#token=${A.token}`);
    await page.locator('[data-testid="node-peer-id"]', { hasText: A.peerId }).waitFor();
    assert.ok(!page.url().includes('token'), page.url());
    assert.equal(await page.evaluate(() => sessionStorage.getItem('shoal.token')), A.token);
    // The invite code: its secret hidden until asked for, then as the API has it.
    const code = page.locator('[data-testid="invite-code"]');
    assert.match(await code.innerText(), /^shoal1:•+@\/ip4\/127\.0\.0\.1\//);
    await page.click('[data-testid="reveal-invite"]');
    assert.equal(await code.innerText(), (await A.api('GET', '/api/node')).body.invite);
  });

  scenario('1. adding B by its address on the Instances page connects it', async () => {
    await page.click('[data-testid="nav-instances"]');
    await page.locator('[data-testid="no-peers"]').waitFor();
    await page.fill('[data-testid="add-peer-input"]', B.address);
    await page.click('[data-testid="add-peer-submit"]');
    await toastMatching(/Peer added/);
    const state = peerRow(B.peerId).locator('[data-testid="peer-state"]');
    await waitFor('B to show connected in A’s dashboard', async () => (await state.innerText()) === 'connected', 30000);
    // B sees A too.
    await waitFor('A to be connected on B', async () => {
      const reply = await B.api('GET', '/api/peers');
      return reply.body.peers.some((p) => p.peer === A.peerId && p.state === 'connected');
    });
    // On loopback the path is direct and no hole was punched.
    const pathCell = peerRow(B.peerId).locator('[data-testid="peer-path"]');
    await waitFor('B’s path to show direct', async () => (await pathCell.innerText()) === 'direct');
    assert.equal(await peerRow(B.peerId).locator('[data-testid="peer-punch"]').innerText(), '0 of 0');
    // Whether this node is reachable from the internet: no relay has probed it here.
    await waitFor('the peers note to say this node’s reachability', async () =>
      /this node: unknown/.test(await page.locator('[data-testid="peers-note"]').innerText()));
    // The address was remembered in peers.txt.
    assert.match(fs.readFileSync(path.join(A.data, 'peers.txt'), 'utf8'), new RegExp(B.peerId));
    await shot('02-peer-connected');
  });

  scenario('2. a record written on B appears in A’s collection browser live', async () => {
    await write(B, 'POST', '/api/collections/notes/records', { id: 'n-first', value: { text: 'hello from B' } });
    await reaches(A, 'notes', 'n-first');
    await openCollection('notes');
    await recordRow('n-first').waitFor();
    // A marker that a reload would lose.
    await page.evaluate(() => {
      window.__noReload = true;
    });
    await write(B, 'POST', '/api/collections/notes/records', { id: 'n-live', value: { text: 'written on B just now' } });
    await recordRow('n-live').waitFor({ timeout: 30000 });
    assert.match(await recordRow('n-live').locator('[data-testid="record-value"]').innerText(), /written on B just now/);
    // An edit on B updates the visible row, and the sidebar count follows.
    await write(B, 'PATCH', '/api/collections/notes/records/n-live', { text: 'edited on B' });
    await waitFor('the edit to show in the row', async () => /edited on B/.test(await recordRow('n-live').locator('[data-testid="record-value"]').innerText()));
    await waitFor('the sidebar count to be 2', async () => (await page.locator('[data-testid="collection-item"][data-collection="notes"] [data-testid="collection-count"]').innerText()) === '2');
    await waitFor('both rows in sync with B', async () => (await statusVsB('n-live').getAttribute('data-status')) === 'in-sync');
    // A collection new to A shows up in the sidebar on its own.
    await write(B, 'POST', '/api/collections/journal/records', { id: 'j1', value: { mood: 'fine' } });
    await page.locator('[data-testid="collection-item"][data-collection="journal"]').waitFor({ timeout: 30000 });
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was reloaded');
    await shot('03-live-record');
  });

  scenario('3. a diverged record: Push refused by A’s own rule, then merged', async () => {
    await write(B, 'PUT', '/api/collections/tasks/records/t1', { title: 'one', done: false });
    await reaches(A, 'tasks', 't1');

    // A receives `tasks` from B but keeps its own edits: the dashboard's toggle.
    await page.click('[data-testid="nav-instances"]');
    const select = peerRow(B.peerId).locator('[data-testid="share-select"][data-collection="tasks"]');
    await select.waitFor();
    await select.selectOption('receive');
    await toastMatching(/Sharing changed/);
    const rules = (await A.api('GET', '/api/sharing')).body;
    assert.ok(rules.rules.some((r) => r.peer === B.peerId && r.collection === 'tasks' && r.mode === 'receive'), JSON.stringify(rules));

    await write(A, 'PATCH', '/api/collections/tasks/records/t1', { done: true, note: 'edited on A' });
    // The Instances page's integrity badge for `tasks` against B counts it.
    const integrity = peerRow(B.peerId).locator('[data-testid="integrity"][data-collection="tasks"]');
    await waitFor('the integrity badge to count one diverged record', async () => /1 diverged/.test(await integrity.innerText()), 30000);
    assert.equal(await integrity.getAttribute('data-total'), '1');
    await shot('04-instances-integrity');
    await openCollection('tasks');
    await waitFor('t1 to show diverged against B', async () => (await statusVsB('t1').getAttribute('data-status')) === 'diverged', 30000);

    await recordRow('t1').click();
    const section = drawerPeerB();
    await section.waitFor({ timeout: 15000 });
    assert.equal(await section.getAttribute('data-status'), 'diverged');
    assert.equal(await section.locator('[data-testid="drawer-pull"]').count(), 1);
    assert.equal(await section.locator('[data-testid="drawer-push"]').count(), 1);
    // The fields and their clocks on both sides; `done` differs.
    const done = section.locator('[data-testid="drawer-field"][data-slot="done"]');
    assert.equal(await done.getAttribute('data-differs'), 'true');
    await shot('05-diverged-drawer');

    // A does not send `tasks` to B: its own rule refuses the push.
    await section.locator('[data-testid="drawer-push"]').click();
    const refused = await toastMatching(/local rule/i);
    assert.match(refused, /not-shared/);
    await shot('06-push-refused');
    await drawerPeerB().waitFor();
    assert.equal(await drawerPeerB().getAttribute('data-status'), 'diverged');

    // Back to `both` in the dashboard, then Push again.
    await page.click('[data-testid="nav-instances"]');
    await select.waitFor();
    await select.selectOption('both');
    await toastMatching(/tasks with .* is now “both”/);
    await openCollection('tasks');
    await recordRow('t1').click();
    await drawerPeerB().waitFor({ timeout: 15000 });
    const status = await drawerPeerB().getAttribute('data-status');
    if (status === 'diverged') {
      await drawerPeerB().locator('[data-testid="drawer-push"]').click();
      const merged = await toastMatching(/merged|already in sync/i);
      assert.match(merged, /Push to/);
    } else {
      // Anti-entropy got there first.
      assert.equal(status, 'in-sync');
    }
    await waitFor('t1 in sync in the drawer', async () => (await drawerPeerB().getAttribute('data-status')) === 'in-sync', 20000);
    assert.equal(await drawerPeerB().locator('[data-testid="drawer-push"]').count(), 0);
    assert.equal(await drawerPeerB().locator('[data-testid="drawer-pull"]').count(), 0);
    const onB = await B.api('GET', '/api/collections/tasks/records/t1');
    assert.equal(onB.body.value.done, true, JSON.stringify(onB.body));
    await shot('07-push-merged');
    await page.click('[data-testid="drawer-close"]');
    await waitFor('t1 in sync in the table', async () => (await statusVsB('t1').getAttribute('data-status')) === 'in-sync', 20000);
  });

  scenario('4. a load that hangs shows the error state after 12 s; Retry then loads', async () => {
    const held = [];
    const hangs = (url) => url.pathname.endsWith('/records/t1/sync');
    await page.route(hangs, (route) => {
      held.push(route); // never answered
    });
    await recordRow('t1').click();
    await page.locator('[data-testid="drawer-loading"]').waitFor();
    const started = Date.now();
    await page.locator('[data-testid="drawer-error"]').waitFor({ timeout: 20000 });
    const waited = Date.now() - started;
    assert.ok(waited > 10500 && waited < 16000, `the error state came after ${waited} ms`);
    assert.match(await page.locator('[data-testid="drawer-error-message"]').innerText(), /12 s/);
    assert.ok(held.length >= 1, 'the sync-details request was never made');
    await shot('08-drawer-timeout');

    // Released: Retry loads it.
    await page.unroute(hangs);
    for (const route of held) route.abort().catch(() => {});
    await page.click('[data-testid="drawer-retry"]');
    await drawerPeerB().waitFor({ timeout: 15000 });
    assert.equal(await drawerPeerB().getAttribute('data-status'), 'in-sync');

    // Refresh reloads everything the drawer shows.
    await write(A, 'PATCH', '/api/collections/tasks/records/t1', { note: 'refreshed' });
    await page.click('[data-testid="drawer-refresh"]');
    await waitFor('the new value in the drawer', async () => /refreshed/.test(await page.locator('[data-testid="drawer-local-value"]').innerText()), 15000);
    await shot('09-drawer-loaded-again');
    await page.click('[data-testid="drawer-close"]');
  });

  scenario('5. the browser pages with limit + next and filters by id prefix', async () => {
    for (let i = 0; i < 57; i++) {
      await write(A, 'PUT', `/api/collections/bulk/records/item-${String(i).padStart(3, '0')}`, { n: i });
    }
    await openCollection('bulk');
    const rows = page.locator('[data-testid="record-row"]');
    await waitFor('a first page of 50', async () => (await rows.count()) === 50);
    assert.equal(await rows.first().getAttribute('data-id'), 'item-000');
    assert.equal(await page.locator('[data-testid="page-prev"]').isDisabled(), true);
    await page.click('[data-testid="page-next"]');
    await waitFor('the second page', async () => (await rows.count()) === 7 && (await rows.first().getAttribute('data-id')) === 'item-050');
    assert.equal(await page.locator('[data-testid="page-next"]').isDisabled(), true);
    assert.match(await page.locator('[data-testid="page-info"]').innerText(), /page 2/);
    await page.click('[data-testid="page-prev"]');
    await waitFor('back on the first page', async () => (await rows.first().getAttribute('data-id')) === 'item-000');
    await page.fill('[data-testid="record-filter"]', 'item-04');
    await waitFor('the ten ids starting item-04', async () => (await rows.count()) === 10 && (await rows.first().getAttribute('data-id')) === 'item-040');
    // Every row is in sync with B (records written on A reach B live).
    await waitFor('the filtered rows in sync with B', async () => (await page.locator(`[data-testid="record-status"][data-peer="${B.peerId}"][data-status="in-sync"]`).count()) === 10, 30000);
    await shot('10-paged-and-filtered');
  });

  scenario('6. the change feed reconnects after a drop from the last event and misses nothing', async () => {
    const isFeed = (url) => url.pathname === '/api/changes';
    const seen = [];
    let release;
    const released = new Promise((resolve) => {
      release = resolve;
    });
    const since = (await A.api('GET', '/api/node')).body.db_version;
    await page.route(isFeed, async (route) => {
      const request = route.request();
      seen.push({ url: request.url(), lastEventId: request.headers()['last-event-id'] || null, auth: request.headers().authorization || '' });
      if (seen.length === 1) {
        // One event, then the stream ends: a drop.
        const data = JSON.stringify({ db_version: since, collection: 'notes', id: 'n-first', origin: 'remote' });
        await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: `: hello\n\nid: ${since}\nevent: change\ndata: ${data}\n\n` });
      } else {
        await released;
        await route.continue();
      }
    });
    // A fresh load (a hash change alone would not restart the feed).
    await page.goto('about:blank');
    await page.goto(`${A.url}/#/collections/notes`);
    await recordRow('n-first').waitFor();
    await waitFor('the dashboard to reconnect', () => seen.length >= 2, 15000);
    assert.equal(await page.locator('[data-testid="feed-state"]').getAttribute('data-state'), 'reconnecting');
    // Written while the dashboard has no feed.
    await write(B, 'PUT', '/api/collections/notes/records/n-gap', { text: 'written during the drop' });
    await reaches(A, 'notes', 'n-gap');
    release();
    await recordRow('n-gap').waitFor({ timeout: 20000 });
    await page.locator('[data-testid="feed-state"][data-state="live"]').waitFor();
    assert.equal(seen[1].lastEventId, String(since), JSON.stringify(seen));
    assert.match(seen[1].url, new RegExp(`since=${since}`));
    assert.equal(seen[1].auth, `Bearer ${A.token}`);
    await shot('11-feed-reconnected');
    await page.unroute(isFeed);
  });

  scenario('7. a concurrent edit shows in Conflicts, and Restore writes the lost value again', async () => {
    // A neither sends `clash` to B nor takes it from B while both write c1.
    await write(A, 'PUT', '/api/sharing', { peer: B.peerId, collection: 'clash', mode: 'none' });
    await write(A, 'PUT', '/api/collections/clash/records/c1', { title: 'written on A' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await write(B, 'PUT', '/api/collections/clash/records/c1', { title: 'written on B' });
    // Both ways again, and A pulls B's record: B's later write wins, and A,
    // whose value lost, journals it.
    await write(A, 'PUT', '/api/sharing', { peer: B.peerId, collection: 'clash', mode: 'both' });
    await write(A, 'POST', `/api/peers/${B.peerId}/pull`, { collection: 'clash', id: 'c1' });
    await waitFor('the conflict in A’s journal', async () => ((await A.api('GET', '/api/conflicts?collection=clash')).body.conflicts || []).length === 1, 30000);
    const onA = await A.api('GET', '/api/collections/clash/records/c1');
    assert.equal(onA.body.value.title, 'written on B', JSON.stringify(onA.body));

    await page.click('[data-testid="nav-conflicts"]');
    const row = page.locator('[data-testid="conflict-row"][data-collection="clash"][data-id="c1"]');
    await row.waitFor({ timeout: 20000 });
    assert.match(await row.locator('[data-testid="conflict-kept"]').innerText(), /written on B/);
    assert.match(await row.locator('[data-testid="conflict-lost"]').innerText(), /written on A/);
    await shot('12-conflicts');
    await row.locator('[data-testid="conflict-restore"]').click();
    assert.match(await toastMatching(/Restored/), /clash\/c1/);
    // A new local edit: it is A's value again, and it syncs to B.
    await waitFor('the restored value on B', async () => {
      const onB = await B.api('GET', '/api/collections/clash/records/c1');
      return onB.body.value && onB.body.value.title === 'written on A';
    }, 30000);
    const journal = (await A.api('GET', '/api/conflicts?collection=clash')).body.conflicts;
    assert.equal(journal.length, 1, 'restoring is no new conflict');
  });

  scenario('8. removing B on the Instances page forgets and disconnects it', async () => {
    await page.click('[data-testid="nav-instances"]');
    const remove = peerRow(B.peerId).locator('[data-testid="peer-remove"]');
    await remove.click();
    assert.equal(await remove.getAttribute('data-confirm'), 'true'); // a second click confirms
    await remove.click();
    assert.match(await toastMatching(/Peer removed/), /peers\.txt/);
    assert.doesNotMatch(fs.readFileSync(path.join(A.data, 'peers.txt'), 'utf8'), new RegExp(B.peerId));
    await waitFor('B no longer connected in A’s dashboard', async () => {
      const row = peerRow(B.peerId);
      return (await row.count()) === 0 || (await row.locator('[data-testid="peer-state"]').innerText()) !== 'connected';
    }, 15000);
    await shot('13-peer-removed');
  });
});
