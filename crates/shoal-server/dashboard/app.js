// The dashboard's entry point: the token, the shared state every view reads
// (this node, its peers, its collections), the change feed, and which page
// is shown (`#/instances`, `#/collections/NAME`, `#/conflicts`).

import { api, ApiError, clearToken, onUnauthorized, setToken, token } from './api.js';
import { h, replace, shortPeer } from './dom.js';
import { startFeed } from './feed.js';
import { mountInstances } from './instances.js';
import { mountCollections } from './collections.js';
import { mountConflicts } from './conflicts.js';
import { closeDrawer } from './drawer.js';

const PEERS_EVERY_MS = 2000;

const main = document.getElementById('main');
const feedState = document.getElementById('feed-state');
const nodeBadge = document.getElementById('node-badge');

/** A tiny event bus: `change` (a feed event), `peers`, `collections`. */
function bus() {
  const handlers = new Map();
  return {
    on(name, fn) {
      if (!handlers.has(name)) handlers.set(name, new Set());
      handlers.get(name).add(fn);
      return () => handlers.get(name).delete(fn);
    },
    emit(name, value) {
      for (const fn of handlers.get(name) || []) {
        try {
          fn(value);
        } catch (error) {
          console.error(`${name} handler failed`, error);
        }
      }
    },
  };
}

/** What every view shares. */
const ctx = {
  events: bus(),
  node: null,
  peers: [],
  /** Hole punches with any peer since the node started (GET /api/peers). */
  punch: { attempts: 0, successes: 0 },
  /** Whether this node is reachable from the internet: public, behind NAT
   *  or unknown (AutoNAT v2 through its relays; GET /api/peers). */
  reachability: '',
  collections: [],
  /** Peers with a live, proven session: the ones to compare with. */
  connectedPeers() {
    return ctx.peers.filter((p) => p.state === 'connected');
  },
  async refreshPeers() {
    try {
      const reply = await api('/api/peers', { timeout: 8000 });
      ctx.peers = reply.peers || [];
      ctx.punch = reply.punch || { attempts: 0, successes: 0 };
      ctx.reachability = reply.reachability || '';
      ctx.events.emit('peers', ctx.peers);
    } catch (error) {
      if (error.code !== 'unauthorized') ctx.events.emit('peers-error', error);
    }
    return ctx.peers;
  },
  async refreshCollections() {
    try {
      const reply = await api('/api/collections', { timeout: 8000 });
      ctx.collections = reply.collections || [];
      ctx.events.emit('collections', ctx.collections);
    } catch (error) {
      if (error.code !== 'unauthorized') ctx.events.emit('collections-error', error);
    }
    return ctx.collections;
  },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

let feed = null;
let peersTimer = null;
let unmount = null;
let started = false;

/** `decodeURIComponent`, or null for malformed escapes (a mangled link). */
function decoded(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** Takes `#token=...` from the address bar, then removes it from view. */
function tokenFromFragment() {
  const match = location.hash.match(/[#&]token=([^&]*)/);
  if (!match) return;
  // A mangled token is left for the token form to ask for again.
  const token = decoded(match[1]);
  if (token) setToken(token);
  history.replaceState(null, '', location.pathname + location.search);
}

function showTokenForm(problem) {
  stop();
  closeDrawer();
  nodeBadge.textContent = '';
  setFeedState('offline');
  const input = h('input', {
    type: 'password',
    id: 'token-input',
    name: 'token',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: '64 hex digits',
    'data-testid': 'token-input',
    required: true,
  });
  const form = h(
    'form',
    { class: 'card token-card', 'data-testid': 'token-form' },
    h('h1', {}, 'Connect to this node'),
    h(
      'p',
      {},
      'The dashboard needs the access token of the daemon. It is in the file ',
      h('code', {}, 'DATA/token'),
      ' of the node’s data directory (created by ',
      h('code', {}, 'shoal init'),
      '); ',
      h('code', {}, 'shoal serve'),
      ' also prints a link that carries it.',
    ),
    problem ? h('p', { class: 'form-error', 'data-testid': 'token-error' }, problem) : null,
    h('label', { for: 'token-input' }, 'Access token'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary', 'data-testid': 'token-submit' }, 'Connect')),
    h('p', { class: 'hint' }, 'Kept in this tab’s session storage only.'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    setToken(input.value);
    start();
  });
  replace(main, form);
  input.focus();
}

function setFeedState(state) {
  feedState.dataset.state = state;
  feedState.textContent = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'offline' }[state] || state;
  feedState.title = state === 'live' ? 'Receiving changes as they happen' : 'The change feed is not connected';
}

function stop() {
  started = false;
  if (feed) feed.stop();
  feed = null;
  clearInterval(peersTimer);
  if (unmount) unmount();
  unmount = null;
}

async function start() {
  stop();
  if (!token()) {
    showTokenForm(null);
    return;
  }
  replace(main, h('div', { class: 'loading-page' }, h('span', { class: 'spinner' }), 'Connecting to the daemon…'));
  try {
    ctx.node = await api('/api/node', { timeout: 10000 });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // the form is shown
    replace(
      main,
      h(
        'div',
        { class: 'card error-card', 'data-testid': 'boot-error' },
        h('h1', {}, 'The daemon did not answer'),
        h('p', {}, error.message),
        h('button', { type: 'button', class: 'primary', onClick: start }, 'Try again'),
      ),
    );
    return;
  }
  started = true;
  nodeBadge.replaceChildren(
    h('span', { class: 'node-name' }, ctx.node.name || 'this node'),
    h('code', { title: ctx.node.peer_id }, shortPeer(ctx.node.peer_id)),
  );
  feed = startFeed({
    since: ctx.node.db_version ?? null,
    onChange: (change) => ctx.events.emit('change', change),
    onState: setFeedState,
  });
  await Promise.all([ctx.refreshPeers(), ctx.refreshCollections()]);
  peersTimer = setInterval(() => ctx.refreshPeers(), PEERS_EVERY_MS);
  route();
}

function route() {
  if (/[#&]token=/.test(location.hash)) {
    tokenFromFragment();
    start();
    return;
  }
  if (!started) return;
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, ...rest] = hash.split('/');
  if (unmount) unmount();
  unmount = null;
  closeDrawer();
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.dataset.page === (page || 'instances'));
  }
  main.replaceChildren();
  if (page === 'collections') {
    // A malformed collection name in the address opens the first collection.
    unmount = mountCollections(main, ctx, rest.length ? decoded(rest.join('/')) : null);
    document.title = 'Collections · Shoal';
  } else if (page === 'conflicts') {
    unmount = mountConflicts(main, ctx);
    document.title = 'Conflicts · Shoal';
  } else {
    unmount = mountInstances(main, ctx);
    document.title = 'Instances · Shoal';
  }
}

onUnauthorized(() => {
  clearToken();
  showTokenForm('The daemon refused the token (401). Enter the token from DATA/token.');
});

document.getElementById('sign-out').addEventListener('click', () => {
  clearToken();
  showTokenForm(null);
});

window.addEventListener('hashchange', route);
tokenFromFragment();
start();
