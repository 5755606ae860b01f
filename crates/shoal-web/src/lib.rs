//! Shoal in a browser tab: `shoal-core`'s merge rules compiled to
//! WebAssembly, records stored in IndexedDB — or, in a dedicated Worker, in
//! SQLite on the origin private file system (`storage`, `sql`) — and a
//! JavaScript API (with TypeScript types) through wasm-bindgen. See
//! docs/web.md.
//!
//! The pure parts — storage keys ([`keys`]), the stored form of a record
//! ([`row`]), the node metadata ([`meta`]), local writes decided in memory
//! ([`write`](mod@write), [`write_batch`]), a page of a listing ([`page`])
//! and the error codes ([`error`]) — build on every target and are
//! unit-tested natively. Everything that touches the browser (IndexedDB,
//! OPFS, Web Locks, the JavaScript classes) is compiled for `wasm32` only,
//! so the native workspace build carries nothing of it.
//!
//! Syncing ([`sync`]): the tab's side of shoal-core's sync session — log
//! reads for a peer, merging a peer's changes with its cursor, answering
//! federation requests — and the driver that runs a session over any byte
//! stream.
//!
//! The network (`net`, wasm32 only; `store.connect`, `store.disconnect`,
//! `store.peers()`, `store.peerId`): libp2p in the tab — the browser's
//! WebSocket (`websocket-websys`), Noise, Yamux, ping, and the native sync
//! protocol on a libp2p stream, opened by the side with the smaller peer
//! id and accepted by the other, as native nodes do — to daemons listening
//! on WebSocket, or through a circuit of the group's relay (libp2p's relay
//! client) once the tab proved membership to the relay. The tab's peer id is the ed25519 key whose secret is the
//! seed in its metadata ([`meta`]), so it survives reloads; the group
//! secret is an invite code, a raw key or a passphrase with the group's
//! salt. The peer table `peers()` answers is [`peers`]. There is no
//! redial: the app connects again when it wants to.
#![deny(missing_docs)]

pub mod cursor_text;
pub mod error;
pub mod keys;
pub mod meta;
pub mod page;
pub mod peers;
pub mod row;
pub mod sync;
pub mod write;
pub mod write_batch;

#[cfg(target_arch = "wasm32")]
mod api_net;

#[cfg(target_arch = "wasm32")]
mod api_collection;
#[cfg(target_arch = "wasm32")]
mod api_store;
#[cfg(target_arch = "wasm32")]
mod feed;
#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
mod import;
#[cfg(target_arch = "wasm32")]
mod js_error;
#[cfg(target_arch = "wasm32")]
mod lock;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
pub mod sql;
#[cfg(target_arch = "wasm32")]
pub mod storage;
#[cfg(target_arch = "wasm32")]
mod store_inner;
#[cfg(target_arch = "wasm32")]
mod types;
#[cfg(target_arch = "wasm32")]
mod write_queue;

#[cfg(target_arch = "wasm32")]
pub use api_collection::Collection;
#[cfg(target_arch = "wasm32")]
pub use api_store::{Store, Subscription};
