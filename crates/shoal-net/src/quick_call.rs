//! Where a session's two hot store calls run — the log read for a live push
//! and the apply of a peer's small batch: on the session's own task when the
//! replica can make them without waiting, on tokio's blocking pool
//! otherwise. Handing a call to the pool costs a thread wake-up each way,
//! on both ends of a write's trip to a peer; made in place, the trip
//! (`shoal-bench latency`) takes about a sixth less.
//!
//! It owns only where those calls run and how small a call must be to be
//! tried in place (a bound on the time the task's thread is held); what to
//! read or apply is the session's, and what would wait the replica's
//! ([`Replica::try_read_for_peer`], [`Replica::try_apply_from`]).

use crate::replica::{Attempt, Replica, ReplicaError};
use libp2p::PeerId;
use shoal_core::sync::ReadPurpose;
use shoal_core::{Change, LogRead, SyncCursor};
use std::sync::Arc;
use tokio::task::JoinError;

/// Most changes a call made in place reads or applies.
pub(crate) const QUICK_CHANGES: u32 = 64;
/// Most bytes of values a call made in place reads or applies.
pub(crate) const QUICK_BYTES: u32 = 64 * 1024;

/// A store call's outcome, or how its thread failed (it panicked).
pub(crate) type Called<T> = Result<Result<T, ReplicaError>, JoinError>;

/// One bounded read of the log for `peer` after `after`. A push's read is
/// first tried in place within the quick bounds; when more remains than
/// those bounds let it take, it is made again with the session's own (so a
/// bulk push keeps its large frames) — off the task, as every other read.
pub(crate) async fn read_changes(
    replica: &Arc<dyn Replica>,
    peer: PeerId,
    purpose: ReadPurpose,
    after: SyncCursor,
    max_changes: u32,
    max_bytes: u32,
) -> Called<LogRead> {
    if purpose == ReadPurpose::Push {
        let (changes, bytes) = (max_changes.min(QUICK_CHANGES), max_bytes.min(QUICK_BYTES));
        if let Attempt::Done(read) = replica.try_read_for_peer(&peer, after, changes, bytes) {
            let whole = (changes, bytes) == (max_changes, max_bytes);
            match read {
                Ok(read) if read.more && !whole => {}
                done => return Ok(done),
            }
        }
    }
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || replica.read_for_peer(&peer, after, max_changes, max_bytes))
        .await
}

/// Merges `changes` from `peer` with its `cursor`: in place when the batch
/// is within the quick bounds and the replica needs no waiting, else off
/// the task.
pub(crate) async fn apply(
    replica: &Arc<dyn Replica>,
    peer: PeerId,
    changes: Vec<Change>,
    cursor: SyncCursor,
) -> Called<()> {
    if is_quick(&changes)
        && let Attempt::Done(applied) = replica.try_apply_from(&peer, &changes, cursor)
    {
        return Ok(applied);
    }
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || replica.apply_from(&peer, &changes, cursor)).await
}

/// Whether a batch is small enough to apply in place.
fn is_quick(changes: &[Change]) -> bool {
    changes.len() <= QUICK_CHANGES as usize
        && changes
            .iter()
            .filter_map(|c| c.value.as_ref())
            .map(|v| v.as_str().len())
            .sum::<usize>()
            <= QUICK_BYTES as usize
}
