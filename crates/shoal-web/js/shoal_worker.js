// The dedicated Worker that hosts one Shoal store for a page: the other
// half of shoal_client.js (`WorkerStore`), which starts it with
// `new Worker(new URL('./shoal_worker.js', import.meta.url), {type: 'module'})`.
// It loads the wasm build beside it (shoal_web.js), opens the store the
// page names — on OPFS by default: SQLite's synchronous access handles
// exist only in a dedicated Worker — and answers the page's messages by
// calling the store's own API, so every rule, error code and durability
// guarantee is the store's: an answer to a write is posted only after the
// write's promise resolved, i.e. once it is durable.
//
// Messages from the page: {calls: [{id, op, ...}, ...]}, the calls the page
// made in one turn, started here in order in one turn (so writes made
// together share the store's transactions); every call is answered once
// with {id, value} or {id, error: {code, message}}. Changes the page subscribed
// to come as {event: 'change', change}. It owns this message protocol and
// nothing else; what a store does is shoal-web's.

import init, { Store } from './shoal_web.js';

const ready = init();
let store = null;
let subscription = null;
/** The open store's collections by name, made on first use (at most
 * `MAX_COLLECTIONS` kept: a page naming more only makes them again). */
const collections = new Map();
const MAX_COLLECTIONS = 64;

/** The collection methods a page may call, as the store names them. */
const COLLECTION_METHODS = new Set(['put', 'create', 'patch', 'delete', 'mapSet', 'mapRemove', 'get', 'list']);

/** Answers being worked out (each settles once its answer is posted). */
const inFlight = new Set();

/** What one call asks for; the value to answer with. `earlier`: for a
 * close, the answers still being worked out when it came. */
async function perform(message, earlier) {
  await ready;
  switch (message.op) {
    case 'open': {
      if (store) throw shoalError('bad-request', 'this worker already holds a store');
      store = await Store.open(message.name, message.options);
      return { site: store.site, peerId: store.peerId };
    }
    case 'deleteStore':
      return Store.deleteStore(message.name, message.options);
    case 'collection': {
      const method = message.method;
      if (!COLLECTION_METHODS.has(method)) throw shoalError('bad-request', `no collection method ${method}`);
      return collectionNamed(message.collection)[method](...message.args);
    }
    case 'version':
      return opened().version();
    case 'subscribe':
      if (!subscription) subscription = opened().subscribe((change) => self.postMessage({ event: 'change', change }));
      return null;
    case 'unsubscribe':
      if (subscription) subscription.unsubscribe();
      subscription = null;
      return null;
    case 'connect':
      return opened().connect(message.address, message.secret, message.options);
    case 'disconnect':
      return opened().disconnect(message.address);
    case 'peers':
      return opened().peers();
    case 'close': {
      if (!store) return null;
      const closing = store.close();
      store = null;
      subscription = null;
      forgetCollections();
      // Every call made before the close is answered first (a write in
      // flight committed or refused), then the close.
      await Promise.allSettled(earlier);
      return closing;
    }
    default:
      throw shoalError('bad-request', `unknown operation ${message.op}`);
  }
}

/** The open store's collection `name` (a bad name throws, and is not kept). */
function collectionNamed(name) {
  let collection = collections.get(name);
  if (!collection) {
    collection = opened().collection(name);
    if (collections.size >= MAX_COLLECTIONS) forgetCollections();
    collections.set(name, collection);
  }
  return collection;
}

function forgetCollections() {
  for (const collection of collections.values()) collection.free();
  collections.clear();
}

function opened() {
  if (!store) throw shoalError('store-closed', 'the store is not open in this worker');
  return store;
}

function shoalError(code, message) {
  const error = new Error(message);
  error.name = 'ShoalError';
  error.code = code;
  return error;
}

self.onmessage = ({ data }) => {
  for (const call of data.calls) {
    // A close waits for the answers being worked out when it came.
    const handled = answer(call, call.op === 'close' ? [...inFlight] : []);
    inFlight.add(handled);
    handled.finally(() => inFlight.delete(handled));
  }
};

/** Works out `data`'s answer and posts it (once, whatever happens). */
async function answer(data, earlier) {
  try {
    const value = await perform(data, earlier);
    self.postMessage({ id: data.id, value: value === undefined ? null : value });
  } catch (error) {
    self.postMessage({
      id: data.id,
      // A ShoalError's code is a string; a DOMException's is a number.
      error: {
        code: typeof (error && error.code) === 'string' ? error.code : 'internal',
        message: String((error && error.message) || error),
      },
    });
  }
}
