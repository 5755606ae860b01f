//! What the sync driver needs from the tab's store — the seam between the
//! protocol shell (`driver.rs`) and storage, as `shoal-net`'s `Replica`
//! trait is on native nodes: the persisted cursor of a peer, bounded reads
//! of the log for it, applying its changes atomically with its cursor,
//! answering its federation requests, and the watched head of the log. And
//! the clock and sleep the driver runs on ([`Timer`]).
//!
//! In the browser both are implemented over the store's storage (IndexedDB
//! or SQLite on OPFS) and `setTimeout`
//! (`store_replica.rs`); the native unit tests implement them in memory. The
//! traits are single-threaded (a tab has one thread): no `Send` bounds.

use crate::error::WebError;
use crate::sync::head::HeadWatch;
use crate::sync::merge::MergeReport;
use shoal_core::sync::{Rejection, Request, Response};
use shoal_core::{Change, LogRead, SyncCursor};
use std::future::Future;
use std::pin::Pin;

/// The tab's store as a sync replica. Every method's failure is reported
/// to the session (a refused apply closes it as `Unapplicable`), never a panic.
#[allow(async_fn_in_trait)]
pub trait Replica {
    /// How far `peer`'s log has been applied here (the start of its log
    /// for a new peer).
    async fn peer_cursor(&self, peer: &str) -> Result<SyncCursor, WebError>;

    /// One bounded read of the local log for `peer` after `after`
    /// (`Action::ReadChanges`).
    async fn read_changes(
        &self,
        peer: &str,
        after: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, WebError>;

    /// Merges `changes` from `peer` and persists `cursor` as its cursor in
    /// the same durable transaction (`Action::Apply`); subscribers and other
    /// sessions hear of the changed records only after it committed.
    async fn apply(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
        now_ms: u64,
    ) -> Result<MergeReport, WebError>;

    /// Answers `peer`'s federation request (`Action::Serve`): always an
    /// answer, a `Response::Refused` for what the replica cannot serve.
    async fn serve(&self, peer: &str, request: Request, now_ms: u64) -> Response;

    /// Whether `peer`, which proved the group secret, may stay in session
    /// (issue 19): `Some(NotAdmitted)` or `Some(Revoked)` when the tab's copy
    /// of the devices collection names an owner and no admission counts for
    /// the peer, or it was revoked; `None` otherwise (`sync/devices.rs`).
    async fn device_check(&self, peer: &str) -> Result<Option<Rejection>, WebError>;

    /// A session with `peer` authenticated: forget what it sent in earlier
    /// sessions (it may no longer hold it).
    fn session_started(&self, peer: &str);

    /// The watched end of the local log (moved by every commit).
    fn head(&self) -> HeadWatch;
}

/// Wall-clock time and sleeping, for the driver's ticks and timeouts.
pub trait Timer {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// A future that resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> Pin<Box<dyn Future<Output = ()>>>;
}
