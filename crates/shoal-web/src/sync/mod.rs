//! Syncing the tab with its peers: the tab's side of shoal-core's sans-IO
//! sync `Session` — the replica operations its actions ask for, decided in
//! memory by pure parts and performed on the store's storage in the browser — and the
//! session driver that runs one session over any byte stream.
//!
//! - [`driver`]: `run_session`, the async shell (start here), and
//!   [`spec`]: what a session is started with and steered by;
//! - [`replica`]: the `Replica` and `Timer` traits the driver runs on;
//! - [`log_read`], [`merge`], [`serve`]: the pure decisions (log reads for a
//!   peer, merging a peer's changes, answering federation requests);
//! - [`devices`]: who may sign device statements, and whether a peer
//!   may stay in session (issue 19);
//! - [`echo`], [`head`], [`status`], [`frames`], [`pipe`]: bookkeeping,
//!   the watched log head, the peer status, framing, an in-memory pipe;
//! - `store_replica` (wasm32): the replica over the browser store (either storage).
//!
//! Transport-agnostic: the caller (the JS `store.connect`) brings an
//! authenticated byte stream, the peer ids, the role and the group key.

pub mod devices;
pub mod driver;
pub mod echo;
pub mod frames;
pub mod head;
pub mod log_read;
pub mod merge;
pub mod pipe;
pub mod replica;
pub mod serve;
pub mod spec;
pub mod status;

#[cfg(target_arch = "wasm32")]
pub mod store_replica;
// Native only: they sleep on threads (futures-timer).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod memory;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod native_tests;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
