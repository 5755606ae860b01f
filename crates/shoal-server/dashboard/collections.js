// The collection browser: collections on the left; one page of records at
// a time (limit + next, never an unbounded list), an id-prefix filter, and
// per record a status badge against each connected peer (from the diff
// report: records it does not list are in sync). Live: rows and counts
// follow the change feed.

import { api, seg, query } from './api.js';
import { debounce, h, preview, replace, shortPeer, statusBadge } from './dom.js';
import { openDrawer, drawerRecord } from './drawer.js';

const PAGE = 50;
const DIFF_PAGE = 500;
const MAX_DIFF_PAGES = 8;
const COUNT_KEYS = { 'local-only': 'local_only', 'peer-only': 'peer_only', diverged: 'diverged', 'assets-missing': 'assets_missing' };

export function mountCollections(root, ctx, selected) {
  const offs = [];
  let current = selected;
  if (!current && ctx.collections.length) {
    current = [...ctx.collections].map((c) => c.name).sort()[0];
    history.replaceState(null, '', `#/collections/${encodeURIComponent(current)}`);
  }
  let prefix = '';
  let cursors = [null]; // `after` of each page seen, the current one last
  let page = null; // { rows, next, after, upto }
  let statuses = new Map(); // peer -> { byId: Map, counts, error }
  let loadSeq = 0;

  const list = h('ul', { class: 'collection-list', 'data-testid': 'collection-list' });
  const title = h('h2', { 'data-testid': 'collection-title' });
  const summary = h('div', { class: 'collection-summary', 'data-testid': 'collection-integrity' });
  const filter = h('input', { type: 'search', placeholder: 'Filter by id prefix', spellcheck: 'false', 'data-testid': 'record-filter', 'aria-label': 'Filter by id prefix' });
  const head = h('thead');
  const body = h('tbody');
  const table = h('table', { class: 'table records', 'data-testid': 'record-table' }, head, body);
  const prev = h('button', { type: 'button', class: 'ghost', 'data-testid': 'page-prev' }, '← Previous');
  const next = h('button', { type: 'button', class: 'ghost', 'data-testid': 'page-next' }, 'Next →');
  const pageInfo = h('span', { class: 'muted', 'data-testid': 'page-info' });
  const message = h('div', { class: 'table-message', 'data-testid': 'records-message' });
  const content = h(
    'section',
    { class: 'browser-main' },
    h('div', { class: 'browser-head' }, title, summary),
    h('div', { class: 'toolbar' }, filter, h('div', { class: 'pager' }, prev, pageInfo, next)),
    h('div', { class: 'table-wrap' }, table, message),
  );
  root.append(
    h(
      'div',
      { class: 'page browser', 'data-testid': 'collections-page' },
      h('aside', { class: 'browser-side card' }, h('h3', {}, 'Collections'), list),
      content,
    ),
  );

  function renderList() {
    const names = new Map(ctx.collections.map((c) => [c.name, c]));
    if (current && !names.has(current)) names.set(current, null);
    if (!names.size) {
      replace(list, h('li', { class: 'muted' }, 'No collections yet.'));
      return;
    }
    replace(
      list,
      [...names.keys()].sort().map((name) => {
        const stats = names.get(name);
        return h(
          'li',
          {},
          h(
            'a',
            {
              href: `#/collections/${encodeURIComponent(name)}`,
              class: name === current ? 'active' : '',
              'data-testid': 'collection-item',
              'data-collection': name,
            },
            h('span', { class: 'mono' }, name),
            h('span', { class: 'count', 'data-testid': 'collection-count' }, stats ? String(stats.live) : '0'),
          ),
        );
      }),
    );
  }

  function renderHead() {
    const peers = ctx.connectedPeers();
    replace(
      head,
      h(
        'tr',
        {},
        h('th', {}, 'Id'),
        h('th', {}, 'Value'),
        peers.length
          ? peers.map((p) => h('th', { class: 'peer-col', title: p.peer }, 'vs ', h('code', {}, shortPeer(p.peer))))
          : h('th', { class: 'peer-col' }, 'Peers'),
      ),
    );
  }

  function statusOf(peer, id) {
    const entry = statuses.get(peer);
    if (!entry) return { status: 'unknown', label: '…' };
    if (entry.error) return { status: 'unknown', label: 'not compared', title: entry.error.message };
    return { status: entry.byId.get(id) || 'in-sync' };
  }

  function statusCells(id) {
    const peers = ctx.connectedPeers();
    if (!peers.length) return [h('td', { class: 'muted peer-col' }, 'no peer connected')];
    return peers.map((p) => {
      const s = statusOf(p.peer, id);
      const badge = s.status === 'unknown' ? h('span', { class: 'badge status-unknown', title: s.title || '' }, s.label) : statusBadge(s.status);
      badge.dataset.testid = 'record-status';
      badge.dataset.peer = p.peer;
      return h('td', { class: 'peer-col' }, badge);
    });
  }

  function recordRow(row) {
    const tr = h(
      'tr',
      { 'data-testid': 'record-row', 'data-id': row.id, class: row.ghost ? 'ghost-row' : '', tabindex: 0 },
      h('td', { class: 'mono id-cell', 'data-testid': 'record-id' }, row.id),
      h(
        'td',
        { class: 'value-cell', 'data-testid': 'record-value' },
        row.ghost ? h('span', { class: 'muted' }, 'not on this node — on the peer') : h('code', {}, preview(row.value)),
      ),
      statusCells(row.id),
    );
    const open = () => openDrawer(ctx, current, row.id, { onSynced: () => refreshStatuses() });
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') open();
    });
    if (drawerRecord() === `${current}/${row.id}`) tr.classList.add('selected');
    return tr;
  }

  /** The page's rows with the peer-only records that fall inside it. */
  function rowsWithGhosts() {
    const rows = page.rows.map((r) => ({ ...r }));
    const have = new Set(rows.map((r) => r.id));
    for (const entry of statuses.values()) {
      for (const [id, status] of entry.byId || []) {
        if (status !== 'peer-only' || have.has(id)) continue;
        if (prefix && !id.startsWith(prefix)) continue;
        if (page.after !== null && id <= page.after) continue;
        if (page.upto !== null && id > page.upto) continue;
        rows.push({ id, ghost: true });
        have.add(id);
      }
    }
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  function renderRows() {
    renderHead();
    if (!page) return;
    const rows = rowsWithGhosts();
    replace(body, rows.map(recordRow));
    const number = cursors.length;
    pageInfo.textContent = `page ${number} · ${page.rows.length} record${page.rows.length === 1 ? '' : 's'}`;
    prev.disabled = cursors.length <= 1;
    next.disabled = !page.next;
    if (!rows.length) {
      message.dataset.state = 'empty';
      replace(message, prefix ? `No record id starts with “${prefix}”.` : 'No records in this collection.');
    } else {
      message.dataset.state = '';
      message.replaceChildren();
    }
  }

  function renderSummary() {
    const peers = ctx.connectedPeers();
    if (!current) return summary.replaceChildren();
    if (!peers.length) return replace(summary, h('span', { class: 'muted' }, 'No peer connected: nothing to compare with.'));
    replace(
      summary,
      peers.map((p) => {
        const entry = statuses.get(p.peer);
        const badges = !entry
          ? [h('span', { class: 'muted' }, 'checking…')]
          : entry.error
            ? [h('span', { class: 'badge status-unknown', title: entry.error.message }, `not compared: ${entry.error.code}`)]
            : !entry.counts?.total
              ? [statusBadge('in-sync')]
              : Object.entries(COUNT_KEYS)
                  .filter(([, key]) => entry.counts[key])
                  .map(([status, key]) => statusBadge(status, entry.counts[key]));
        return h(
          'div',
          { class: 'summary-peer', 'data-testid': 'collection-peer-summary', 'data-peer': p.peer, 'data-total': entry?.counts ? String(entry.counts.total) : '' },
          h('span', { class: 'muted' }, 'vs '),
          h('code', { title: p.peer }, shortPeer(p.peer)),
          badges,
        );
      }),
    );
  }

  /** The diff rows against `peer` from `after` up to `upto` (null: the end). */
  async function diffRange(peer, after, upto) {
    const byId = new Map();
    let counts = null;
    let cursor = after;
    for (let i = 0; i < MAX_DIFF_PAGES; i++) {
      const reply = await api(`/api/peers/${seg(peer)}/diff${query({ collection: current, limit: DIFF_PAGE, after: cursor })}`, { timeout: 30000 });
      const entry = (reply.collections || [])[0];
      if (!entry) break;
      if (entry.error) return { error: entry.error };
      if (i === 0) counts = entry.counts;
      for (const row of entry.records || []) byId.set(row.id, row.status);
      if (!entry.next || (upto !== null && entry.next >= upto)) break;
      cursor = entry.next;
    }
    return { byId, counts };
  }

  async function refreshStatuses() {
    if (!current || !page) return;
    const seq = loadSeq;
    const peers = ctx.connectedPeers();
    const results = await Promise.all(
      peers.map(async (p) => {
        try {
          return [p.peer, await diffRange(p.peer, page.after, page.upto)];
        } catch (error) {
          return [p.peer, { error }];
        }
      }),
    );
    if (seq !== loadSeq) return;
    statuses = new Map(results);
    renderRows();
    renderSummary();
  }

  async function loadPage() {
    if (!current) return;
    const seq = ++loadSeq;
    const after = cursors[cursors.length - 1];
    message.dataset.state = 'loading';
    replace(message, h('span', { class: 'spinner' }), ' Loading…');
    try {
      const reply = await api(`/api/collections/${seg(current)}/records${query({ prefix, after, limit: PAGE })}`);
      if (seq !== loadSeq) return;
      const rows = reply.records || [];
      page = { rows, next: reply.next ?? null, after, upto: reply.next ? rows[rows.length - 1]?.id ?? null : null };
      renderRows();
    } catch (error) {
      if (seq !== loadSeq) return;
      page = null;
      body.replaceChildren();
      message.dataset.state = 'error';
      replace(message, h('span', { class: 'form-error' }, `Could not load records: ${error.message}`), ' ', h('button', { type: 'button', class: 'ghost', onClick: loadPage }, 'Retry'));
      return;
    }
    refreshStatuses();
  }

  function select(name) {
    current = name;
    cursors = [null];
    statuses = new Map();
    page = null;
    renderList();
    if (!current) {
      title.textContent = 'Collections';
      summary.replaceChildren();
      head.replaceChildren();
      body.replaceChildren();
      pageInfo.textContent = '';
      prev.disabled = next.disabled = true;
      filter.disabled = true;
      message.dataset.state = 'empty';
      replace(message, ctx.collections.length ? 'Choose a collection.' : 'No collections yet: records written here or received from a peer show up on their own.');
      return;
    }
    filter.disabled = false;
    title.replaceChildren(h('span', { class: 'muted' }, 'Collection '), h('span', { class: 'mono' }, current));
    renderSummary();
    loadPage();
  }

  prev.addEventListener('click', () => {
    if (cursors.length > 1) {
      cursors.pop();
      loadPage();
    }
  });
  next.addEventListener('click', () => {
    if (page?.next) {
      cursors.push(page.next);
      loadPage();
    }
  });
  const applyFilter = debounce(() => {
    prefix = filter.value.trim();
    cursors = [null];
    loadPage();
  }, 250);
  filter.addEventListener('input', applyFilter);

  /** Inside the current page's id range (and filter)? */
  function onPage(id) {
    if (!page) return false;
    if (prefix && !id.startsWith(prefix)) return false;
    if (page.after !== null && id <= page.after) return false;
    if (page.upto !== null && id > page.upto) return false;
    return true;
  }

  async function refreshRow(id) {
    const tr = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    try {
      const record = await api(`/api/collections/${seg(current)}/records/${seg(id)}`);
      const index = page.rows.findIndex((r) => r.id === id);
      if (index >= 0) page.rows[index] = record;
      else reload();
    } catch (error) {
      if (error.status === 404) {
        page.rows = page.rows.filter((r) => r.id !== id);
      } else return;
    }
    renderRows();
    const fresh = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (fresh && tr) fresh.classList.add('flash');
  }

  const reload = debounce(() => loadPage(), 300);
  const statusesLater = debounce(() => refreshStatuses(), 1200);
  const countsLater = debounce(() => ctx.refreshCollections(), 800);

  offs.push(
    ctx.events.on('change', (change) => {
      countsLater();
      if (change.collection !== current) return;
      if (page && page.rows.some((r) => r.id === change.id)) refreshRow(change.id);
      else if (onPage(change.id)) reload();
      statusesLater();
    }),
    ctx.events.on('collections', () => {
      if (!current && ctx.collections.length) {
        // The first collection has just appeared: show it.
        const first = [...ctx.collections].map((c) => c.name).sort()[0];
        history.replaceState(null, '', `#/collections/${encodeURIComponent(first)}`);
        select(first);
      } else renderList();
    }),
  );
  let connected = ctx.connectedPeers().map((p) => p.peer).join(' ');
  offs.push(
    ctx.events.on('peers', () => {
      const now = ctx.connectedPeers().map((p) => p.peer).join(' ');
      if (now === connected) return;
      connected = now;
      renderRows();
      renderSummary();
      refreshStatuses();
    }),
  );
  const timer = setInterval(refreshStatuses, 20000);

  select(current);
  ctx.refreshCollections();

  return () => {
    clearInterval(timer);
    reload.cancel();
    statusesLater.cancel();
    countsLater.cancel();
    for (const off of offs) off();
  };
}
