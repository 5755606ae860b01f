//! Where a session's two hot store calls run — the log read for a live push
//! and the apply of a peer's small batch: on the session's own task when the
//! replica can make them without waiting, on tokio's blocking pool
//! otherwise. Handing a call to the pool costs a thread wake-up each way,
//! on both ends of a write's trip to a peer; made in place, the trip
//! (`shoal-bench latency`) takes about a sixth less.
//!
//! It owns only where those calls run and how small a call must be to be
//! tried in place; what to read or apply is the session's, and what would
//! wait the replica's ([`Replica::try_read_for_peer`],
//! [`Replica::try_apply_from`]). The bounds count what is read or sent, not
//! the stored state the call loads and rewrites with it: a record near the
//! 16 MiB state cap still holds the task's thread while it is merged.

use crate::replica::{ApplyError, Attempt, Replica, ReplicaError};
use libp2p::PeerId;
use shoal_core::sync::ReadPurpose;
use shoal_core::{Change, LogRead, SyncCursor};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// Most changes a call made in place reads or applies.
const QUICK_CHANGES: u32 = 64;
/// Most bytes of values a call made in place reads or applies.
const QUICK_BYTES: u32 = 64 * 1024;

/// A store call's outcome, or what it panicked with (in place or on its
/// thread: either way the session reports it and ends, as it always has).
pub(crate) type Called<T, E = ReplicaError> = Result<Result<T, E>, String>;

/// `try_call` made in place, a panic in it caught (the session must end
/// through its own path, reporting the peer's state, not unwind).
fn in_place<T, E>(try_call: impl FnOnce() -> Attempt<T, E>) -> Result<Attempt<T, E>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(try_call)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// `call` on tokio's blocking pool.
async fn off_the_task<T: Send + 'static, E: Send + 'static>(
    call: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Called<T, E> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| e.to_string())
}

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
        let tried = in_place(|| replica.try_read_for_peer(&peer, after, changes, bytes))?;
        if let Attempt::Done(read) = tried {
            let whole = (changes, bytes) == (max_changes, max_bytes);
            match read {
                Ok(read) if read.more && !whole => {}
                done => return Ok(done),
            }
        }
    }
    let replica = replica.clone();
    off_the_task(move || replica.read_for_peer(&peer, after, max_changes, max_bytes)).await
}

/// Merges `changes` from `peer` with its `cursor`: in place when the batch
/// is within the quick bounds and the replica needs no waiting, else off
/// the task.
pub(crate) async fn apply(
    replica: &Arc<dyn Replica>,
    peer: PeerId,
    changes: Vec<Change>,
    cursor: SyncCursor,
) -> Called<(), ApplyError> {
    if is_quick(&changes)
        && let Attempt::Done(applied) =
            in_place(|| replica.try_apply_from(&peer, &changes, cursor))?
    {
        return Ok(applied);
    }
    let replica = replica.clone();
    off_the_task(move || replica.apply_from(&peer, &changes, cursor)).await
}

/// Whether a batch is small enough to apply in place.
pub(crate) fn is_quick(changes: &[Change]) -> bool {
    changes.len() <= QUICK_CHANGES as usize
        && changes
            .iter()
            .filter_map(|c| c.value.as_ref())
            .map(|v| v.as_str().len())
            .sum::<usize>()
            <= QUICK_BYTES as usize
}
