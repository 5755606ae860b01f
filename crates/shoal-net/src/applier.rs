//! A session's merges of the peer's batches, made one at a time and in
//! order on a task beside the session's: while a catch-up chunk is merged,
//! the session takes in and checks the next one, instead of the two
//! waiting on each other.
//!
//! It owns the order (one worker, a bounded queue, results in the order of
//! the batches) and the stop after a failure: nothing queued behind a batch
//! the replica refused is merged, since its cursor would skip that batch.
//! Where each merge runs (in place or on a thread) is `quick_call.rs`'s;
//! what to merge, and what an outcome leads to, the session's.

use crate::quick_call::{self, Called};
use crate::replica::{ApplyError, Replica};
use libp2p::PeerId;
use shoal_core::{Change, SyncCursor};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Batches queued behind the one being merged. One is enough to keep the
/// merging busy: the session takes in and checks the next batch while it
/// waits for room. A full queue makes the session wait, as a merge made
/// inline did, so a peer's batches in memory stay bounded (at most three,
/// with the one being merged and the one waiting).
const QUEUED: usize = 1;

/// One batch and the cursor it leads to.
struct Job {
    changes: Vec<Change>,
    cursor: SyncCursor,
}

/// A merge's outcome: the cursor its batch led to, and how it went.
pub(crate) type Merged = (SyncCursor, Called<(), ApplyError>);

/// The worker and the two ends of its queues.
pub(crate) struct Applier {
    jobs: Option<mpsc::Sender<Job>>,
    merged: mpsc::UnboundedReceiver<Merged>,
    /// Batches handed over whose outcome the session has not taken.
    pending: usize,
    worker: Option<JoinHandle<()>>,
}

impl Applier {
    /// Starts the worker for `peer`'s batches into `replica`.
    pub(crate) fn start(replica: Arc<dyn Replica>, peer: PeerId) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUED);
        // Unbounded, yet never longer than the jobs handed over and not
        // taken back: at most the queue and the merge under way.
        let (done, merged) = mpsc::unbounded_channel();
        let worker = tokio::spawn(async move {
            while let Some(Job { changes, cursor }) = queue.recv().await {
                let outcome = quick_call::apply(&replica, peer, changes, cursor).await;
                let failed = !matches!(outcome, Ok(Ok(())));
                if done.send((cursor, outcome)).is_err() || failed {
                    // What is queued behind a batch not merged is dropped
                    // unmerged: the session ends on the failure.
                    break;
                }
            }
        });
        Self {
            jobs: Some(jobs),
            merged,
            pending: 0,
            worker: Some(worker),
        }
    }

    /// Whether no batch is queued or being merged: a batch merged by the
    /// session itself now keeps the order.
    pub(crate) fn idle(&self) -> bool {
        self.pending == 0
    }

    /// Queues a batch, waiting while the queue is full. A worker that
    /// stopped (after a failure already reported) takes nothing more.
    pub(crate) async fn submit(&mut self, changes: Vec<Change>, cursor: SyncCursor) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        if jobs.send(Job { changes, cursor }).await.is_ok() {
            self.pending += 1;
        }
    }

    /// The next outcome, in the batches' order; pending forever when
    /// nothing is handed over (for `select!`).
    pub(crate) async fn next(&mut self) -> Merged {
        if self.pending == 0 {
            return std::future::pending().await;
        }
        match self.merged.recv().await {
            Some(merged) => {
                self.pending -= 1;
                merged
            }
            // The worker ended without reporting a batch it took (it can
            // only have panicked outside a merge): the session ends on it,
            // a failure of this node's, not the peer's.
            None => {
                self.pending = 0;
                let stopped = "the task merging the peer's changes stopped";
                (
                    SyncCursor::default(),
                    Ok(Err(ApplyError::Local(stopped.into()))),
                )
            }
        }
    }

    /// Lets the batches already handed over be merged (a peer's verified
    /// changes and their cursors, worth keeping) and waits for the worker,
    /// so the session's end is not raced by a merge of its own.
    pub(crate) async fn finish(&mut self) {
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.await;
        }
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}
