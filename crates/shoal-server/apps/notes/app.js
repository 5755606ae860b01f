// Shoal notes, the page's entry point: starts Shoal's store in a worker,
// and hands it to the notes (notes.js) and the network (network.js).
// Start reading here.
//
// The store lives in this browser: SQLite on the origin private file system
// (OPFS), run in a dedicated Worker that `WorkerStore` starts (the worker
// is where SQLite can write OPFS files synchronously: several times faster
// per write than IndexedDB) — or, in a browser without OPFS, IndexedDB from
// the page. Both have the same API. Every note is written there first, so
// the page works the same with the network off; when a daemon of the group
// is reachable, the store syncs with it in the background.

import { startNotes } from './notes.js';
import { startNetwork } from './network.js';

// The store's name in this browser. Another app on the same origin should
// pick its own.
const STORE_NAME = 'notes';

const storeState = document.getElementById('store-state');

/** Shows how the store is doing: opening, waiting, ready or failed. */
function showState(state, text) {
  storeState.dataset.state = state;
  storeState.textContent = text;
}

/**
 * Why Shoal could not start: the daemon says so at /apps/daemon.json when it
 * serves no browser build (`shoal serve --web-pkg DIR`); else the error's
 * own message.
 */
async function whyNoShoal(error) {
  try {
    const daemon = await (await fetch('../daemon.json')).json();
    if (daemon.pkg && daemon.pkg.problem) return daemon.pkg.problem;
  } catch {
    // not served by a Shoal daemon: keep the error's own message
  }
  return error.message;
}

/**
 * Whether this browser gives the origin a private file system (OPFS) —
 * every current one does, but not Firefox's private windows nor browsers
 * without OPFS at all. Without it the store is kept in IndexedDB, from the
 * page. (A browser with OPFS but without its synchronous access handles in
 * workers — Chromium before 102 — fails to open the store and says why.)
 */
async function hasOpfs() {
  try {
    return Boolean(navigator.storage && navigator.storage.getDirectory && (await navigator.storage.getDirectory()));
  } catch {
    return false;
  }
}

/**
 * Loads the store's opener: `WorkerStore` (the store in a dedicated
 * Worker, on OPFS; the worker, shoal_worker.js, loads the wasm build beside
 * it) or, without OPFS, the wasm build's `Store` on IndexedDB in the page.
 * `where` says where the notes are kept; `note` is set when notes of an
 * earlier version could not be moved.
 *
 * `importFrom: 'indexeddb'`: earlier versions of this app kept the notes in
 * IndexedDB; the first open on OPFS moves them (and the store's identity
 * and sync state) into the OPFS store, then deletes the old copy. Once
 * moved it does nothing. An app that starts on OPFS does not need it. The
 * move is refused (`bad-request`, both stores kept) when the OPFS store
 * already holds other notes; then this page opens the OPFS store alone and
 * says the old notes stay in IndexedDB.
 */
async function opener() {
  if (await hasOpfs()) {
    const { WorkerStore } = await import('../pkg/shoal_client.js');
    const chosen = { where: 'this browser' };
    chosen.open = async (options) => {
      try {
        return await WorkerStore.open(STORE_NAME, { ...options, importFrom: 'indexeddb' });
      } catch (error) {
        if (error.code !== 'bad-request') throw error;
        chosen.note = `notes an earlier version kept in IndexedDB were not moved (${error.message})`;
        console.warn(chosen.note);
        return WorkerStore.open(STORE_NAME, options);
      }
    };
    return chosen;
  }
  const shoal = await import('../pkg/shoal_web.js');
  await shoal.default(); // fetches and compiles shoal_web_bg.wasm next to it
  return { open: (options) => shoal.Store.open(STORE_NAME, options), where: 'this browser (IndexedDB: it has no OPFS)' };
}

/**
 * Opens the store. One tab owns a store at a time (a Web Lock): if another
 * tab of this browser has it open, `open` rejects with code "store-busy",
 * and this tab waits until that one is closed or reloaded.
 */
async function openStore({ open }) {
  try {
    return await open({});
  } catch (error) {
    if (error.code !== 'store-busy') throw error;
    showState('waiting', 'These notes are open in another tab; this tab takes over when that one is closed.');
    return open({ wait: true });
  }
}

async function main() {
  let store;
  let chosen;
  try {
    chosen = await opener();
    store = await openStore(chosen);
  } catch (error) {
    // The store's own refusals say what is wrong; anything else (the
    // build missing, the worker failing to start) is explained.
    if (error.name === 'ShoalError' && error.code !== 'internal') throw error;
    throw new Error(`cannot start Shoal in this browser: ${await whyNoShoal(error)}`);
  }
  showState('ready', `Saved in ${chosen.where}${chosen.note ? `; ${chosen.note}` : ''}`);
  await startNotes(store.collection('notes'), store);
  await startNetwork(store);
}

main().catch((error) => {
  console.error(error);
  showState('failed', error.message);
});
