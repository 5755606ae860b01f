// The Instances page: this node and the add-peer form (node.js), each peer's
// state, how it is reached (direct / relayed via which relay / not connected
// and the last error) and its hole punches, whether this node is reachable
// from the internet (in the peers note), and per collection the sharing
// rule with that peer and the integrity report against it
// (GET /api/peers/{peer}/diff).

import { api, seg } from './api.js';
import { ago, bytes, debounce, h, replace, shortPeer, stateBadge, statusBadge } from './dom.js';
import { addPeerCard, nodeCard } from './node.js';
import { devicesSection } from './devices.js';
import { toast } from './toast.js';

const MODES = ['both', 'send', 'receive', 'none'];
const MODE_HINTS = {
  both: 'send and receive',
  send: 'send only: its changes are not taken',
  receive: 'receive only: edits here stay here',
  none: 'neither way',
};
const MODE_LABELS = { both: 'both ways', send: 'send only', receive: 'receive only', none: 'none' };
const STATUSES = ['local-only', 'peer-only', 'diverged', 'assets-missing'];
const DIFF_EVERY_MS = 15000;

export function mountInstances(root, ctx) {
  let sharing = null;
  let sharingError = null;
  const diffs = new Map(); // peer -> { reply, error, loading, again }
  const cards = new Map(); // peer -> { card, rows: Map(collection -> row), ... }
  const offs = [];

  const peerList = h('div', { class: 'peer-list', 'data-testid': 'peer-list' });
  const peersNote = h('p', { class: 'hint', 'data-testid': 'peers-note' });
  const localTable = h('tbody');
  const devices = devicesSection();

  root.append(
    h(
      'div',
      { class: 'page', 'data-testid': 'instances-page' },
      h('div', { class: 'grid-2' }, nodeCard(ctx.node, ctx), addPeerCard(ctx)),
      h(
        'section',
        { class: 'section' },
        h('div', { class: 'section-head' }, h('h2', {}, 'Peers'), peersNote),
        peerList,
      ),
      devices.element,
      h(
        'section',
        { class: 'section card' },
        h('h2', {}, 'Collections on this node'),
        h(
          'table',
          { class: 'table', 'data-testid': 'local-collections' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Collection'), h('th', { class: 'num' }, 'Records'), h('th', { class: 'num' }, 'Deleted'), h('th', {}, 'Local only'))),
          localTable,
        ),
        h('p', { class: 'hint' }, 'A local-only collection is shared with no peer, whatever the rules say.'),
      ),
    ),
  );

  function collectionNames() {
    const names = new Set(ctx.collections.map((c) => c.name));
    for (const rule of sharing?.rules || []) if (rule.collection && rule.collection !== '*') names.add(rule.collection);
    for (const name of sharing?.local_only || []) names.add(name);
    for (const diff of diffs.values()) for (const c of diff.reply?.collections || []) names.add(c.collection);
    return [...names].sort();
  }

  function isLocalOnly(collection) {
    return (sharing?.local_only || []).includes(collection);
  }

  function modeFor(peer, collection) {
    if (!sharing) return { mode: null, source: 'unknown' };
    const rules = sharing.rules || [];
    const exact = rules.find((r) => r.peer === peer && r.collection === collection);
    if (exact) return { mode: exact.mode, source: 'rule for this peer' };
    const every = rules.find((r) => r.peer === '*' && r.collection === collection);
    if (every) return { mode: every.mode, source: 'rule for every peer' };
    return { mode: sharing.default || 'both', source: 'default' };
  }

  async function loadSharing() {
    try {
      sharing = await api('/api/sharing');
      sharingError = null;
    } catch (error) {
      sharingError = error;
    }
    render();
  }

  function applySharingReply(reply) {
    if (reply && Array.isArray(reply.rules)) {
      sharing = { default: sharing?.default ?? 'both', local_only: sharing?.local_only ?? [], ...reply };
      render();
    } else {
      loadSharing();
    }
  }

  async function refreshDiff(peer) {
    const info = ctx.peers.find((p) => p.peer === peer);
    if (!info || info.state !== 'connected') {
      diffs.delete(peer);
      render();
      return;
    }
    const entry = diffs.get(peer) || {};
    if (entry.loading) {
      entry.again = true;
      return;
    }
    entry.loading = true;
    diffs.set(peer, entry);
    render();
    try {
      entry.reply = await api(`/api/peers/${seg(peer)}/diff`, { timeout: 30000 });
      entry.error = null;
      entry.at = Date.now();
    } catch (error) {
      entry.error = error;
    }
    entry.loading = false;
    render();
    if (entry.again) {
      entry.again = false;
      refreshDiff(peer);
    }
  }

  function refreshAllDiffs() {
    for (const peer of ctx.connectedPeers()) refreshDiff(peer.peer);
  }

  function integrity(peer, collection) {
    const info = ctx.peers.find((p) => p.peer === peer);
    const cell = h('div', { class: 'integrity', 'data-testid': 'integrity', 'data-peer': peer, 'data-collection': collection });
    if (!info || info.state !== 'connected') {
      cell.dataset.state = 'offline';
      return replace(cell, h('span', { class: 'muted' }, 'not connected'));
    }
    const entry = diffs.get(peer);
    if (!entry || (!entry.reply && !entry.error)) {
      cell.dataset.state = 'loading';
      return replace(cell, h('span', { class: 'muted' }, 'checking…'));
    }
    if (entry.error && !entry.reply) {
      cell.dataset.state = 'error';
      return replace(cell, h('span', { class: 'badge status-unknown', title: entry.error.message }, `check failed: ${entry.error.code}`));
    }
    const found = (entry.reply.collections || []).find((c) => c.collection === collection);
    if (!found) {
      cell.dataset.state = 'absent';
      return replace(cell, h('span', { class: 'muted' }, 'not on either side'));
    }
    if (found.error) {
      cell.dataset.state = 'not-compared';
      return replace(cell, h('span', { class: 'badge status-unknown', title: found.error.message }, `not compared: ${found.error.code}`));
    }
    const counts = found.counts || {};
    cell.dataset.state = 'checked';
    cell.dataset.total = String(counts.total ?? 0);
    if (!counts.total) return replace(cell, statusBadge('in-sync'));
    const keys = { 'local-only': 'local_only', 'peer-only': 'peer_only', diverged: 'diverged', 'assets-missing': 'assets_missing' };
    return replace(
      cell,
      STATUSES.filter((s) => counts[keys[s]]).map((s) => statusBadge(s, counts[keys[s]])),
      found.unlisted ? h('span', { class: 'muted' }, ` (+${found.unlisted} unlisted)`) : null,
    );
  }

  function shareSelect(peer, collection) {
    const select = h(
      'select',
      { 'data-testid': 'share-select', 'data-peer': peer, 'data-collection': collection, 'aria-label': `Sharing of ${collection} with ${peer}` },
      MODES.map((mode) => h('option', { value: mode, title: MODE_HINTS[mode] }, MODE_LABELS[mode])),
    );
    select.addEventListener('change', async () => {
      const mode = select.value;
      select.disabled = true;
      select.dataset.pending = 'true';
      try {
        const reply = await api('/api/sharing', { method: 'PUT', body: { peer, collection, mode } });
        toast(`${collection} with ${shortPeer(peer)} is now “${mode}”: ${MODE_HINTS[mode]}`, 'success', 'Sharing changed');
        applySharingReply(reply);
      } catch (error) {
        toast(error.message, 'error', 'Sharing not changed');
      } finally {
        delete select.dataset.pending;
        select.disabled = false;
        render();
        refreshDiff(peer);
      }
    });
    return select;
  }

  /** A clock lead in ms as "45 s", "4 min 30 s", "2 h 5 min". */
  function aheadText(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  /** How a peer is reached: "direct", "relayed via 12D3…", "not connected: last error". */
  function pathText(info) {
    if (info.path === 'direct') return 'direct';
    if (info.path === 'relayed') return `relayed via ${shortPeer(info.relay || '?')}`;
    return info.last_error ? `not connected · last error: ${info.last_error}` : 'not connected';
  }

  /** A peer cursor ({base, position, partial}, numbers) as `shoal peers` shows it. */
  function cursorText(c) {
    if (!c || typeof c.base !== 'number') return '–';
    if (!c.position) return String(c.base);
    const partial = c.partial == null ? '' : `/${c.partial}`;
    return `${c.base}+${c.position.version}.${c.position.seq}${partial}`;
  }

  function peerCard(peer) {
    const refs = {
      state: h('span'),
      reason: h('span', { class: 'reason', 'data-testid': 'peer-reason' }),
      lastSync: h('dd', { 'data-testid': 'peer-last-sync' }),
      lag: h('dd', { 'data-testid': 'peer-lag' }),
      cursor: h('dd', { class: 'mono', 'data-testid': 'peer-cursor' }),
      held: h('dd', { 'data-testid': 'peer-held' }),
      traffic: h('dd', { 'data-testid': 'peer-bytes' }),
      path: h('dd', { 'data-testid': 'peer-path' }),
      punch: h('dd', { 'data-testid': 'peer-punch' }),
      addresses: h('dd', { class: 'mono small', 'data-testid': 'peer-addresses' }),
      checked: h('span', { class: 'muted small' }),
      rows: new Map(),
      body: h('tbody'),
    };
    let confirmTimer = null;
    const remove = h('button', { type: 'button', class: 'danger ghost', 'data-testid': 'peer-remove' }, 'Remove');
    remove.addEventListener('click', async () => {
      if (remove.dataset.confirm !== 'true') {
        remove.dataset.confirm = 'true';
        remove.textContent = 'Click again to remove';
        confirmTimer = setTimeout(() => {
          delete remove.dataset.confirm;
          remove.textContent = 'Remove';
        }, 4000);
        return;
      }
      clearTimeout(confirmTimer);
      remove.disabled = true;
      try {
        const reply = await api(`/api/peers/${seg(peer)}`, { method: 'DELETE' });
        toast(`${shortPeer(peer)} forgotten (${reply.removed} address line${reply.removed === 1 ? '' : 's'} removed from peers.txt) and disconnected`, 'success', 'Peer removed');
        await ctx.refreshPeers();
      } catch (error) {
        toast(error.message, 'error', 'Peer not removed');
      } finally {
        remove.disabled = false;
        delete remove.dataset.confirm;
        remove.textContent = 'Remove';
      }
    });
    const check = h('button', { type: 'button', class: 'ghost', 'data-testid': 'peer-check', title: 'Compare every collection with this peer now', onClick: () => refreshDiff(peer) }, 'Check now');
    refs.check = check;
    const card = h(
      'article',
      { class: 'card peer-card', 'data-testid': 'peer-row', 'data-peer': peer },
      h(
        'header',
        { class: 'peer-head' },
        h('div', { class: 'peer-title' }, refs.state, h('code', { class: 'peer-id', title: peer, 'data-testid': 'peer-id' }, peer), refs.reason),
        h('div', { class: 'peer-actions' }, check, remove),
      ),
      h(
        'dl',
        { class: 'facts' },
        h('div', {}, h('dt', { title: 'How this node reaches the peer now: directly, through a relay, or not at all (and the last connection error)' }, 'Path'), refs.path),
        h('div', {}, h('dt', { title: 'Hole punches (relayed connections upgraded to direct ones) that went direct, of those tried' }, 'Hole punches'), refs.punch),
        h('div', {}, h('dt', {}, 'Last sync'), refs.lastSync),
        h('div', {}, h('dt', {}, 'Lag'), refs.lag),
        h('div', {}, h('dt', { title: 'How far this peer\'s log is applied here: BASE (a completed pass), or BASE+VERSION.SEQ mid-catch-up' }, 'Cursor'), refs.cursor),
        h('div', {}, h('dt', { title: 'Changes from this peer whose clocks are too far ahead of this node\'s time: they merge once the time catches up (or the bound, --max-clock-drift, is raised)' }, 'Held back'), refs.held),
        h('div', {}, h('dt', {}, 'Traffic'), refs.traffic),
        h('div', { class: 'wide' }, h('dt', {}, 'Addresses'), refs.addresses),
      ),
      h(
        'table',
        { class: 'table share-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Collection'), h('th', {}, 'Sharing with this peer'), h('th', {}, h('span', {}, 'Integrity '), refs.checked))),
        refs.body,
      ),
    );
    return { card, refs };
  }

  function renderPeer(info) {
    let entry = cards.get(info.peer);
    if (!entry) {
      entry = peerCard(info.peer);
      cards.set(info.peer, entry);
    }
    const { refs } = entry;
    entry.card.dataset.state = info.state;
    replace(refs.state, stateBadge(info.state));
    const who = info.state === 'rejected' ? (info.by_peer ? 'it refused us: ' : 'we refused it: ') : '';
    refs.reason.textContent = info.reason ? `${who}${info.reason}` : '';
    refs.lastSync.textContent = info.last_sync_ms ? ago(info.last_sync_ms) : 'never';
    refs.lastSync.title = info.last_sync_ms ? new Date(info.last_sync_ms).toLocaleString() : '';
    refs.lag.textContent = info.lag ? `${info.lag} version${info.lag === 1 ? '' : 's'} behind` : 'none';
    refs.lag.classList.toggle('warn-text', Boolean(info.lag));
    refs.cursor.textContent = cursorText(info.cursor);
    refs.held.textContent = info.held ? `${info.held} change${info.held === 1 ? '' : 's'}: clock ahead by ${aheadText(info.clock_ahead_ms || 0)}` : 'none';
    refs.held.classList.toggle('warn-text', Boolean(info.held));
    refs.path.textContent = pathText(info);
    refs.path.dataset.path = info.path || '';
    refs.path.title = info.path_since_ms ? `since ${new Date(info.path_since_ms).toLocaleString()}` : '';
    const punch = info.punch || { attempts: 0, successes: 0 };
    refs.punch.textContent = `${punch.successes} of ${punch.attempts}${punch.last_error ? ` · last failed: ${punch.last_error}` : ''}`;
    refs.traffic.textContent = info.bytes ? `↓ ${bytes(info.bytes.in)} · ↑ ${bytes(info.bytes.out)}` : '–';
    replace(refs.addresses, (info.addresses || []).length ? info.addresses.map((a) => h('div', {}, a)) : h('span', { class: 'muted' }, 'none known'));
    const diff = diffs.get(info.peer);
    const live = info.state === 'connected';
    refs.checked.textContent = !live ? '' : diff?.loading ? '· checking…' : diff?.at ? `· checked ${ago(diff.at)}` : '';
    refs.check.disabled = !live;

    const names = collectionNames();
    if (!names.length) {
      replace(refs.body, h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No collections yet.')));
      refs.rows.clear();
      return entry.card;
    }
    if (refs.body.querySelector('td[colspan]')) refs.body.replaceChildren();
    names.forEach((name, index) => {
      let row = refs.rows.get(name);
      if (!row) {
        row = {
          tr: h('tr', { 'data-testid': 'share-row', 'data-collection': name }),
          select: shareSelect(info.peer, name),
          source: h('span', { class: 'muted small' }),
          integrity: h('td'),
        };
        row.tr.append(h('td', { class: 'mono' }, name), h('td', {}, h('div', { class: 'share-cell' }, row.select, row.source)), row.integrity);
        refs.rows.set(name, row);
      }
      place(refs.body, row.tr, index); // sorted order, without moving a row in place
      const { mode, source } = modeFor(info.peer, name);
      const local = isLocalOnly(name);
      if (!row.select.dataset.pending && document.activeElement !== row.select) {
        if (mode) row.select.value = mode;
        row.select.disabled = !sharing || local;
      }
      row.select.dataset.mode = mode || '';
      row.source.textContent = local ? 'local only: shared with no peer' : sharingError ? 'rules unavailable' : mode ? `${MODE_HINTS[mode]} · ${source}` : source;
      row.source.title = sharingError ? sharingError.message : '';
      row.integrity.replaceChildren(integrity(info.peer, name));
    });
    return entry.card;
  }

  let localKey = null;
  function renderLocal() {
    const names = collectionNames();
    // Rebuilt only when something shown changed (a click must not land on a replaced box).
    const key = JSON.stringify([names, ctx.collections, sharing?.local_only, Boolean(sharing)]);
    if (key === localKey) return;
    localKey = key;
    if (!names.length) {
      replace(localTable, h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No collections yet: write a record to create one.')));
      return;
    }
    replace(
      localTable,
      names.map((name) => {
        const stats = ctx.collections.find((c) => c.name === name);
        const box = h('input', { type: 'checkbox', 'data-testid': 'local-only-toggle', 'data-collection': name, 'aria-label': `${name} is local only` });
        box.checked = isLocalOnly(name);
        box.disabled = !sharing;
        box.addEventListener('change', async () => {
          box.disabled = true;
          try {
            await api('/api/sharing/local-only', { method: 'PUT', body: { collection: name, local_only: box.checked } });
            toast(box.checked ? `${name} is now shared with no peer` : `${name} follows the sharing rules again`, 'success', 'Local only');
          } catch (error) {
            toast(error.message, 'error', 'Not changed');
          }
          await loadSharing();
          refreshAllDiffs();
        });
        return h(
          'tr',
          { 'data-collection': name },
          h('td', { class: 'mono' }, h('a', { href: `#/collections/${encodeURIComponent(name)}` }, name)),
          h('td', { class: 'num' }, stats ? String(stats.live) : '–'),
          h('td', { class: 'num' }, stats ? String(stats.deleted) : '–'),
          h('td', {}, box),
        );
      }),
    );
  }

  function render() {
    const seen = new Set();
    const order = [...ctx.peers].sort((a, b) => rank(a.state) - rank(b.state) || a.peer.localeCompare(b.peer));
    order.forEach((info, index) => {
      seen.add(info.peer);
      place(peerList, renderPeer(info), index);
    });
    for (const [peer, entry] of cards) {
      if (!seen.has(peer)) {
        entry.card.remove();
        cards.delete(peer);
      }
    }
    let empty = peerList.querySelector('.empty');
    if (!ctx.peers.length && !empty) {
      peerList.append(h('div', { class: 'card empty', 'data-testid': 'no-peers' }, 'No peers yet. Add one above by its address or an invite code.'));
    } else if (ctx.peers.length && empty) empty.remove();
    const connected = ctx.connectedPeers().length;
    const punch = ctx.punch || { attempts: 0, successes: 0 };
    const punched = punch.attempts ? ` · hole punches: ${punch.successes} of ${punch.attempts} went direct` : '';
    const reach = ctx.reachability ? ` · this node: ${ctx.reachability}` : '';
    peersNote.textContent = `${ctx.peers.length} known, ${connected} connected${punched}${reach}${sharingError ? ` · sharing rules unavailable (${sharingError.message})` : ''}`;
    renderLocal();
  }

  const known = new Map(ctx.peers.map((p) => [p.peer, p.state]));
  offs.push(
    ctx.events.on('peers', (peers) => {
      for (const p of peers) {
        if (p.state === 'connected' && known.get(p.peer) !== 'connected') refreshDiff(p.peer);
        known.set(p.peer, p.state);
      }
      render();
    }),
    ctx.events.on('collections', render),
  );
  const onChange = debounce(() => {
    ctx.refreshCollections();
    refreshAllDiffs();
  }, 1500);
  offs.push(ctx.events.on('change', onChange));
  const timer = setInterval(refreshAllDiffs, DIFF_EVERY_MS);

  render();
  loadSharing();
  ctx.refreshCollections();
  refreshAllDiffs();

  return () => {
    clearInterval(timer);
    devices.stop();
    onChange.cancel();
    for (const off of offs) off();
  };
}

/**
 * Puts `node` at `index` in `parent` unless it is there already: moving a
 * node that holds focus (an open select) would close it.
 */
function place(parent, node, index) {
  if (parent.children[index] !== node) parent.insertBefore(node, parent.children[index] || null);
}

function rank(state) {
  return { connected: 0, connecting: 1, rejected: 2, incompatible: 2, unreachable: 3, disconnected: 4 }[state] ?? 5;
}
