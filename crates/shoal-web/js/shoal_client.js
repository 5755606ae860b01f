// `WorkerStore`: a Shoal store run in a dedicated Worker (shoal_worker.js)
// and called from the page — the way a page uses the OPFS storage, whose
// SQLite needs a worker's synchronous file access. Its API is the store's
// (shoal_web.d.ts's `Store` and `Collection`), asynchronous where the
// store's is synchronous, since every call is a message to the worker:
// `peers()` resolves to the list, `collection(name)` checks the name on
// first use (a bad one rejects that call with `invalid-collection`), and
// `peerId` and `site` are read once at open. Errors reject as the store's
// do: an `Error` named `ShoalError` with the same `code`.
//
// Each `WorkerStore.open` starts one worker for one store; `close()` ends
// both. A write resolves only once the worker's store resolved it (durable).
// It owns the page's half of the message protocol and nothing else.

/** The worker script, beside this file. */
const WORKER_URL = new URL('./shoal_worker.js', import.meta.url);

function shoalError({ code, message }) {
  const error = new Error(message);
  error.name = 'ShoalError';
  error.code = code;
  return error;
}

/** One worker and its outstanding calls. */
class Channel {
  constructor() {
    this.worker = new Worker(WORKER_URL, { type: 'module' });
    this.next = 1;
    this.waiting = new Map();
    this.listeners = new Set();
    /** Calls made in this turn of the page, posted together at its end. */
    this.outbox = [];
    this.worker.onmessage = ({ data }) => {
      if (data.event === 'change') {
        for (const listener of this.listeners) listener(data.change);
        return;
      }
      const call = this.waiting.get(data.id);
      if (!call) return;
      this.waiting.delete(data.id);
      if (data.error) call.reject(shoalError(data.error));
      else call.resolve(data.value);
    };
    this.worker.onerror = (event) => this.fail(event.message || 'the Shoal worker failed to start');
    this.worker.onmessageerror = () => this.fail('an answer of the Shoal worker could not be read');
  }

  /** Sends `message`; resolves with the worker's answer. */
  call(message) {
    if (!this.worker) return Promise.reject(shoalError({ code: 'store-closed', message: 'the store was closed' }));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.outbox.push({ ...message, id });
      if (this.outbox.length === 1) queueMicrotask(() => this.flush());
    });
  }

  /**
   * Posts the calls made in this turn as one message: the worker starts
   * them in one turn of its own, so writes made together share the
   * store's transactions there as they do in the worker (one message per
   * call had the worker commit each alone).
   */
  flush() {
    const calls = this.outbox;
    this.outbox = [];
    // Closed meanwhile: `end` has rejected them.
    if (!this.worker || calls.length === 0) return;
    try {
      this.worker.postMessage({ calls });
      return;
    } catch {
      // One of them holds something the browser cannot copy to the
      // worker (a function in the options, ...): each alone, so only that
      // one is refused.
    }
    for (const call of calls) {
      try {
        this.worker.postMessage({ calls: [call] });
      } catch (error) {
        const waiting = this.waiting.get(call.id);
        this.waiting.delete(call.id);
        if (waiting) waiting.reject(shoalError({ code: 'bad-request', message: `cannot send this call to the Shoal worker: ${error.message}` }));
      }
    }
  }

  /** Fails every outstanding call (the worker died) and stops the worker. */
  fail(message) {
    this.end({ code: 'internal', message });
  }

  /** Stops the worker; calls still waiting reject with `why`. */
  end(why = { code: 'store-closed', message: 'the store was closed' }) {
    for (const call of this.waiting.values()) call.reject(shoalError(why));
    this.waiting.clear();
    this.listeners.clear();
    if (this.worker) this.worker.terminate();
    this.worker = null;
  }
}

/**
 * `value` as the store reads it: what `JSON.stringify` makes of it (the
 * store takes values as JSON text, so a field holding a function or
 * `undefined` is left out there too), or `bad-request` when it is no JSON.
 */
function asJson(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw shoalError({ code: 'bad-request', message: `the value is not JSON: ${error.message}` });
  }
  if (text === undefined) {
    throw shoalError({ code: 'bad-request', message: 'the value is not JSON (undefined, a function, a BigInt or a cycle)' });
  }
  return JSON.parse(text);
}

/** `options` with the storage OPFS unless it names one. */
function withStorage(options = {}) {
  return { ...options, storage: (options && options.storage) || 'opfs' };
}

/** A collection of a `WorkerStore`: the store's `Collection` methods. */
export class WorkerCollection {
  constructor(channel, name) {
    this.channel = channel;
    this.name = name;
  }

  /** Calls `method` in the worker; `args()` builds its arguments (it may throw). */
  #call(method, args) {
    try {
      return this.channel.call({ op: 'collection', collection: this.name, method, args: args() });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  put(id, value) { return this.#call('put', () => [id, asJson(value)]); }
  create(id, value) { return this.#call('create', () => [id, asJson(value)]); }
  patch(id, value) { return this.#call('patch', () => [id, asJson(value)]); }
  delete(id) { return this.#call('delete', () => [id]); }
  mapSet(id, field, key, value) { return this.#call('mapSet', () => [id, field, key, asJson(value)]); }
  mapRemove(id, field, key) { return this.#call('mapRemove', () => [id, field, key]); }
  get(id) { return this.#call('get', () => [id]); }
  list(options) { return this.#call('list', () => [options]); }
}

/** A Shoal store in a dedicated Worker. */
export class WorkerStore {
  constructor(channel, opened) {
    this.channel = channel;
    this.site = opened.site;
    this.peerId = opened.peerId;
  }

  /**
   * Starts a worker and opens the store `name` in it: on OPFS unless
   * `options.storage` says `"indexeddb"`; `{wait: true}` as `Store.open`.
   */
  static async open(name, options = {}) {
    const channel = new Channel();
    try {
      const opened = await channel.call({ op: 'open', name, options: withStorage(options) });
      return new WorkerStore(channel, opened);
    } catch (error) {
      channel.end();
      throw error;
    }
  }

  /** Deletes the store `name` (not open anywhere), on OPFS unless `options.storage` says otherwise. */
  static async deleteStore(name, options = {}) {
    const channel = new Channel();
    try {
      return await channel.call({ op: 'deleteStore', name, options: withStorage(options) });
    } finally {
      channel.end();
    }
  }

  collection(name) { return new WorkerCollection(this.channel, name); }
  version() { return this.channel.call({ op: 'version' }); }

  /** Calls `callback` with each committed change; `unsubscribe()` ends it. */
  subscribe(callback) {
    if (!this.channel.worker) throw shoalError({ code: 'store-closed', message: 'the store was closed' });
    const listeners = this.channel.listeners;
    listeners.add(callback);
    if (listeners.size === 1) this.channel.call({ op: 'subscribe' }).catch(() => {});
    return {
      unsubscribe: () => {
        if (listeners.delete(callback) && listeners.size === 0) this.channel.call({ op: 'unsubscribe' }).catch(() => {});
      },
    };
  }

  connect(address, secret, options) { return this.channel.call({ op: 'connect', address, secret, options }); }
  disconnect(address) { return this.channel.call({ op: 'disconnect', address }); }
  peers() { return this.channel.call({ op: 'peers' }); }

  /** Closes the store (its lock and files go to the next owner) and ends the worker. */
  async close() {
    if (!this.channel.worker) return;
    try {
      await this.channel.call({ op: 'close' });
    } finally {
      this.channel.end();
    }
  }
}
