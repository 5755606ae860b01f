// Browser test of the Devices section on the Instances page (issue 19):
// against two real daemons, A makes the group's owner key, B (holding the
// group secret) is refused and shows as waiting for approval, the owner
// approves it from the dashboard and records flow, then revokes it there.
//
// Run by scripts/browser-test.sh, or directly:
//   node --test --test-concurrency=1 tests/browser/devices.test.js

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BIN, removeTempDir, startDaemon, stopDaemons, tempDir, waitFor } from './daemons.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(here, 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let A;
let B;
let browser;
let page;

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const tmp = tempDir();
  A = await startDaemon(tmp, 'dev-a');
  execFileSync(BIN, ['--data', A.data, 'devices', 'owner-key', 'create'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: path.dirname(A.data) } });
  B = await startDaemon(tmp, 'dev-b');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  page.on('dialog', (dialog) => dialog.accept());
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopDaemons();
  if (!process.env.KEEP_NODES) removeTempDir();
});

const deviceRow = (peer) => page.locator(`[data-testid="device-row"][data-peer="${peer}"]`);

test('the owner approves and revokes a device from the Instances page', async () => {
  try {
    const added = await A.api('POST', '/api/peers', { address: B.address });
    assert.ok(added.status < 300, JSON.stringify(added.body));
    // B proved the secret but holds no admission: A refuses it and lists its request.
    await waitFor("B's request on A", async () => (await A.api('GET', '/api/devices')).body.devices.some((d) => d.peer === B.peerId && d.status === 'pending'));
    await A.api('PUT', '/api/collections/tasks/records/t1', { title: 'milk' });
    await page.goto(`${A.url}/#token=${A.token}`);
    await page.click('[data-testid="nav-instances"]');
    await deviceRow(B.peerId).locator('[data-testid="device-approve"]').waitFor({ timeout: 30000 });
    assert.equal(await deviceRow(B.peerId).getAttribute('data-status'), 'pending');
    assert.equal((await B.api('GET', '/api/collections/tasks/records/t1')).status, 404, 'a device not admitted received a record');
    await page.screenshot({ path: path.join(SHOTS, 'devices-1-pending.png') });

    await deviceRow(B.peerId).locator('[data-testid="device-role"]').selectOption('member');
    await deviceRow(B.peerId).locator('[data-testid="device-approve"]').click();
    await page.locator(`[data-testid="device-row"][data-peer="${B.peerId}"][data-status="admitted"]`).waitFor({ timeout: 30000 });
    await waitFor('t1 on approved B', async () => (await B.api('GET', '/api/collections/tasks/records/t1')).status === 200, 60000);

    await deviceRow(B.peerId).locator('[data-testid="device-revoke"]').click();
    await page.locator(`[data-testid="device-row"][data-peer="${B.peerId}"][data-status="revoked"]`).waitFor({ timeout: 30000 });
    await page.screenshot({ path: path.join(SHOTS, 'devices-2-revoked.png') });
    await A.api('PUT', '/api/collections/tasks/records/t2', { title: 'after' });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal((await B.api('GET', '/api/collections/tasks/records/t2')).status, 404, 'a revoked device received a record');
  } catch (error) {
    await page.screenshot({ path: path.join(SHOTS, 'failed-devices.png') }).catch(() => {});
    throw error;
  }
});
