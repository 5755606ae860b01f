//! A large local write decided on a second thread: while the writing
//! thread (the one holding the connection) writes the rows of the ops
//! decided so far, a planning thread decides the next ones (merging the
//! versions, rendering the JSON, packing the slots, the state digest:
//! write_plan.rs) and hands them over in chunks through a bounded channel.
//! The two halves each take about half of a `put_many`'s time, so they
//! overlap instead of adding up.
//!
//! Only for a write of [`PIPELINE_FROM`] ops or more whose records were
//! all loaded up front (no two ops on one record: a later op would need
//! the row an earlier one wrote). The outcome is the sequential one's: the
//! ops are decided in order on one thread (one clock tick and one log
//! sequence each, in op order) and their rows written in that order; the
//! first error of either thread stops both and fails the whole write,
//! which the caller's transaction then rolls back. It owns the two threads'
//! hand-over only; what an op decides and what a row holds are
//! write_plan.rs's and rows.rs's.

use crate::error::StoreError;
use crate::rows::StoredSlots;
use crate::write_plan::{Outcomes, Planned, Planner, WriteOp};
use crate::write_txn::WriteTxn;
use std::sync::mpsc;

/// Ops from which a write whose records are all loaded is decided on a
/// second thread: below it the thread's start and hand-over cost more than
/// the overlap saves.
pub(crate) const PIPELINE_FROM: usize = 1024;

/// Ops decided per hand-over.
const CHUNK: usize = 256;

/// Chunks the planning thread may be ahead of the writing one: a bound on
/// the decided rows held in memory at once.
const CHUNKS_AHEAD: usize = 4;

/// The ops of a write, each with its collection id and its record as loaded.
pub(crate) type Loaded = Vec<((WriteOp, i64), StoredSlots)>;

/// Decides `ops` on a planning thread and writes their rows in `tx` as
/// they come, into `outcomes`. `Ok(Some(ops))`: no thread could be
/// started, nothing was done; the caller decides them itself.
pub(crate) fn run(
    tx: &mut WriteTxn<'_>,
    planner: &mut Planner<'_>,
    ops: Loaded,
    outcomes: &mut Outcomes,
) -> Result<Option<Loaded>, StoreError> {
    std::thread::scope(|scope| {
        // The ops go to the thread only once it runs, so they are still
        // here if it cannot be started.
        let (give, given) = mpsc::sync_channel::<Loaded>(1);
        let (send, decided) = mpsc::sync_channel::<Result<Vec<Planned>, StoreError>>(CHUNKS_AHEAD);
        let planning = std::thread::Builder::new()
            .name("shoal-write-plan".into())
            .spawn_scoped(scope, move || {
                let Ok(ops) = given.recv() else { return };
                let mut chunk = Vec::with_capacity(CHUNK);
                for ((op, cid), loaded) in ops {
                    match planner.plan(op, cid, &loaded) {
                        Ok(Some(planned)) => chunk.push(planned),
                        Ok(None) => {}
                        Err(error) => {
                            let _ = send.send(Err(error));
                            return;
                        }
                    }
                    // A send fails once the writing thread stopped (its
                    // error ends the write): stop deciding.
                    if chunk.len() == CHUNK
                        && send
                            .send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                            .is_err()
                    {
                        return;
                    }
                }
                if !chunk.is_empty() {
                    let _ = send.send(Ok(chunk));
                }
            });
        let planning = match planning {
            Ok(planning) => planning,
            Err(error) => {
                tracing::debug!("no thread to decide a large write on ({error}); deciding it here");
                return Ok(Some(ops));
            }
        };
        // The thread is waiting for them; it holds the receiver.
        let _ = give.send(ops);
        let written = decided.iter().try_for_each(|chunk| {
            chunk?
                .into_iter()
                .try_for_each(|planned| outcomes.write(tx, planned))
        });
        // Stops the planning thread at its next hand-over if the writing
        // ended early.
        drop(decided);
        if let Err(panic) = planning.join() {
            std::panic::resume_unwind(panic);
        }
        written.map(|()| None)
    })
}
