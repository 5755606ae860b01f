// The Instances page's two top cards: this node (ids, addresses, the
// invite code with a copy button) and the form that adds a peer by address
// or invite code.

import { api } from './api.js';
import { copyText, h } from './dom.js';
import { toast } from './toast.js';

/** The invite code with its group secret hidden: `shoal1:••••@ADDRESS`. */
function masked(invite) {
  const at = invite.indexOf('@');
  return at < 0 ? 'shoal1:••••••••' : `shoal1:${'•'.repeat(16)}${invite.slice(at)}`;
}

export function nodeCard(node, ctx) {
  const invite = node.invite || null;
  const copy = h('button', { type: 'button', class: 'ghost', 'data-testid': 'copy-invite', disabled: !invite }, 'Copy');
  copy.addEventListener('click', async () => {
    const done = await copyText(invite);
    toast(done ? 'Invite code copied. It carries the group secret: share it only with your own machines.' : 'Could not copy: show the code and copy it by hand.', done ? 'success' : 'warn');
  });
  const code = h('code', { class: 'invite-code', 'data-testid': 'invite-code', 'data-revealed': 'false' }, invite ? masked(invite) : '');
  const reveal = h('button', { type: 'button', class: 'ghost', 'data-testid': 'reveal-invite' }, 'Show');
  reveal.addEventListener('click', () => {
    const shown = code.dataset.revealed === 'true';
    code.dataset.revealed = String(!shown);
    code.textContent = shown ? masked(invite) : invite;
    reveal.textContent = shown ? 'Show' : 'Hide';
  });
  const copyId = h('button', { type: 'button', class: 'ghost small-button', 'data-testid': 'copy-peer-id' }, 'Copy');
  copyId.addEventListener('click', async () => {
    toast((await copyText(node.peer_id)) ? 'Peer id copied' : 'Could not copy', 'info');
  });
  const version = h('dd', { class: 'mono', 'data-testid': 'node-db-version' }, String(node.db_version ?? '–'));
  const off = ctx.events.on('change', (change) => {
    if (!version.isConnected) return off();
    const current = Number(version.textContent);
    if (!(change.db_version <= current)) version.textContent = String(change.db_version);
  });
  return h(
    'section',
    { class: 'card node-card', 'data-testid': 'node-card' },
    h('h2', {}, 'This node ', h('span', { class: 'node-name-big', 'data-testid': 'node-name' }, node.name || '')),
    h(
      'dl',
      { class: 'facts' },
      h('div', { class: 'wide' }, h('dt', {}, 'Peer id'), h('dd', {}, h('code', { 'data-testid': 'node-peer-id' }, node.peer_id), ' ', copyId)),
      h('div', {}, h('dt', {}, 'Group'), h('dd', {}, h('code', { title: 'Fingerprint of the group key' }, node.group || '–'))),
      h('div', {}, h('dt', {}, 'Database version'), version),
      h(
        'div',
        { class: 'wide' },
        h('dt', {}, 'Listening on'),
        h('dd', { class: 'mono small', 'data-testid': 'node-addresses' }, (node.listen || []).length ? node.listen.map((a) => h('div', {}, a)) : h('span', { class: 'muted' }, 'no address')),
      ),
    ),
    h('h3', {}, 'Invite code'),
    invite
      ? h('div', { class: 'invite' }, code, h('div', { class: 'invite-buttons' }, copy, reveal))
      : h('p', { class: 'muted', 'data-testid': 'invite-code' }, 'No reachable address, so no invite code.'),
    h('p', { class: 'hint' }, 'Another machine joins with ', h('code', {}, 'shoal join CODE'), ' or by pasting the code in its dashboard. The code carries the group secret: share it only with your own machines.'),
  );
}

export function addPeerCard(ctx) {
  const input = h('input', {
    type: 'text',
    id: 'add-peer-input',
    placeholder: '/ip4/…/tcp/4040/p2p/12D3KooW…  or  shoal1:…',
    spellcheck: 'false',
    autocomplete: 'off',
    'data-testid': 'add-peer-input',
    required: true,
  });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'add-peer-submit' }, 'Add peer');
  const form = h(
    'form',
    { class: 'card add-peer', 'data-testid': 'add-peer-form' },
    h('h2', {}, 'Add a peer'),
    h('label', { for: 'add-peer-input' }, 'Address or invite code'),
    h('div', { class: 'row' }, input, submit),
    h('p', { class: 'hint' }, 'An address ends in ', h('code', {}, '/p2p/PEER-ID'), '. The daemon dials it now, keeps redialing it, and remembers it in ', h('code', {}, 'DATA/peers.txt'), '.'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const body = text.startsWith('shoal1:') ? { invite: text } : { address: text };
    submit.disabled = true;
    try {
      const reply = await api('/api/peers', { method: 'POST', body, timeout: 30000 });
      toast(`Dialing ${reply.address}${reply.remembered ? ' — saved in peers.txt' : ' — already in peers.txt'}`, 'success', 'Peer added');
      input.value = '';
      await ctx.refreshPeers();
    } catch (error) {
      toast(error.message, 'error', 'Peer not added');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
