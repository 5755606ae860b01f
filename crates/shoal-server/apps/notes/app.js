// Shoal notes, the page's entry point: loads the browser build of Shoal,
// opens the store, and hands it to the notes (notes.js) and the network
// (network.js). Start reading here.
//
// The store lives in this browser (IndexedDB): every note is written there
// first, so the page works the same with the network off; when a daemon of
// the group is reachable, the store syncs with it in the background.

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
 * Loads the wasm build. The daemon serves it at /apps/pkg/ (`shoal serve
 * --web-pkg DIR`); when it does not, /apps/daemon.json says why.
 */
async function loadShoal() {
  try {
    const shoal = await import('../pkg/shoal_web.js');
    await shoal.default(); // fetches and compiles shoal_web_bg.wasm next to it
    return shoal;
  } catch (error) {
    let why = error.message;
    try {
      const daemon = await (await fetch('../daemon.json')).json();
      if (daemon.pkg && daemon.pkg.problem) why = daemon.pkg.problem;
    } catch {
      // not served by a Shoal daemon: keep the import's own error
    }
    throw new Error(`cannot load the browser build of Shoal: ${why}`);
  }
}

/**
 * Opens the store. One tab owns a store at a time (a Web Lock): if another
 * tab of this browser has it open, `open` rejects with code "store-busy",
 * and this tab waits until that one is closed or reloaded.
 */
async function openStore(Store) {
  try {
    return await Store.open(STORE_NAME);
  } catch (error) {
    if (error.code !== 'store-busy') throw error;
    showState('waiting', 'These notes are open in another tab; this tab takes over when that one is closed.');
    return Store.open(STORE_NAME, { wait: true });
  }
}

async function main() {
  const { Store } = await loadShoal();
  const store = await openStore(Store);
  showState('ready', 'Saved in this browser');
  await startNotes(store.collection('notes'), store);
  await startNetwork(store);
}

main().catch((error) => {
  console.error(error);
  showState('failed', error.message);
});
