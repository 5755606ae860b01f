// Types of shoal_client.js: a Shoal store run in a dedicated Worker
// (shoal_worker.js) and called from the page. Every method is the store's
// (shoal_web.d.ts), asynchronous because each call is a message.
import type {
  Change, ConnectOptions, DeleteOptions, Fields, Json, ListOptions, OpenOptions, Page, PeerStatus, WriteResult,
} from './shoal_web.js';

/** A collection of a `WorkerStore`; a bad name rejects each call with `invalid-collection`. */
export class WorkerCollection {
  readonly name: string;
  put(id: string, value: Fields): Promise<WriteResult>;
  create(id: string, value: Fields): Promise<WriteResult>;
  patch(id: string, value: Fields): Promise<WriteResult>;
  delete(id: string): Promise<WriteResult>;
  mapSet(id: string, field: string, key: string, value: Json): Promise<WriteResult>;
  mapRemove(id: string, field: string, key: string): Promise<WriteResult>;
  get(id: string): Promise<Fields | null>;
  list(options?: ListOptions): Promise<Page>;
}

/** A Shoal store in a dedicated Worker, on OPFS unless `storage: "indexeddb"`. */
export class WorkerStore {
  static open(name: string, options?: OpenOptions): Promise<WorkerStore>;
  static deleteStore(name: string, options?: DeleteOptions): Promise<void>;
  /** This store's site id, read at open. */
  readonly site: string;
  /** This store's libp2p peer id, read at open. */
  readonly peerId: string;
  collection(name: string): WorkerCollection;
  version(): Promise<number>;
  subscribe(callback: (change: Change) => void): { unsubscribe(): void };
  connect(address: string, secret: string, options?: ConnectOptions): Promise<void>;
  disconnect(address?: string): Promise<void>;
  peers(): Promise<PeerStatus[]>;
  close(): Promise<void>;
}
