//! Shoal's SQLite persistence: one file holding records, their per-field clocks,
//! the change log, the node's identity, peer cursors, the reconciliation and
//! blob indexes, the sharing rules, the conflict journal and the ledger of
//! collected tombstones, plus the content-addressed blob
//! directory beside it.
//!
//! Every local write and every applied remote batch is one SQLite transaction
//! covering the data, the clocks and the change-log position together, so a
//! crash can lose an unacknowledged write but never acknowledge one that will
//! not sync. Merge decisions are made by `shoal-core`; this crate only persists
//! them and never reaches the network.
#![deny(missing_docs)]

mod apply;
mod apply_report;
pub mod backup;
mod blob_claim;
mod blob_demand;
mod blob_files;
mod blob_index;
mod blob_refs;
mod blob_scrub;
mod check;
mod checkpointer;
mod clock_mark;
mod commit_count;
mod conflict_journal;
mod data_versions;
mod device_writes;
mod devices;
mod echo;
mod error;
mod federation;
mod gc;
mod gc_ledger;
mod held;
mod identity;
mod kept;
mod levelled;
mod load_many;
mod log;
mod log_pos;
mod lookaside;
mod migrations;
mod packed_slots;
mod page_limit;
mod partial;
mod partial_age;
mod partial_report;
mod parts;
mod query;
mod read;
mod recon_index;
mod recon_saved;
mod recon_scans;
mod recon_snapshot;
mod recon_tree;
mod record_rows;
mod record_sql;
mod rows;
mod schema;
mod sharing;
mod write;
mod write_op;
mod write_txn;

pub use apply_report::ApplyReport;
pub use blob_claim::BlobClaim;
pub use blob_demand::OnDemand;
pub use blob_files::BlobFiles;
pub use blob_index::{Arrival, BlobInfo};
pub use blob_scrub::{BlobCheck, Scrubbed};
pub use check::{CheckProgress, CheckReport, CheckStage, OPEN_CHECK_PAGES};
pub use commit_count::CommitCount;
pub use conflict_journal::{
    ConflictEntry, ConflictQuery, ConflictSide, DEFAULT_JOURNAL_MAX_AGE_MS,
    DEFAULT_JOURNAL_MAX_ENTRIES, JournalBounds, JournalledConflict, MAX_CONFLICTS_LISTED,
};
pub use data_versions::{
    CollectionSchema, DATA_VERSION_FIELD, DataVersionCheck, stamp_of as data_version_of,
};
pub use devices::{DeviceRequest, devices_collection, owner_op, statement_op};
pub use error::StoreError;
pub use federation::MAX_RECORDS_BYTES;
pub use gc::{GcPass, GcProgress, GcReport, TombstoneStatus};
pub use held::{HeldBack, MAX_HELD_BYTES, MAX_HELD_CHANGES};
pub use identity::NodeIdentity;
pub use log::{ChangeIter, DEFAULT_PAGE};
pub use migrations::{OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};
pub use page_limit::MAX_QUERY_LIMIT;
pub use partial_age::{AGE_OUT_PAGE, AgeOutPass};
pub use query::{Filter, Order, Query};
pub use read::{CollectionStatus, Page, Record, StoreStatus};
pub use recon_snapshot::ReconSnapshot;
pub use schema::{PendingUpgrade, pending_upgrade};
pub use write::OPS_PER_STEP;
pub use write_op::{WriteOp, WriteOutcome};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use shoal_core::{CollectionName, DEFAULT_MAX_DRIFT_MS, DbVersion, Hlc, HlcGenerator, RecordId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a killed process loses nothing it
    /// acknowledged; a power cut may lose the last moments.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: every commit is fsynced.
    Full,
}

impl Durability {
    /// The value of SQLite's `synchronous` setting that gives it.
    pub(crate) fn synchronous(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Default cap on a record's stored state (see [`StoreConfig::max_record_bytes`]): 16 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;

/// Default cap on one blob: 1 GiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 1 << 30;

/// Settings for opening a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Commit durability (default [`Durability::Normal`]).
    pub durability: Durability,
    /// Largest canonical JSON size of a record written locally (its whole object,
    /// map fields included) and of any one value received from a peer, in bytes
    /// (default 1 MiB).
    pub max_value_bytes: usize,
    /// Largest stored state of a record a local write may leave, in bytes:
    /// every slot version packed, the tombstones of removed fields and map
    /// entries included (default [`DEFAULT_MAX_RECORD_BYTES`], 16 MiB). A
    /// write that would grow a record past it is refused
    /// ([`shoal_core::CoreError::RecordTooLarge`]); deleting the record
    /// clears its tombstones.
    pub max_record_bytes: usize,
    /// Largest distance a remote clock may be ahead of local wall time (default 5 min).
    pub max_drift_ms: u64,
    /// How long to wait for another process holding the write lock (default 5 s).
    pub busy_timeout: Duration,
    /// Create the database file if it does not exist (default true); when false,
    /// a missing file is [`StoreError::Missing`].
    pub create_if_missing: bool,
    /// Largest blob added or fetched, in bytes (default 1 GiB).
    pub max_blob_bytes: u64,
    /// How much of the conflict journal this node keeps (default 10,000
    /// entries, 90 days; see [`Store::conflicts`]).
    pub journal: JournalBounds,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Normal,
            max_value_bytes: 1024 * 1024,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
            busy_timeout: Duration::from_secs(5),
            create_if_missing: true,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            journal: JournalBounds::default(),
        }
    }
}

/// An open Shoal database file.
///
/// ```
/// use shoal_store::{Store, StoreConfig, WriteOp};
/// use shoal_core::{CollectionName, Intent, RecordId};
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = Store::open(dir.path().join("shoal.db"), StoreConfig::default()).unwrap();
/// let tasks = CollectionName::new("tasks").unwrap();
/// let id = RecordId::new("t1").unwrap();
/// let body = serde_json::json!({"title": "write docs"}).as_object().unwrap().clone();
/// store.write(vec![WriteOp { collection: tasks.clone(), id: id.clone(), intent: Intent::Put(body) }]).unwrap();
/// assert_eq!(store.get(&tasks, &id).unwrap().unwrap()["title"], "write docs");
/// assert_eq!(store.changes_since(Default::default()).count(), 2); // life + one field
/// ```
pub struct Store {
    /// The connection, with the statements every write runs kept on it
    /// (`kept.rs`).
    db: kept::Db,
    path: PathBuf,
    identity: NodeIdentity,
    hlc: HlcGenerator,
    db_version: DbVersion,
    config: StoreConfig,
    head_memo: rows::HeadMemo,
    /// Collection ids known to be committed (ids never change once committed).
    collections: HashMap<CollectionName, i64>,
    /// Reconciliation fingerprints of the collections reconciled so far.
    recon: recon_index::ReconIndex,
    /// Which transactions merged which peer's batches (not sent back to it).
    echoes: echo::EchoLog,
    /// The collections' declared data versions and schemas, compiled.
    schemas: data_versions::SchemaCache,
    /// The device registry as last read (`devices.rs`, issue 19).
    devices: devices::DeviceCache,
    /// Checkpoints the write-ahead log off the write path.
    checkpointer: checkpointer::Checkpointer,
    /// This connection's commits (`commit_count.rs`).
    commits: CommitCount,
    /// The sharing rules as last read (`sharing.rs`).
    sharing_cache: sharing::SharingCache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("site", &self.identity.site())
            .field("db_version", &self.db_version)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (or creates) the database at `path`.
    ///
    /// Refuses, without changing the file, a file that is not a SQLite database,
    /// is empty (0 bytes) or fails a quick check of its pages (the first
    /// [`OPEN_CHECK_PAGES`]) ([`StoreError::Corrupt`]), one that belongs to another application
    /// ([`StoreError::Foreign`]), one written by a newer Shoal
    /// ([`StoreError::NewerSchema`]) or one too old to upgrade
    /// ([`StoreError::ObsoleteSchema`]). An older file is upgraded by the
    /// numbered migrations, all in one transaction.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let sqlite = |e| StoreError::from_sqlite(&path, e);
        if !config.create_if_missing && !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if config.create_if_missing {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        // Only a missing file is a new database; an empty one is a damaged one.
        check::refuse_empty(&path)?;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(sqlite)?;
        // First, while SQLite has handed out none of it.
        lookaside::enlarge(&conn);
        conn.busy_timeout(config.busy_timeout).map_err(sqlite)?;
        // Check what the file is before switching it to WAL (which writes to
        // it) or upgrading its schema: its pages, then its kind.
        check::quick_check_at_open(&mut conn, &path)?;
        schema::prepare(&mut conn, &path)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", config.durability.synchronous())
            .map_err(sqlite)?;
        // Checkpoints run on a thread of their own, not in the write that
        // crosses the threshold (`checkpointer.rs`).
        let commits = CommitCount::default();
        let checkpointer = checkpointer::Checkpointer::install(
            &mut conn,
            &path,
            config.durability,
            checkpointer::Thresholds::default(),
            commits.clone(),
        )
        .map_err(sqlite)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Plans do not depend on bound values: without this, SQLite marks
        // a statement to be compiled again whenever a parameter it looked
        // at while planning is bound anew — the batch look-up
        // (`load_many.rs`, whose id list is a parameter) was, on every
        // run, the costliest part of merging one pushed record.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(sqlite)?;
        let identity = NodeIdentity::load_or_create(&conn).map_err(|e| e.with_path(&path))?;
        // `data_version` before the head: a commit by another connection
        // between the two reads then moves it again and the first write
        // reads the head anew. Read after, it would take that commit as
        // seen while the head did not hold it, and the first write would
        // reuse the commit's log position.
        let data_version = rows::data_version(&conn).map_err(|e| e.with_path(&path))?;
        let (db_version, restored) = Self::restored_head(&conn).map_err(|e| e.with_path(&path))?;
        let hlc = HlcGenerator::new(restored, config.max_drift_ms);
        let ledger_in_use = gc_ledger::ledger_in_use(&conn).map_err(|e| e.with_path(&path))?;
        let db = kept::Db::new(conn).map_err(|e| e.with_path(&path))?;
        Ok(Self {
            db,
            path,
            identity,
            hlc,
            db_version,
            config,
            head_memo: rows::HeadMemo {
                data_version,
                ledger_in_use,
            },
            collections: HashMap::new(),
            recon: recon_index::ReconIndex::default(),
            echoes: echo::EchoLog::default(),
            schemas: data_versions::SchemaCache::default(),
            devices: devices::DeviceCache::default(),
            checkpointer,
            commits,
            sharing_cache: sharing::SharingCache::default(),
        })
    }

    /// The last db_version and the highest clock used or seen before the last
    /// close: the clock mark (`clock_mark.rs`), or the clocks of the last
    /// transaction, whichever is higher.
    fn restored_head(conn: &Connection) -> Result<(DbVersion, Hlc), StoreError> {
        let mark = clock_mark::load(conn)?;
        let (version, last_txn) = rows::log_head(conn)?;
        Ok((version, mark.max(last_txn)))
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node's identity (keypair, peer id, site id).
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The version of the last committed transaction (0 for an empty store).
    pub fn db_version(&self) -> DbVersion {
        self.db_version
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Runs `f` only where it needs no waiting: SQLite's wait for another
    /// connection's lock is off (where another process holds the database
    /// file's lock, `f` fails at once instead of waiting up to
    /// [`StoreConfig::busy_timeout`], its transaction rolled back), and `f`
    /// is not run at all when the next commit may checkpoint the
    /// write-ahead log in the write ([`StoreError::WouldWait`]). Either way
    /// [`StoreError::is_busy`] holds and nothing changed. For a caller with
    /// a better place to wait: an async task that then hands the call to a
    /// thread.
    pub fn without_waiting<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.checkpointer.checkpoints_in_next_write() {
            return Err(StoreError::WouldWait {
                reason: "a checkpoint is due in the next write",
            });
        }
        self.db.conn.busy_timeout(Duration::ZERO)?;
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        // Cannot fail (SQLite only installs its handler): were it to, `f`'s
        // outcome is still the one to report, and later calls wait less.
        let _ = self.db.conn.busy_timeout(self.config.busy_timeout);
        out.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// A handle on the count of this store's own commits, readable without
    /// the store (see [`CommitCount`]): a commit by another connection or
    /// process does not move it.
    pub fn commit_count(&self) -> CommitCount {
        self.commits.clone()
    }

    /// Notices commits made by other processes on the same file (e.g. the CLI
    /// next to a running daemon): returns the new db_version if the log grew.
    /// Cheap when nothing changed (one `PRAGMA data_version`).
    pub fn refresh_head(&mut self) -> Result<Option<DbVersion>, StoreError> {
        let before = self.db_version;
        self.notice_other_commits()?;
        Ok((self.db_version > before).then_some(self.db_version))
    }

    /// Catches up with what other connections committed (see
    /// `rows::HeadMemo::refresh`), and drops the reconciliation trees if
    /// they did: the trees may miss their changes.
    fn notice_other_commits(&mut self) -> Result<(), StoreError> {
        if self.head_memo.refresh(
            &self.db.conn,
            &self.db.kept,
            &mut self.db_version,
            &mut self.hlc,
        )? {
            self.recon.clear();
        }
        Ok(())
    }

    /// How many reconciliation trees this store built by reading every
    /// record of a collection since it opened (a tree saved at the last
    /// close and still true is taken back instead; see [`Store::recon_view`]).
    pub fn recon_index_builds(&self) -> u64 {
        self.recon.builds()
    }

    /// Saves the reconciliation trees that changed since they were loaded
    /// or saved, so the next open takes them back instead of reading every
    /// record. Done on drop too; skipped, without error, when another
    /// connection committed since this one last looked.
    pub fn save_recon_index(&mut self) -> Result<(), StoreError> {
        self.recon.save(&mut self.db, &mut self.head_memo)
    }

    /// The highest clock reading used or observed so far.
    pub fn last_hlc(&self) -> Hlc {
        self.hlc.last()
    }

    fn collection_id(&self, name: &CollectionName) -> Result<Option<i64>, StoreError> {
        rows::collection_id(&self.db.conn, name, false)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.save_recon_index() {
            tracing::warn!(
                "cannot save the reconciliation index of {} (it is rebuilt on next use): {e}",
                self.path.display()
            );
        }
        // Before the connection closes: the thread's connection closes
        // first, so the store's is the last and removes the log.
        self.checkpointer.stop();
    }
}

/// The id of `name` inside a write transaction, creating the collection if
/// needed; ids created here are cached only once the transaction commits.
pub(crate) fn collection_for_write(
    cache: &HashMap<CollectionName, i64>,
    tx: &Connection,
    name: &CollectionName,
    created: &mut Vec<(CollectionName, i64)>,
) -> Result<i64, StoreError> {
    if let Some(cid) = cache.get(name) {
        return Ok(*cid);
    }
    if let Some((_, cid)) = created.iter().find(|(n, _)| n == name) {
        return Ok(*cid);
    }
    let cid = rows::collection_id(tx, name, true)?.unwrap_or_default();
    created.push((name.clone(), cid));
    Ok(cid)
}

/// Names a record: its collection and id.
pub type RecordKey = (CollectionName, RecordId);
