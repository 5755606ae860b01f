// The Devices section of the Instances page (issue 19): the group's owner
// key, every device with its status and role, and Approve / Revoke buttons
// (GET /api/devices, POST /api/devices/{peer}/approve and /revoke). What an
// admission means is the daemon's; this file only shows and asks.

import { api, seg } from './api.js';
import { ago, h, replace, shortPeer } from './dom.js';
import { toast } from './toast.js';

const EVERY_MS = 5000;

/** The section element and a stop function. */
export function devicesSection() {
  const body = h('div', { 'data-testid': 'devices-body' });
  const note = h('p', { class: 'hint', 'data-testid': 'devices-note' });
  const section = h(
    'section',
    { class: 'section card', 'data-testid': 'devices-section' },
    h('div', { class: 'section-head' }, h('h2', {}, 'Devices'), note),
    body,
  );
  let shownKey = null;

  async function act(peer, action, body) {
    try {
      const reply = await api(`/api/devices/${seg(peer)}/${action}`, { method: 'POST', body: body || {} });
      toast(action === 'revoke' ? `${shortPeer(peer)} revoked` : `${shortPeer(peer)} approved`, 'success', 'Devices');
      show(reply);
    } catch (error) {
      toast(error.message, 'error', 'Not changed');
    }
  }

  function row(d, canSign) {
    const actions = h('td', {});
    if (canSign && !d.this_device && d.status === 'pending') {
      const role = h('select', { 'data-testid': 'device-role', 'aria-label': `role for ${d.peer}` },
        h('option', { value: 'member' }, 'member'), h('option', { value: 'read-only' }, 'read-only'));
      const approve = h('button', { class: 'btn', 'data-testid': 'device-approve' }, 'Approve');
      approve.addEventListener('click', () => act(d.peer, 'approve', { role: role.value }));
      actions.append(role, ' ', approve);
    }
    if (canSign && !d.this_device && d.status === 'admitted') {
      const revoke = h('button', { class: 'btn danger', 'data-testid': 'device-revoke' }, 'Revoke');
      revoke.addEventListener('click', () => {
        if (window.confirm(`Revoke ${d.peer}? It will never be admitted again.`)) act(d.peer, 'revoke');
      });
      actions.append(revoke);
    }
    const when = d.status === 'pending' ? (d.requested_ms ? `asked ${ago(d.requested_ms)}` : '')
      : d.status === 'revoked' ? `revoked ${ago(d.revoked_ms)}` : d.admitted_ms ? `admitted ${ago(d.admitted_ms)}` : '';
    const collections = Object.entries(d.collections || {}).map(([c, r]) => `${c}=${r}`).join(' ');
    return h(
      'tr',
      { 'data-peer': d.peer, 'data-status': d.status, 'data-testid': 'device-row' },
      h('td', { class: 'mono', title: d.peer }, shortPeer(d.peer), d.this_device ? ' (this node)' : '', d.name ? ` “${d.name}”` : ''),
      h('td', {}, h('span', { class: `badge ${d.status}` }, d.status === 'pending' ? 'waiting for approval' : d.status)),
      h('td', {}, [d.role || '–', collections].filter(Boolean).join(' ')),
      h('td', { class: 'muted' }, when),
      actions,
    );
  }

  function show(reply) {
    const key = JSON.stringify(reply);
    if (key === shownKey) return;
    shownKey = key;
    if (!reply.owner) {
      note.textContent = 'no owner key: every holder of the group secret is a member';
      replace(body, h('p', { class: 'muted' }, 'Per-device admission is off. `shoal devices owner-key create` on one machine turns it on.'));
      return;
    }
    note.textContent = `owner key ${reply.owner}${reply.can_sign ? ' · this node can approve and revoke' : ''}`;
    replace(
      body,
      h(
        'table',
        { class: 'table', 'data-testid': 'devices-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'Status'), h('th', {}, 'Role'), h('th', {}, 'When'), h('th', {}, ''))),
        h('tbody', {}, reply.devices.map((d) => row(d, reply.can_sign))),
      ),
    );
  }

  async function load() {
    try {
      show(await api('/api/devices'));
    } catch (error) {
      note.textContent = `devices unavailable (${error.message})`;
    }
  }

  load();
  const timer = setInterval(load, EVERY_MS);
  return { element: section, stop: () => clearInterval(timer) };
}
