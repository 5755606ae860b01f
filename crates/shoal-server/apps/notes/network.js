// Syncing with the group: this tab connects to the daemon that served the
// page (its WebSocket address comes from /apps/daemon.json) with the group
// secret, and shows the peers and their state.
//
// The secret is asked for once per tab and kept in sessionStorage: it
// survives a reload of this tab (an offline page is reloaded often) but not
// the tab itself, and it is never written to disk by the page (unlike
// localStorage) nor sent anywhere but into the store's connect call. Any
// script of this origin can read sessionStorage, so serve nothing else
// untrusted from it. "Disconnect" forgets it.
//
// Writes never wait for the network: they go to the store in this browser,
// and the store sends them to the daemon while connected, and catches up
// after a reconnect.

const SECRET_KEY = 'shoal-notes.secret';
const ADDRESS_KEY = 'shoal-notes.address';
// How often the peer table is refreshed, and a lost connection retried.
const POLL_MS = 2000;
// Peer states (as the daemon's /api/peers names them) worth a redial.
const LOST = ['disconnected', 'unreachable'];

const form = document.getElementById('connect');
const disconnectButton = document.getElementById('disconnect');
const netState = document.getElementById('net-state');
const table = document.getElementById('peers');
const rows = document.getElementById('peer-rows');

function say(text, isError = false) {
  netState.textContent = text;
  netState.classList.toggle('error', isError);
}

/** The daemon's WebSocket address, from the daemon that served this page. */
async function daemonAddress() {
  try {
    const daemon = await (await fetch('../daemon.json')).json();
    return daemon.websocket[0] || null;
  } catch {
    return null; // served by something else: the user types the address
  }
}

/** Draws the peer table from `store.peers()`. */
function renderPeers(peers) {
  table.hidden = peers.length === 0;
  rows.replaceChildren(
    ...peers.map((peer) => {
      const row = document.createElement('tr');
      row.dataset.state = peer.state;
      for (const text of [peer.peer_id, peer.address, peer.state, peer.last_error || '']) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
}

/** Wires the connect form and the peer table to `store`. */
export async function startNetwork(store) {
  // How daemons (their dashboard, `shoal peers`) name this browser.
  document.getElementById('own-peer').textContent = store.peerId;
  const address = localStorage.getItem(ADDRESS_KEY) || (await daemonAddress());
  if (address) form.elements.address.value = address;
  let connected = null; // the address this tab keeps connected to

  async function connect(to, secret) {
    say(`Connecting to ${to}…`);
    try {
      await store.connect(to, secret);
      say('Connected: changes sync both ways.');
    } catch (error) {
      // Offline or refused: the notes keep working, and the poll retries.
      say(`Not connected (${error.code || 'error'}): ${error.message}. Notes are kept here and sync when it is back.`, true);
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const to = form.elements.address.value.trim();
    const secret = form.elements.secret.value;
    sessionStorage.setItem(SECRET_KEY, secret);
    localStorage.setItem(ADDRESS_KEY, to);
    form.elements.secret.value = '';
    connected = to;
    disconnectButton.hidden = false;
    await connect(to, secret);
  });

  disconnectButton.addEventListener('click', async () => {
    const from = connected;
    connected = null;
    sessionStorage.removeItem(SECRET_KEY);
    disconnectButton.hidden = true;
    if (from) await store.disconnect(from).catch(() => {});
    say('Disconnected: notes are kept in this browser.');
  });

  // Refresh the peer table, and redial when the connection was lost (the
  // daemon restarted, the network came back).
  async function poll() {
    try {
      const peers = await store.peers();
      renderPeers(peers);
      const secret = sessionStorage.getItem(SECRET_KEY);
      const ours = peers.find((peer) => peer.address === connected || (connected || '').endsWith(`/p2p/${peer.peer_id}`));
      // Redial a lost connection; not a refused one ("rejected": the
      // secret is wrong, redialing would not help; the table says why).
      if (connected && secret && (!ours || LOST.includes(ours.state))) {
        await connect(connected, secret);
      }
    } catch (error) {
      say(`Peers unavailable: ${error.message}`, true);
    }
    setTimeout(poll, POLL_MS);
  }

  form.querySelector('[type="submit"]').disabled = false;
  // Asked once per tab: after a reload, connect again with the kept secret.
  const secret = sessionStorage.getItem(SECRET_KEY);
  if (address && secret) {
    connected = address;
    disconnectButton.hidden = false;
    await connect(address, secret);
  } else {
    say('Not connected: notes are kept in this browser.');
  }
  poll();
}
