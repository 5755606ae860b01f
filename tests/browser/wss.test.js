// The notes app over https and wss://, through each nginx reverse proxy
// docs/web.md prints (two: the page and the peer on hosts of their own, and
// one origin for both), end to end: nginx runs the example as the doc has
// it — only the certificate paths (a self-signed certificate made here),
// the ports and the listen address are replaced — in front of a real
// `shoal serve --web-pkg` daemon; headless Chromium resolves the examples'
// host names to loopback and accepts the certificate, loads the page over
// https from the example's host, and the tab dials the daemon at
// /dns4/<the peer host>/tcp/…/wss/p2p/… as a user behind such a proxy
// would. A note written in the tab reaches the daemon and one written on
// the daemon reaches the tab; the proxy's log shows the WebSocket upgrade
// it carried.
//
// Needs nginx (Debian: nginx) and openssl; scripts/browser-test.sh
// installs both and sets SHOAL_REQUIRE_NGINX, so the test fails rather
// than skips there. Run directly: node --test tests/browser/wss.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, SECRET, freePort, removeTempDir, startDaemon, stopDaemons, tempDir, waitFor, websocketAddress } from './daemons.js';

const PKG = process.env.SHOAL_WEB_PKG || path.join(ROOT, 'target', 'wasm', 'pkg');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** nginx's path, or null. */
function findNginx() {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx']) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
}
const NGINX = findNginx();
/** Whether `command` runs. */
function runs(command) {
  try {
    execFileSync(command, ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const missing = !NGINX ? 'nginx is not installed (Debian: apt-get install nginx)'
  : !runs('openssl') ? 'openssl is not installed (Debian: apt-get install openssl)' : null;
if (missing && process.env.SHOAL_REQUIRE_NGINX) throw new Error(missing);

/**
 * The nginx examples of docs/web.md, as printed there: `{ text, pageHost,
 * peerHost }` — the host serving `/apps/` and the one a tab dials (the
 * server block proxying to the WebSocket listener, 127.0.0.1:4042, or the
 * only one).
 */
function docExamples() {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'web.md'), 'utf8');
  const examples = [...doc.matchAll(/^```nginx\n([\s\S]*?)^```$/gm)].map(([, text]) => {
    const servers = text.split(/^server \{/m).slice(1).map((block) => ({
      name: block.match(/server_name\s+([^;\s]+);/)[1],
      ws: /proxy_pass http:\/\/127\.0\.0\.1:4042/.test(block),
      apps: /location \/apps\/|location \/ /.test(block) && !/proxy_pass http:\/\/127\.0\.0\.1:4042/.test(block),
    }));
    const peer = servers.find((server) => server.ws) || servers[0];
    const page = servers.find((server) => server.apps) || servers[0];
    return { text, pageHost: page.name, peerHost: peer.name };
  });
  assert.ok(examples.length >= 1, 'docs/web.md has an nginx example');
  return examples;
}
const EXAMPLES = missing ? [] : docExamples();

let daemon;
let wsPort;
let work;
let browser;
const proxies = [];

/**
 * Runs `example` in nginx on a free loopback port (its own directory under
 * `work`); resolves to `{ port, dir }` once it listens.
 */
async function startProxy(example, index) {
  const dir = path.join(work, `proxy-${index}`);
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const site = example.text
    .replace(/\/etc\/letsencrypt\/live\/[^/]+\/fullchain\.pem/g, path.join(work, 'cert.pem'))
    .replace(/\/etc\/letsencrypt\/live\/[^/]+\/privkey\.pem/g, path.join(work, 'key.pem'))
    .replaceAll('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
    .replace(/^\s*listen \[::\]:443 ssl;\n/gm, '')
    .replaceAll('127.0.0.1:4041', daemon.http)
    .replaceAll('127.0.0.1:4042', `127.0.0.1:${wsPort}`);
  fs.writeFileSync(path.join(dir, 'site.conf'), site);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/site.conf;
}
`);
  const args = ['-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-p', dir];
  execFileSync(NGINX, [...args, '-t'], { stdio: 'pipe' });
  const child = spawn(NGINX, [...args, '-g', 'daemon off;'], { stdio: 'ignore' });
  proxies.push(child);
  if (process.env.PIDS_FILE) fs.appendFileSync(process.env.PIDS_FILE, `${child.pid}\n`);
  let exited = null;
  child.once('exit', (code, signal) => { exited = signal || code; });
  // It failed to start (the port taken meanwhile, ...): say what it logged.
  const failed = () => {
    if (exited !== null) throw new Error(`nginx exited (${exited}): ${fs.readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
  };
  await waitFor('nginx listening', () => {
    failed();
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(socket.destroy() || true));
      socket.once('error', () => resolve(false));
    });
  }, 10000);
  failed();
  return { port, dir };
}

before(async () => {
  if (missing) return;
  assert.ok(fs.existsSync(path.join(PKG, 'shoal_web.js')), `no wasm build in ${PKG}: run scripts/wasm-build.sh`);
  daemon = await startDaemon(tempDir(), 'behind-proxy', ['--web-pkg', PKG]);
  wsPort = Number((await websocketAddress(daemon)).match(/\/tcp\/(\d+)\/ws/)[1]);
  // nginx's worker processes run as another user when started as root:
  // they must be able to reach this directory, so it is not under the
  // suite's private one (removed at exit, whatever happens).
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-wss-'));
  fs.chmodSync(work, 0o755);
  const hosts = [...new Set(EXAMPLES.flatMap((e) => [e.pageHost, e.peerHost]))];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', `/CN=${hosts[0]}`, '-addext', `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
    '-keyout', path.join(work, 'key.pem'), '-out', path.join(work, 'cert.pem')], { stdio: 'ignore' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--ignore-certificate-errors',
      `--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`],
  });
});

process.on('exit', () => {
  for (const proxy of proxies) if (proxy.exitCode === null) proxy.kill('SIGKILL');
  if (work && !process.env.KEEP_NODES) fs.rmSync(work, { recursive: true, force: true });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  for (const proxy of proxies) proxy.kill();
  await stopDaemons();
  if (work && !process.env.KEEP_NODES) fs.rmSync(work, { recursive: true, force: true });
  if (!process.env.KEEP_NODES) removeTempDir();
});

describe('the notes app behind the reverse proxies docs/web.md prints', { skip: missing || false }, () => {
  EXAMPLES.forEach((example, index) => {
    test(`example ${index + 1} (page ${example.pageHost}, peer ${example.peerHost}): https and wss:// end to end`, async () => {
      const { port, dir } = await startProxy(example, index);
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
      await page.goto(`https://${example.pageHost}:${port}/apps/notes/`);
      await page.waitForSelector('[data-testid="store-state"][data-state="ready"]', { timeout: 60000 });
      assert.equal(await page.evaluate(() => window.isSecureContext), true);

      // Behind the proxy the user types the wss address (docs/web.md), once
      // the page has filled in the one daemon.json names (its fetch may
      // answer after the store is ready, and would overwrite what was typed).
      await page.waitForFunction(() => document.querySelector('[data-testid="peer-address"]').value !== '', null, { timeout: 10000 });
      const address = `/dns4/${example.peerHost}/tcp/${port}/wss/p2p/${daemon.peerId}`;
      await page.fill('[data-testid="peer-address"]', address);
      await page.fill('[data-testid="group-secret"]', SECRET);
      await page.click('[data-testid="connect"]');
      await page.waitForSelector('[data-testid="peer-rows"] tr[data-state="connected"]', { timeout: 30000 });

      const title = `through proxy ${index + 1}`;
      await page.fill('[data-testid="note-title"]', title);
      await page.fill('[data-testid="note-body"]', 'over wss');
      await page.click('[data-testid="save-note"]');
      const onDaemon = await waitFor('the tab\'s note on the daemon', async () => {
        const { body } = await daemon.api('GET', '/api/collections/notes/records?limit=100');
        return (body.records || []).find((r) => r.value && r.value.title === title);
      });
      assert.equal(onDaemon.value.body, 'over wss');

      const back = `back through proxy ${index + 1}`;
      const put = await daemon.api('PUT', `/api/collections/notes/records/back-${index}`, { title: back, body: '', updated_at: Date.now() });
      assert.ok(put.status < 300, JSON.stringify(put.body));
      await page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="note"] .title')].some((e) => e.textContent === t), back, { timeout: 30000 });

      // The session went through nginx: once the tab is gone it logs the
      // WebSocket upgrade it carried (101; written when the connection
      // ends), beside the page's own files.
      await context.close();
      const log = await waitFor('the upgrade in the proxy\'s log', () => {
        const text = fs.readFileSync(path.join(dir, 'access.log'), 'utf8');
        return / "GET \/ HTTP\/1\.1" 101 /.test(text) && text;
      }, 10000);
      assert.match(log, /"GET \/apps\/pkg\/shoal_web_bg\.wasm HTTP\/1\.1" 200 /);
    });
  });
});
