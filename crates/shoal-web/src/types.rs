//! The TypeScript declarations of the JavaScript API's plain objects and
//! error codes, emitted into the generated `.d.ts` beside the classes
//! wasm-bindgen declares. It owns these declarations only; keep them in step
//! with api_store.rs, api_collection.rs and error.rs.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** The stable code of a failure: the daemon's HTTP API codes, plus the browser's own. */
export type ErrorCode =
  | "bad-request" | "invalid-collection" | "invalid-id" | "not-found"
  | "already-exists" | "payload-too-large" | "life-exhausted"
  | "quota-exceeded" | "store-busy" | "store-closed" | "internal"
  | "bad-address" | "bad-secret" | "wrong-secret" | "unreachable" | "rejected";
/** Every rejected promise (and thrown error) of this API. */
export interface ShoalError extends Error { name: "ShoalError"; code: ErrorCode; }
/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A record: a JSON object of fields. */
export type Fields = { [field: string]: Json };
/** Options of `Store.open`. */
export interface OpenOptions {
  /** Wait for another tab to close the store instead of failing with `store-busy`. */
  wait?: boolean;
  /**
   * Where the store keeps its rows: `"indexeddb"` (the default; in a window or
   * any worker) or `"opfs"` (SQLite in the origin private file system; in a
   * dedicated Worker only, several times faster per write). A store's name
   * names one store per storage: the two never see each other's rows.
   */
  storage?: "indexeddb" | "opfs";
  /**
   * With `storage: "opfs"`: first move the IndexedDB store of the same name
   * here, if there is one — records, cursors and identity as they are, in
   * one transaction; the IndexedDB store is deleted once the copy is
   * committed. For an app switching to OPFS; a no-op once moved. Rejects
   * with `bad-request` (nothing moved, both kept) when this OPFS store
   * already holds other data, or when the IndexedDB store was written after
   * an earlier move of it.
   */
  importFrom?: "indexeddb";
}
/** Options of `Store.deleteStore`: the storage the store is on (default `"indexeddb"`). */
export interface DeleteOptions { storage?: "indexeddb" | "opfs"; }
/** What a write did: `changed` is false when the record already was so (nothing written). */
export interface WriteResult { changed: boolean; version: number; }
/** One page's bounds: ids starting with `prefix`, after `after`, at most `limit` (default 100, at most 10000). */
export interface ListOptions { prefix?: string; after?: string; limit?: number; }
/** One page of records; `next` is the `after` of the following page, `null` at the end. */
export interface Page { records: { id: string; value: Fields }[]; next: string | null; }
/** Options of `Store.connect`: the group's salt (32 hex digits), needed when the secret is a passphrase. */
export interface ConnectOptions { salt?: string; }
/** A peer's state, named as the daemon's `/api/peers` names them. */
export type PeerState = "connecting" | "connected" | "disconnected" | "unreachable" | "rejected";
/** One peer of `Store.peers()`: `caught_up` once the tab pulled all the peer had; `last_error` for people. */
export interface PeerStatus { peer_id: string; address: string; state: PeerState; caught_up: boolean; last_error: string | null; }
/** A committed change, as subscribers receive it; `value` is `null` for a delete. */
export interface Change { collection: string; id: string; version: number; value: Fields | null; }
"#;
