//! How many commits the store's own connection has made, readable from any
//! thread without the store: a watcher of the database file compares it
//! across its looks to tell a change the store wrote itself from one another
//! process wrote (`shoal`'s commit watch).
//!
//! It owns the counter only; the commit hook that moves it is installed by
//! `checkpointer.rs`, and what a watcher makes of it is the watcher's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A shared handle on one store connection's commit count. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct CommitCount(Arc<AtomicU64>);

impl CommitCount {
    /// Commits the store's connection has made since it opened (each one
    /// that wrote to the log).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Counts one more commit (the commit hook, after the commit).
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}
