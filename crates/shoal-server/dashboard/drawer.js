// The Sync Details drawer for one record: its fields and their clocks on
// this node and on each connected peer (GET .../records/{id}/sync?peer=P),
// its status per peer, and the pull/push actions that status allows.
// A load that takes over 12 s is abandoned for an explicit error state.

import { api, seg } from './api.js';
import { debounce, h, replace, shortPeer, statusBadge } from './dom.js';
import { toast } from './toast.js';

export const LOAD_TIMEOUT_MS = 12000;

/** What each status allows: pull brings the peer's state here, push sends ours. */
const ACTIONS = {
  'in-sync': [],
  'local-only': ['push'],
  'peer-only': ['pull'],
  diverged: ['pull', 'push'],
  'assets-missing': ['pull', 'push'],
};

const EXPLAIN = {
  'in-sync': 'Both sides hold the same state.',
  'local-only': 'Alive here; absent or deleted on the peer.',
  'peer-only': 'Alive on the peer; absent or deleted here.',
  diverged: 'Alive on both sides, in different states.',
  'assets-missing': 'The same state, but a blob it references is missing on a side.',
};

let open = null; // the drawer shown: { ctx, collection, id, ... }

/** `collection/id` of the record shown, or null. */
export function drawerRecord() {
  return open ? `${open.collection}/${open.id}` : null;
}

export function closeDrawer() {
  if (!open) return;
  const shown = open;
  open = null;
  if (shown.controller) shown.controller.abort();
  shown.off();
  shown.later.cancel();
  document.removeEventListener('keydown', shown.onKey);
  shown.root.replaceChildren();
  document.body.classList.remove('drawer-open');
  for (const tr of document.querySelectorAll('tr.selected')) tr.classList.remove('selected');
}

/** Opens the drawer on `collection/id`; `onSynced` runs after a pull or push. */
export function openDrawer(ctx, collection, id, { onSynced } = {}) {
  closeDrawer();
  const root = document.getElementById('drawer-root');
  const body = h('div', { class: 'drawer-body', 'data-testid': 'drawer-body' });
  const refresh = h('button', { type: 'button', class: 'ghost', 'data-testid': 'drawer-refresh', title: 'Reload everything shown here' }, '↻ Refresh');
  const close = h('button', { type: 'button', class: 'ghost icon', 'data-testid': 'drawer-close', 'aria-label': 'Close' }, '×');
  const panel = h(
    'aside',
    { class: 'drawer', role: 'dialog', 'aria-label': `Sync details of ${collection}/${id}`, 'data-testid': 'drawer', 'data-collection': collection, 'data-id': id },
    h(
      'header',
      { class: 'drawer-head' },
      h('div', {}, h('div', { class: 'eyebrow' }, 'Sync details'), h('h2', { class: 'mono', 'data-testid': 'drawer-title' }, `${collection}/${id}`)),
      h('div', { class: 'drawer-tools' }, refresh, close),
    ),
    body,
  );
  const shade = h('div', { class: 'shade', onClick: closeDrawer });
  root.replaceChildren(shade, panel);
  document.body.classList.add('drawer-open');

  const state = { ctx, collection, id, onSynced, root, body, controller: null, busy: false };
  state.onKey = (event) => {
    if (event.key === 'Escape') closeDrawer();
  };
  document.addEventListener('keydown', state.onKey);
  state.later = debounce(() => {
    if (open === state && !state.busy) load(state);
  }, 800);
  state.off = ctx.events.on('change', (change) => {
    if (change.collection === collection && change.id === id) state.later();
  });
  open = state;
  for (const tr of document.querySelectorAll('tr[data-testid="record-row"]')) {
    tr.classList.toggle('selected', tr.dataset.id === id);
  }
  refresh.addEventListener('click', () => load(state));
  close.addEventListener('click', closeDrawer);
  load(state);
}

async function load(state) {
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, LOAD_TIMEOUT_MS);
  const current = () => open === state && state.controller === controller;
  state.busy = true;
  replace(
    state.body,
    h(
      'div',
      { class: 'drawer-state', 'data-testid': 'drawer-loading' },
      h('span', { class: 'spinner' }),
      h('div', {}, 'Loading this record on both sides…', h('div', { class: 'muted small' }, `Gives up after ${LOAD_TIMEOUT_MS / 1000} s.`)),
    ),
  );
  const { ctx, collection, id } = state;
  const peers = ctx.connectedPeers().map((p) => p.peer);
  const options = { signal: controller.signal, timeout: LOAD_TIMEOUT_MS + 1000 };
  try {
    const local = api(`/api/collections/${seg(collection)}/records/${seg(id)}`, options).catch((error) => {
      if (error.status === 404) return null;
      throw error;
    });
    const sides = peers.map((peer) =>
      api(`/api/collections/${seg(collection)}/records/${seg(id)}/sync?peer=${seg(peer)}`, options).then(
        (reply) => ({ peer, reply }),
        (error) => {
          // The whole load was abandoned: that is the drawer's error, not this peer's.
          if (error.status === 0) throw error;
          return { peer, error };
        },
      ),
    );
    const [record, ...perPeer] = await Promise.all([local, ...sides]);
    if (!current()) return;
    render(state, record, perPeer);
  } catch (error) {
    if (!current()) return;
    renderError(state, timedOut ? null : error);
  } finally {
    clearTimeout(timer);
    if (state.controller === controller) state.busy = false;
  }
}

function renderError(state, error) {
  const retry = h('button', { type: 'button', class: 'primary', 'data-testid': 'drawer-retry' }, 'Retry');
  retry.addEventListener('click', () => load(state));
  replace(
    state.body,
    h(
      'div',
      { class: 'drawer-state error', 'data-testid': 'drawer-error', 'data-reason': error ? error.code : 'timeout' },
      h('div', { class: 'error-icon' }, '!'),
      h('h3', {}, 'Could not load this record'),
      h(
        'p',
        { 'data-testid': 'drawer-error-message' },
        error
          ? error.message
          : `No answer within ${LOAD_TIMEOUT_MS / 1000} s. The daemon or the peer may be busy or unreachable.`,
      ),
      retry,
    ),
  );
}

function render(state, record, perPeer) {
  const loaded = new Date();
  replace(
    state.body,
    h(
      'section',
      { class: 'drawer-section', 'data-testid': 'drawer-local' },
      h('h3', {}, 'On this node'),
      record
        ? h('pre', { class: 'json', 'data-testid': 'drawer-local-value' }, JSON.stringify(record.value, null, 2))
        : h('p', { class: 'muted', 'data-testid': 'drawer-local-value' }, 'Not here (absent or deleted).'),
    ),
    perPeer.length
      ? perPeer.map((side) => peerSection(state, side))
      : h('section', { class: 'drawer-section' }, h('p', { class: 'muted', 'data-testid': 'drawer-no-peer' }, 'No peer is connected: there is nothing to compare with.')),
    h('p', { class: 'muted small drawer-foot', 'data-testid': 'drawer-loaded' }, `Loaded at ${clockTime(loaded)}`),
  );
}

function peerSection(state, { peer, reply, error }) {
  const head = h('div', { class: 'peer-section-head' }, h('h3', {}, 'vs ', h('code', { title: peer }, shortPeer(peer))));
  const section = h('section', { class: 'drawer-section peer-section', 'data-testid': 'drawer-peer', 'data-peer': peer }, head);
  if (error) {
    section.dataset.status = 'error';
    head.append(h('span', { class: 'badge status-unknown', 'data-testid': 'drawer-status', 'data-status': 'error' }, error.code));
    section.append(h('p', { class: 'form-error', 'data-testid': 'drawer-peer-error' }, `Could not compare: ${error.message}`));
    return section;
  }
  const status = reply.status;
  section.dataset.status = status;
  const badge = statusBadge(status);
  badge.dataset.testid = 'drawer-status';
  head.append(badge);
  const actions = h('div', { class: 'actions', 'data-testid': 'drawer-actions' });
  for (const action of ACTIONS[status] || []) {
    const button = h(
      'button',
      { type: 'button', class: action === 'pull' ? 'primary' : 'secondary', 'data-testid': `drawer-${action}`, 'data-peer': peer },
      action === 'pull' ? '⇩ Pull from peer' : '⇧ Push to peer',
    );
    button.addEventListener('click', () => transfer(state, peer, action, actions));
    actions.append(button);
  }
  section.append(h('p', { class: 'muted small' }, EXPLAIN[status] || ''), actions, fieldTable(reply.local, reply.remote));
  return section;
}

function fieldTable(local, remote) {
  // Slots by name, in the server's slot order (the life slot first).
  const slots = new Map();
  for (const [side, data] of [['local', local], ['remote', remote]]) {
    for (const slot of data?.slots || []) {
      if (!slots.has(slot.slot)) slots.set(slot.slot, { kind: slot.kind });
      slots.get(slot.slot)[side] = slot;
    }
  }
  const lifeName = [...slots.keys()].find((name) => slots.get(name).kind === 'life');
  const life = lifeName ? slots.get(lifeName) : {};
  const rows = [...slots.keys()]
    .filter((name) => name !== lifeName)
    .map((name) => {
      const { local: l, remote: r } = slots.get(name);
      return h(
        'tr',
        { class: differs(l, r) ? 'differs' : '', 'data-testid': 'drawer-field', 'data-slot': name, 'data-differs': String(differs(l, r)) },
        h('th', { class: 'mono' }, name),
        slotCell(l, slotValue),
        slotCell(r, slotValue),
      );
    });
  const lifeDiffers = differs(life.local, life.remote) || Boolean(local?.alive) !== Boolean(remote?.alive);
  return h(
    'div',
    { class: 'sides' },
    h(
      'table',
      { class: 'table fields', 'data-testid': 'drawer-fields' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'Here'), h('th', {}, 'On the peer'))),
      h(
        'tbody',
        {},
        h(
          'tr',
          { class: `life-row${lifeDiffers ? ' differs' : ''}`, 'data-testid': 'drawer-field', 'data-slot': 'life', 'data-differs': String(lifeDiffers) },
          h('th', {}, 'record'),
          lifeCell(local, life.local),
          lifeCell(remote, life.remote),
        ),
        rows.length ? rows : h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No fields on either side.')),
      ),
    ),
    missing(local),
  );
}

/** A field or entry slot's value, or "removed". */
function slotValue(slot) {
  if (slot.value === null || slot.value === undefined) return h('span', { class: 'muted' }, 'removed');
  return h('code', { class: 'slot-value' }, JSON.stringify(slot.value));
}

function differs(a, b) {
  if (!a || !b) return Boolean(a) !== Boolean(b);
  return JSON.stringify(a.value) !== JSON.stringify(b.value) || a.clock !== b.clock || a.life !== b.life;
}

/** A slot's value (by `show`), its clock, when it was written and in which life. */
function slotCell(slot, show, withLife = true) {
  if (!slot) return h('td', { class: 'muted' }, '—');
  return h(
    'td',
    {},
    show(slot),
    h('div', { class: 'clock', 'data-testid': 'slot-clock', title: 'WALL_MS.COUNTER@SITE' }, slot.clock),
    h('div', { class: 'muted small' }, [written(slot), withLife && slot.life !== undefined && slot.life !== null ? `life ${slot.life}` : ''].filter(Boolean).join(' · ')),
  );
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** `HH:MM:SS`, local time. */
function clockTime(t) {
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

/** When the slot was written, local time to the millisecond. */
function written(slot) {
  if (!slot.wall_ms) return '';
  const t = new Date(slot.wall_ms);
  return `written ${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${clockTime(t)}.${pad(t.getMilliseconds(), 3)}`;
}

function lifeCell(side, slot) {
  if (!side) return h('td', { class: 'muted' }, 'never seen');
  const badge = side.alive ? h('span', { class: 'badge life-alive' }, 'alive') : h('span', { class: 'badge life-deleted' }, 'deleted');
  if (!slot) return h('td', {}, badge, side.life !== undefined && side.life !== null ? h('span', { class: 'muted small' }, ` causal length ${side.life}`) : null);
  return slotCell(slot, () => h('div', {}, badge, h('span', { class: 'muted small' }, `causal length ${side.life ?? slot.life}`)), false);
}

function missing(local) {
  const hashes = local?.missing_blobs || [];
  if (!hashes.length) return null;
  return h(
    'div',
    { class: 'missing-blobs', 'data-testid': 'drawer-missing-blobs' },
    h('strong', {}, `${hashes.length} blob${hashes.length === 1 ? '' : 's'} missing here`),
    hashes.map((hash) => h('div', { class: 'mono small' }, hash)),
  );
}

async function transfer(state, peer, action, actions) {
  for (const button of actions.querySelectorAll('button')) button.disabled = true;
  const label = action === 'pull' ? `Pull from ${shortPeer(peer)}` : `Push to ${shortPeer(peer)}`;
  try {
    const reply = await api(`/api/peers/${seg(peer)}/${action}`, {
      method: 'POST',
      body: { collection: state.collection, id: state.id },
      timeout: 30000,
    });
    toast(reply.reason || reply.result, reply.ok ? 'success' : 'warn', `${label}: ${reply.result}`);
  } catch (error) {
    toast(error.message, 'error', `${label} failed`);
  }
  if (open !== state) return;
  await load(state);
  if (state.onSynced) state.onSynced();
}
