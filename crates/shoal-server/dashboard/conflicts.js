// The Conflicts page (`#/conflicts`): this node's conflict journal — values
// that lost a merge to a concurrent edit on another machine — newest first,
// by collection, with "Restore this value", which writes the lost value
// again as a new local edit through the records API (it then syncs like any
// edit). This page only reads the journal and makes that write; what is a
// conflict is the daemon's.

import { api, query, seg } from './api.js';
import { ago, debounce, h, preview, replace } from './dom.js';
import { toast } from './toast.js';

const LIMIT = 200;

/** Where the entry's value lives: `.field` or `.field[key]`. */
function slotName(entry) {
  if (entry.field === null) return '(the record)';
  return entry.key === null ? `.${entry.field}` : `.${entry.field}[${entry.key}]`;
}

function shown(side) {
  return side.removed ? h('span', { class: 'muted' }, '(removed)') : h('code', {}, preview(side.value));
}

/** The write that puts `entry`'s lost value back, or null if none can. */
function restoreCall(entry) {
  const record = `/api/collections/${seg(entry.collection)}/records/${seg(entry.id)}`;
  if (entry.field === null) return null;
  if (entry.key === null) {
    return { path: record, method: 'PATCH', body: { [entry.field]: entry.lost.removed ? null : entry.lost.value } };
  }
  const path = `${record}/maps/${seg(entry.field)}/${seg(entry.key)}`;
  return entry.lost.removed ? { path, method: 'DELETE' } : { path, method: 'PUT', body: entry.lost.value };
}

export function mountConflicts(main, ctx) {
  let alive = true;
  const filter = h('select', { 'data-testid': 'conflicts-collection', 'aria-label': 'Collection' });
  const body = h('tbody', { 'data-testid': 'conflicts-rows' });
  const message = h('div', { class: 'table-message', 'data-testid': 'conflicts-message' });

  function fillFilter() {
    const current = filter.value;
    replace(
      filter,
      h('option', { value: '' }, 'All collections'),
      ctx.collections.map((c) => h('option', { value: c.name }, c.name)),
    );
    filter.value = current;
  }

  async function restore(entry, button) {
    const call = restoreCall(entry);
    button.disabled = true;
    try {
      await api(call.path, { method: call.method, body: call.body });
      toast(`${entry.collection}/${entry.id} ${slotName(entry)} is the lost value again`, 'success', 'Restored');
      load();
    } catch (error) {
      toast(error.message, 'error', 'Not restored');
      button.disabled = false;
    }
  }

  function row(entry) {
    const call = restoreCall(entry);
    const button = call
      ? h('button', { type: 'button', class: 'small-button', 'data-testid': 'conflict-restore' }, 'Restore this value')
      : h('span', { class: 'muted' }, 'a delete won');
    if (call) button.addEventListener('click', () => restore(entry, button));
    return h(
      'tr',
      { 'data-testid': 'conflict-row', 'data-collection': entry.collection, 'data-id': entry.id },
      h('td', { title: new Date(entry.at_ms).toLocaleString() }, ago(entry.at_ms)),
      h('td', {}, h('code', {}, `${entry.collection}/${entry.id}`), ' ', h('code', {}, slotName(entry))),
      h('td', { 'data-testid': 'conflict-kept' }, shown(entry.kept), h('div', { class: 'hint mono' }, entry.kept.clock)),
      h('td', { 'data-testid': 'conflict-lost' }, shown(entry.lost), h('div', { class: 'hint mono' }, entry.lost.clock)),
      h('td', {}, button),
    );
  }

  async function load() {
    try {
      const reply = await api(`/api/conflicts${query({ collection: filter.value, limit: LIMIT })}`);
      if (!alive) return;
      const entries = reply.conflicts || [];
      replace(body, entries.map(row));
      message.textContent = entries.length
        ? ''
        : 'No conflicts: no value here lost to a concurrent edit.';
    } catch (error) {
      if (alive) message.textContent = `Cannot read the journal: ${error.message}`;
    }
  }

  filter.addEventListener('change', load);
  fillFilter();
  const offCollections = ctx.events.on('collections', fillFilter);
  // A merge from a peer may have journalled something: look again.
  const later = debounce(load, 500);
  const offChange = ctx.events.on('change', later);
  replace(
    main,
    h(
      'div',
      { class: 'page', 'data-testid': 'conflicts-page' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', {}, 'Conflicts'),
        filter,
      ),
      h(
        'p',
        { class: 'hint' },
        'Values that lost to a concurrent edit: two machines changed the same field without either seeing the other’s change, and the newer clock won everywhere. ',
        'This list is this node’s own (never synced, kept 90 days, at most 10,000). Restoring writes the lost value again, as a new edit that syncs.',
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table', 'data-testid': 'conflicts-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Record'), h('th', {}, 'Kept'), h('th', {}, 'Lost'), h('th', {}, ''))),
          body,
        ),
        message,
      ),
    ),
  );
  load();
  return () => {
    alive = false;
    later.cancel();
    offCollections();
    offChange();
  };
}
