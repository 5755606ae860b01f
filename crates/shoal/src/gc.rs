//! Tombstone collection through the embedding API: [`Store::collect_tombstones`]
//! runs a collection pass a page at a time, taking the store's lock for
//! each page only, so writes and sync go on during a long pass; and
//! [`Store::tombstones`] counts what is held.
//!
//! The rules are the core's (`shoal_core::gc`), the persistence the
//! store's; this file only paces the pass.

use crate::{Error, Store};
use shoal_core::gc::GcPolicy;
use shoal_store::{GcProgress, GcReport, TombstoneStatus};

impl Store {
    /// Collects the tombstones every known peer has acknowledged, and those
    /// older than `policy`'s horizon (see `docs/merge.md`, "Tombstone
    /// collection"), telling `progress` after each page of 1,000.
    ///
    /// ```
    /// use shoal::GcPolicy;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let notes = store.collection("notes")?;
    /// notes.put("n1", serde_json::json!({"text": "hi"}))?;
    /// notes.delete("n1")?;
    /// # std::thread::sleep(std::time::Duration::from_millis(5));
    /// // No peer has ever been met: only the horizon collects (0 ms here:
    /// // every tombstone already older than now).
    /// let report = store.collect_tombstones(GcPolicy { horizon_ms: 0 }, |_| {})?;
    /// assert_eq!(report.rows_reclaimed, 1);
    /// assert_eq!(store.tombstones()?.collected, 1);
    /// # Ok::<(), shoal::Error>(())
    /// ```
    pub fn collect_tombstones(
        &self,
        policy: GcPolicy,
        mut progress: impl FnMut(GcProgress),
    ) -> Result<GcReport, Error> {
        let mut pass = self.with_db(|db| db.gc_start(policy))?;
        while self.with_db(|db| db.gc_step(&mut pass))? {
            progress(pass.progress());
        }
        self.with_db(|db| db.gc_finish(pass))
    }

    /// The tombstones this node holds (not yet collected), the oldest one's
    /// delete time, and how many records it has collected.
    pub fn tombstones(&self) -> Result<TombstoneStatus, Error> {
        self.with_db(|db| db.tombstones())
    }
}
