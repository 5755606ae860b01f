//! [`Store`]: the handle an application opens. It owns the database behind a
//! lock, fans out change events after each commit, and hands out collections.
//!
//! It must not hold the lock across an `.await` or across more than one page
//! of the change log.

use crate::commit_watch::{CommitWatch, Look};
use crate::edit::Written;
use crate::error::Error;
use crate::events::{ChangeEvent, Origin, Subscription};
use crate::feeding::Feeding;
use shoal_core::{
    Change, CollectionName, DbVersion, Direction, LogRead, ShareMode, SharingRules, SiteId,
    SyncCursor,
};
use shoal_store::{
    ApplyReport, ChangeIter, CheckProgress, CheckReport, ConflictQuery, DEFAULT_PAGE, Durability,
    JournalledConflict, StoreConfig, StoreError, StoreStatus, WriteOp,
};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use tokio::sync::{broadcast, watch};

/// Options for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Database settings (durability, value cap, clock drift, busy timeout).
    pub config: StoreConfig,
    /// How many change events a subscriber may fall behind before it is told it lagged.
    pub event_capacity: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            config: StoreConfig::default(),
            event_capacity: 4096,
        }
    }
}

pub(crate) struct Inner {
    db: Mutex<shoal_store::Store>,
    events: broadcast::Sender<ChangeEvent>,
    head: watch::Sender<DbVersion>,
    /// The blob directory (its files need no database lock).
    pub(crate) blob_files: shoal_store::BlobFiles,
    /// Largest blob added or fetched.
    pub(crate) blob_cap: u64,
    /// How long local writes took, lock wait included (and, for
    /// `put_many`, making the records it takes as it goes).
    write_latency: shoal_net::DurationHistogram,
    /// The watch for other processes' commits, once a node asked for it.
    commit_watch: std::sync::OnceLock<Option<CommitWatch>>,
}

/// An open Shoal database. Cheap to clone; all clones share one database.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
/// println!("site {} at version {}", store.site_id(), store.db_version());
/// # Ok::<(), shoal::Error>(())
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("db", &*self.db()).finish()
    }
}

impl Store {
    /// Opens (or creates) the database file at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the database file at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, Error> {
        let blob_cap = options.config.max_blob_bytes;
        let db = shoal_store::Store::open(path, options.config)?;
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let (head, _) = watch::channel(db.db_version());
        Ok(Self {
            inner: Arc::new(Inner {
                blob_files: db.blob_files(),
                blob_cap,
                db: Mutex::new(db),
                events,
                head,
                write_latency: Default::default(),
                commit_watch: std::sync::OnceLock::new(),
            }),
        })
    }

    /// How long local writes (puts, patches, deletes, map edits, batches)
    /// have taken since the store was opened, lock wait included, and for
    /// [`Collection::put_many`](crate::Collection::put_many) the time its
    /// iterator took to make the records, which the write takes as it goes.
    pub fn write_latency(&self) -> shoal_net::HistogramSnapshot {
        self.inner.write_latency.snapshot()
    }

    /// Bytes the database takes on disk: its file and its write-ahead log
    /// (blobs not included).
    pub fn disk_bytes(&self) -> u64 {
        let path = self.db().path().to_path_buf();
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        [path, wal.into()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Locks the database. A panic in another thread mid-operation cannot leave
    /// a half transaction behind (SQLite rolls it back), so a poisoned lock is
    /// taken over rather than propagated.
    ///
    /// Panics if this thread is feeding a write to this store (`feeding.rs`):
    /// the lock is held by that write, and waiting would never end.
    pub(crate) fn db(&self) -> MutexGuard<'_, shoal_store::Store> {
        crate::feeding::refuse_reentry(&self.inner.db);
        self.inner
            .db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The database if no other thread holds it, nor this one (feeding a
    /// write to it from `put_many`'s iterator) (see [`db`](Self::db) for a
    /// poisoned lock).
    fn try_db(&self) -> Option<MutexGuard<'_, shoal_store::Store>> {
        match self.inner.db.try_lock() {
            Ok(db) => Some(db),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Runs `f` on the locked database, naming the database file in any
    /// corruption error it returns.
    pub(crate) fn with_db<T>(
        &self,
        f: impl FnOnce(&mut shoal_store::Store) -> Result<T, shoal_store::StoreError>,
    ) -> Result<T, Error> {
        let mut db = self.db();
        f(&mut db).map_err(|e| Error::from(e.with_path(db.path())))
    }

    /// Runs `f` on the database only if that takes no waiting: `None`
    /// (nothing done) when another thread holds the store, another process
    /// the database file's lock, a checkpoint is due in the next write (see
    /// [`shoal_store::Store::without_waiting`]), or commits flush to disk
    /// ([`Durability::Full`]: even a read may commit, for a partial peer).
    pub(crate) fn try_with_db<T>(
        &self,
        f: impl FnOnce(&mut shoal_store::Store) -> Result<T, shoal_store::StoreError>,
    ) -> Option<Result<T, Error>> {
        let mut db = self.try_db()?;
        if db.config().durability == Durability::Full {
            return None;
        }
        match db.without_waiting(f) {
            Err(e) if e.is_busy() => None,
            out => Some(out.map_err(|e| Error::from(e.with_path(db.path())))),
        }
    }

    /// This node's site id.
    pub fn site_id(&self) -> SiteId {
        self.db().identity().site()
    }

    /// This node's libp2p peer id, as text.
    pub fn peer_id(&self) -> String {
        self.db().identity().peer_id().to_string()
    }

    /// The version of the last committed transaction.
    pub fn db_version(&self) -> DbVersion {
        self.db().db_version()
    }

    /// How many reconciliation trees were built by reading every record of
    /// a collection since the store opened (a tree saved at the last close
    /// and still true is taken back instead). For diagnostics and benchmarks.
    pub fn recon_index_builds(&self) -> u64 {
        self.db().recon_index_builds()
    }

    /// Site id, db_version and per-collection counts.
    pub fn status(&self) -> Result<StoreStatus, Error> {
        self.with_db(|db| db.status())
    }

    /// Checks every page of the database file; ordinary reads do not always
    /// notice damage, this does ([`StoreError::Corrupt`](shoal_store::StoreError::Corrupt)).
    pub fn verify(&self) -> Result<(), Error> {
        self.with_db(|db| db.verify())
    }

    /// The full check behind `shoal check`: every page and index of the
    /// file, then Shoal's invariants on every record row, reporting
    /// `progress` as it goes. Holds the database for the whole check.
    /// Damage is [`StoreError::Corrupt`](shoal_store::StoreError::Corrupt).
    pub fn check(&self, progress: impl FnMut(CheckProgress) + Send) -> Result<CheckReport, Error> {
        self.with_db(|db| db.check(progress))
    }

    /// Every slot version this node holds of one record — its life, each
    /// field register and map entry, tombstones included, with their clocks —
    /// as it would send them to a peer; `None` if the record was never seen
    /// here. [`RecordState::from_slots`](crate::RecordState::from_slots)
    /// rebuilds the merged state from them and
    /// [`StateDigest::of_changes`](crate::StateDigest::of_changes) digests it.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// store.collection("notes")?.put("n1", serde_json::json!({"text": "hi"}))?;
    /// let slots = store.record_changes("notes", "n1")?.unwrap();
    /// assert!(slots.iter().any(|c| c.slot == shoal::Slot::Life));
    /// assert!(store.record_changes("notes", "n2")?.is_none());
    /// # Ok::<(), shoal::Error>(())
    /// ```
    pub fn record_changes(&self, collection: &str, id: &str) -> Result<Option<Vec<Change>>, Error> {
        let collection = CollectionName::new(collection)?;
        let id = shoal_core::RecordId::new(id)?;
        self.with_db(|db| db.record_changes(&collection, &id))
    }

    /// Subscribes to every change committed from now on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), shoal::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let mut changes = store.subscribe();
    /// store.collection("notes")?.put("n1", serde_json::json!({"text": "hi"}))?;
    /// let event = changes.next().await.unwrap();
    /// assert_eq!(event.id.as_str(), "n1");
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(self.inner.events.subscribe(), None, self.db_version())
    }

    pub(crate) fn subscribe_collection(&self, collection: CollectionName) -> Subscription {
        Subscription::new(
            self.inner.events.subscribe(),
            Some(collection),
            self.db_version(),
        )
    }

    /// Commits local writes in one transaction and notifies subscribers.
    pub(crate) fn write(&self, ops: Vec<WriteOp>) -> Result<Option<Written>, Error> {
        self.write_with(|db| db.write(ops))
    }

    /// [`write`](Self::write) of ops made as the write takes them
    /// ([`shoal_store::Store::write_from`]).
    ///
    /// The ops are taken while the store is locked: a call from them, on
    /// their own thread, into this store panics (`feeding.rs`).
    pub(crate) fn write_from(
        &self,
        ops: impl IntoIterator<Item = Result<WriteOp, StoreError>>,
    ) -> Result<Option<Written>, Error> {
        let ops = Feeding::new(ops.into_iter(), &self.inner.db);
        self.write_with(|db| db.write_from(ops))
    }

    /// Runs the local write `f` on the locked database, announces what it
    /// changed and moves the head.
    fn write_with(
        &self,
        f: impl FnOnce(
            &mut shoal_store::Store,
        ) -> Result<shoal_store::WriteOutcome, shoal_store::StoreError>,
    ) -> Result<Option<Written>, Error> {
        let _timed = Timed(&self.inner.write_latency, std::time::Instant::now());
        let written = self.with_db(|db| {
            let outcome = f(db)?;
            let written = outcome.version.zip(outcome.clock);
            if let Some(version) = outcome.version {
                self.notify(outcome.changed, version, Origin::Local);
            }
            Ok(written.map(|(version, clock)| Written { version, clock }))
        })?;
        self.head_moved(written.map(|w| w.version));
        Ok(written)
    }

    /// Merges a batch of changes from another replica in one transaction and
    /// notifies subscribers of the records that changed.
    pub fn apply(&self, changes: &[Change]) -> Result<ApplyReport, Error> {
        self.merge_with(|db| db.apply(changes))
    }

    /// Merges a batch received from `peer` and persists `cursor` as that peer's
    /// cursor in the same transaction (what sync does with each chunk).
    pub fn apply_from(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<ApplyReport, Error> {
        self.merge_with(|db| db.apply_from(peer, changes, cursor))
    }

    /// Runs the merge `f` on the locked database, announces what it changed
    /// (under the lock, in commit order), then moves the head.
    pub(crate) fn merge_with(
        &self,
        f: impl FnOnce(&mut shoal_store::Store) -> Result<ApplyReport, shoal_store::StoreError>,
    ) -> Result<ApplyReport, Error> {
        let report = self.with_db(|db| {
            let report = f(db)?;
            self.after_apply(&report);
            Ok(report)
        })?;
        self.head_moved(report.version);
        Ok(report)
    }

    /// [`apply_from`](Self::apply_from) only if it takes no waiting (see
    /// `try_with_db`): `None`, nothing done, otherwise.
    pub(crate) fn try_apply_from(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Option<Result<ApplyReport, Error>> {
        let applied = self.try_with_db(|db| {
            let report = db.apply_from(peer, changes, cursor)?;
            self.after_apply(&report);
            Ok(report)
        });
        if let Some(Ok(report)) = &applied {
            self.head_moved(report.version);
        }
        applied
    }

    /// Merges the changes held back for their clock (see
    /// [`ApplyReport::held`]) that local time has caught up with, and
    /// announces them; returns what is still held, per peer. The sync node
    /// calls it every second.
    pub fn release_held(&self) -> Result<Vec<shoal_store::HeldBack>, Error> {
        let mut merged = None;
        let held = self.with_db(|db| {
            let report = db.release_held()?;
            self.after_apply(&report);
            merged = report.version;
            db.held_back()
        });
        // Moved for what was merged even when listing what is left fails.
        self.head_moved(merged);
        held
    }

    /// This node's conflict journal, newest first: values that lost a merge
    /// to a concurrent edit (see `docs/merge.md`, "Conflicts"). To restore
    /// one, write it again like any other value.
    pub fn conflicts(&self, query: &ConflictQuery) -> Result<Vec<JournalledConflict>, Error> {
        self.with_db(|db| db.conflicts(query))
    }

    /// What is held back for its clock, per peer, furthest clock first.
    pub fn held_back(&self) -> Result<Vec<shoal_store::HeldBack>, Error> {
        self.with_db(|db| db.held_back())
    }

    /// Sets how far ahead of local time a peer's clock may be (the
    /// daemon's `--max-clock-drift`): changes further ahead are held back
    /// until local time catches up, and those held under a lower bound are
    /// merged on the next [`release_held`](Self::release_held).
    pub fn set_max_clock_drift(&self, max: std::time::Duration) {
        self.db()
            .set_max_drift_ms(u64::try_from(max.as_millis()).unwrap_or(u64::MAX));
    }

    /// Announces what a merge changed. Called with the database still locked
    /// (as every announcement is), so that events go in commit order: a
    /// feed never sees a later version before an earlier one. The caller
    /// then moves the head ([`head_moved`](Self::head_moved)).
    pub(crate) fn after_apply(&self, report: &ApplyReport) {
        if let Some(version) = report.version {
            self.notify(report.changed.iter().cloned(), version, Origin::Remote);
        }
    }

    /// How far `peer`'s log has been applied here.
    pub fn peer_cursor(&self, peer: &str) -> Result<SyncCursor, Error> {
        self.with_db(|db| db.peer_cursor(peer))
    }

    /// One bounded read of the log for sync peer `peer` at `cursor`: the
    /// changes it may receive, where the read stopped (inside a record too
    /// big for one read), and whether more remain.
    pub fn read_for_peer(
        &self,
        peer: &str,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, Error> {
        self.with_db(|db| db.read_for_peer(peer, cursor, max_changes, max_bytes))
    }

    /// Sets how `collection` flows with `peer` (its peer id): send, receive,
    /// both or none. Both sides enforce their own rules.
    ///
    /// ```
    /// use shoal::ShareMode;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    /// store.share(peer, "diary", ShareMode::None)?;
    /// assert_eq!(store.sharing()?.mode(peer, &"diary".parse()?), ShareMode::None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn share(&self, peer: &str, collection: &str, mode: ShareMode) -> Result<(), Error> {
        let collection = CollectionName::new(collection)?;
        self.with_db(|db| db.set_sharing(peer, &collection, mode))
    }

    /// Removes the rule for `peer` and `collection` set by
    /// [`share`](Self::share): the pair goes back to the default (the `*`
    /// rule for the collection, else both ways).
    pub fn unshare(&self, peer: &str, collection: &str) -> Result<(), Error> {
        let collection = CollectionName::new(collection)?;
        self.with_db(|db| db.clear_sharing(peer, &collection))
    }

    /// Marks `collection` local-only: it never leaves this node and nothing
    /// from peers is accepted into it (or lifts the mark).
    pub fn set_local_only(&self, collection: &str, local_only: bool) -> Result<(), Error> {
        let collection = CollectionName::new(collection)?;
        self.with_db(|db| db.set_local_only(&collection, local_only))
    }

    /// The sharing rules as stored.
    pub fn sharing(&self) -> Result<SharingRules, Error> {
        self.with_db(|db| db.sharing())
    }

    /// Whether `collection` may flow in `direction` with `peer`.
    pub fn allows(&self, peer: &str, collection: &CollectionName, direction: Direction) -> bool {
        self.sharing()
            .is_ok_and(|rules| rules.allows(peer, collection, direction))
    }

    /// Notices commits made by other processes on the same database file and
    /// moves [`watch_head`](Self::watch_head) (so a node pushes them). Their
    /// records are not announced to [`subscribe`](Self::subscribe)rs.
    pub fn refresh_head(&self) -> Result<(), Error> {
        self.refresh_head_moved().map(|_| ())
    }

    /// [`refresh_head`](Self::refresh_head), saying whether the head moved.
    pub(crate) fn refresh_head_moved(&self) -> Result<bool, Error> {
        self.refresh_locked(&mut self.db())
    }

    /// [`refresh_head_moved`](Self::refresh_head_moved) only if no other
    /// thread holds the store (`None`: nothing done). The commit watch
    /// looks this way: woken by the store's own commit, a look that waited
    /// for the lock took it just as the commit let go, from the session
    /// about to push that commit, which then had to go the slow way.
    fn try_refresh_head_moved(&self) -> Option<Result<bool, Error>> {
        let mut db = self.try_db()?;
        Some(self.refresh_locked(&mut db))
    }

    fn refresh_locked(&self, db: &mut shoal_store::Store) -> Result<bool, Error> {
        db.refresh_head()
            .map_err(|e| Error::from(e.with_path(db.path())))?;
        // The store's version, not only what this check found: another call
        // (a merge with nothing new, a reconciliation view) may already have
        // caught up on another process's commit without moving the head
        // watch.
        Ok(self.advance_head(db.db_version()))
    }

    /// From now on notices other processes' commits on the database file
    /// within milliseconds (a file watcher; see `commit_watch.rs`) and moves
    /// [`watch_head`](Self::watch_head) for them, as
    /// [`refresh_head`](Self::refresh_head) does. Idempotent; a node
    /// started with [`start_node`](Self::start_node) turns it on. Never
    /// fails: without a watcher it checks every 50 ms. A commit of another
    /// process made in the same moment as one of this store's own may be
    /// noticed only at the next change of the file (a node also checks
    /// every second).
    pub fn watch_other_writers(&self) {
        self.inner.commit_watch.get_or_init(|| {
            let (path, commits) = {
                let db = self.db();
                (db.path().to_path_buf(), db.commit_count())
            };
            let mut seen = commits.get();
            // The store is held weakly: the watch ends when it is dropped.
            let store = Arc::downgrade(&self.inner);
            let refresh = move |may_wait: bool| {
                let store = Store {
                    inner: store.upgrade()?,
                };
                // Read before the head: a commit of ours after it is seen at
                // the next look.
                let now = commits.get();
                let looked = match may_wait {
                    true => Some(store.refresh_head_moved()),
                    false => store.try_refresh_head_moved(),
                };
                let Some(moved) = looked else {
                    return Some(Look::Busy);
                };
                let own = now != seen;
                seen = now;
                match moved {
                    Ok(true) => Some(Look::Moved),
                    Ok(false) if own => Some(Look::Own),
                    Ok(false) => Some(Look::Nothing),
                    Err(e) => {
                        tracing::warn!("cannot check the log for other writers: {e}");
                        Some(Look::Nothing)
                    }
                }
            };
            CommitWatch::start(&path, refresh)
                .inspect_err(|e| tracing::warn!("cannot start the commit watch thread: {e}"))
                .ok()
        });
    }

    /// Moves the head forward to `version` (never back); whether it moved.
    fn advance_head(&self, version: DbVersion) -> bool {
        self.inner.head.send_if_modified(|head| {
            let newer = version > *head;
            if newer {
                *head = version;
            }
            newer
        })
    }

    /// Watches the db_version of the last commit (local or merged); the
    /// network layer pushes to peers when it moves.
    pub fn watch_head(&self) -> watch::Receiver<DbVersion> {
        self.inner.head.subscribe()
    }

    /// Moves the head watch to `version` (if a commit made one), after the
    /// database is let go: a session woken by it reads the log at once, and
    /// woken under the lock it found the store still held and read on
    /// tokio's blocking pool instead (10–17 % of the pushes' reads in
    /// `shoal-bench latency`). The head never moves back, so the order in
    /// which two committers move it does not matter.
    pub(crate) fn head_moved(&self, version: Option<DbVersion>) {
        if let Some(version) = version {
            self.advance_head(version);
        }
    }

    /// Sends the change events of a commit at `version` (with the database
    /// locked, so in commit order).
    /// With no subscriber it does nothing, so a large write or merge
    /// builds no events nobody would receive.
    fn notify(
        &self,
        changed: impl IntoIterator<Item = (CollectionName, shoal_core::RecordId)>,
        version: DbVersion,
        origin: Origin,
    ) {
        if self.inner.events.receiver_count() == 0 {
            return;
        }
        for (collection, id) in changed {
            // No subscribers is not an error.
            let _ = self.inner.events.send(ChangeEvent {
                collection,
                id,
                version,
                origin,
            });
        }
    }

    /// Every change committed after `version`, streamed in log order a page
    /// at a time (the lock is held only while a page is read).
    pub fn changes_since(
        &self,
        version: DbVersion,
    ) -> impl Iterator<Item = Result<Change, Error>> + use<> {
        self.changes_after(SyncCursor::complete(version))
    }

    /// Every change after a cursor (see [`SyncCursor`]): the records after its
    /// position, with their slot versions newer than its base — to resume a
    /// listing that stopped part-way.
    pub fn changes_after(
        &self,
        cursor: SyncCursor,
    ) -> impl Iterator<Item = Result<Change, Error>> + use<> {
        let store = self.clone();
        ChangeIter::new(cursor.position, DEFAULT_PAGE, move |after, limit| {
            store.with_db(|db| db.changes_page(cursor.base, after, limit))
        })
    }
}

/// Counts a write's duration when dropped, whatever the write's outcome.
struct Timed<'a>(&'a shoal_net::DurationHistogram, std::time::Instant);

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.0.observe(self.1.elapsed());
    }
}
