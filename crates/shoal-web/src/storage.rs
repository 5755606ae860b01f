//! Where an open store keeps its rows ([`Storage`]): IndexedDB (`idb/`,
//! anywhere: a window or a worker) or SQLite on OPFS (`sql/`, in a
//! dedicated Worker only), chosen at open ([`StorageKind`]). Both hold the
//! same rows and answer the same operations with the same meaning; this
//! file dispatches each operation to the one in use and owns nothing else.
//! The callers — the write queue, the JavaScript API, the sync replica —
//! do not know which it is.

use crate::error::WebError;
use crate::idb;
use crate::meta::NodeMeta;
use crate::page::Page;
use crate::sql;
use crate::sql::open::SqlDb;
use crate::sync::echo::EchoLog;
use crate::sync::log_read::LogRow;
use crate::sync::merge::Merged;
use crate::write_batch::{WriteOutcome, WriteRequest};
use shoal_core::devices::Registry;
use shoal_core::{Change, CollectionName, LogRead, RecordId, SyncCursor};
use web_sys::IdbDatabase;

/// Which storage a store is opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageKind {
    /// IndexedDB: in every browser context; each write a transaction of the
    /// browser's storage process, flushed (`durability: "strict"`).
    #[default]
    IndexedDb,
    /// SQLite on the origin private file system, in a dedicated Worker only:
    /// several times faster per write (docs/web.md).
    Opfs,
}

impl StorageKind {
    /// The kind an `OpenOptions.storage` string names.
    pub fn parse(text: &str) -> Result<StorageKind, WebError> {
        match text {
            "indexeddb" => Ok(StorageKind::IndexedDb),
            "opfs" => Ok(StorageKind::Opfs),
            other => Err(WebError::BadRequest(format!(
                "storage must be \"indexeddb\" or \"opfs\", got {other:?}"
            ))),
        }
    }
}

/// An open store's rows.
pub enum Storage {
    /// The IndexedDB database `shoal:<name>`.
    Idb(IdbDatabase),
    /// The SQLite database in the store's OPFS pool.
    Sql(SqlDb),
}

impl Storage {
    /// Opens (creating on first use, with its node metadata) the store
    /// `name` on `kind`, and answers its metadata.
    pub async fn open(name: &str, kind: StorageKind) -> Result<(Storage, NodeMeta), WebError> {
        match kind {
            StorageKind::IndexedDb => {
                let db = idb::schema::open(name).await?;
                match idb::read::node_meta(&db).await {
                    Ok(meta) => Ok((Storage::Idb(db), meta)),
                    Err(error) => {
                        db.close();
                        Err(error)
                    }
                }
            }
            StorageKind::Opfs => {
                // On a failure the dropped database closes itself.
                let db = SqlDb::open(name).await?;
                let meta = db.with(|c| db.head().get(c))?;
                Ok((Storage::Sql(db), meta))
            }
        }
    }

    /// Deletes the store `name` on `kind` (it must not be open).
    pub async fn delete(name: &str, kind: StorageKind) -> Result<(), WebError> {
        match kind {
            StorageKind::IndexedDb => idb::schema::delete(name).await,
            StorageKind::Opfs => SqlDb::delete(name).await,
        }
    }

    /// Closes the database (later operations fail).
    pub fn close(&self) {
        match self {
            Storage::Idb(db) => db.close(),
            Storage::Sql(db) => db.close(),
        }
    }

    /// The record's JSON text, `None` if it does not exist or is deleted.
    pub async fn get(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<String>, WebError> {
        match self {
            Storage::Idb(db) => idb::read::get(db, collection, id).await,
            Storage::Sql(db) => db.with(|c| sql::read::get(c, collection, id)),
        }
    }

    /// A page of live records (`page.rs`: tombstones count toward the rows
    /// read).
    pub async fn list(
        &self,
        collection: &CollectionName,
        prefix: &str,
        after: Option<&RecordId>,
        limit: u32,
    ) -> Result<Page, WebError> {
        match self {
            Storage::Idb(db) => idb::read::list(db, collection, prefix, after, limit).await,
            Storage::Sql(db) => db.with(|c| sql::read::list(c, collection, prefix, after, limit)),
        }
    }

    /// The node metadata as of the last commit (the SQLite store keeps
    /// it in memory: `sql/head.rs`).
    pub async fn meta(&self) -> Result<NodeMeta, WebError> {
        match self {
            Storage::Idb(db) => idb::read::stored_meta(db).await,
            Storage::Sql(db) => db.with(|c| db.head().get(c)),
        }
    }

    /// Applies `writes` in order in one durable transaction
    /// (write_batch.rs decides them); one outcome each. `Err`: none stored.
    pub async fn write_all(
        &self,
        writes: &[WriteRequest],
        now_ms: u64,
    ) -> Result<Vec<WriteOutcome>, WebError> {
        match self {
            Storage::Idb(db) => idb::write_tx::write_all(db, writes, now_ms).await,
            Storage::Sql(db) => {
                match db.with(|c| sql::write_tx::write_all(c, db.head(), writes, now_ms)) {
                    Err(error) => Err(sql::quota::classify(error).await),
                    outcomes => outcomes,
                }
            }
        }
    }

    /// `peer`'s stored cursor, or the start of its log.
    pub async fn cursor(&self, peer: &str) -> Result<SyncCursor, WebError> {
        match self {
            Storage::Idb(db) => idb::cursors::load(db, peer).await,
            Storage::Sql(db) => db.with(|c| sql::cursors::load(c, peer)),
        }
    }

    /// One bounded read of the log for `peer` after `after`.
    pub async fn read_for_peer(
        &self,
        peer: &str,
        after: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
        echoes: &EchoLog,
    ) -> Result<LogRead, WebError> {
        match self {
            Storage::Idb(db) => {
                idb::sync_log::read_for_peer(db, peer, after, max_changes, max_bytes, echoes).await
            }
            Storage::Sql(db) => db.with(|c| {
                let head = db.head().get(c)?.version;
                sql::sync_log::read_for_peer(c, head, peer, after, max_changes, max_bytes, echoes)
            }),
        }
    }

    /// The rows of these records (`None` for one never seen).
    pub async fn rows_of(
        &self,
        collection: &CollectionName,
        ids: &[RecordId],
    ) -> Result<Vec<Option<LogRow>>, WebError> {
        match self {
            Storage::Idb(db) => idb::sync_log::rows_of(db, collection, ids).await,
            Storage::Sql(db) => db.with(|c| sql::sync_log::rows_of(c, collection, ids)),
        }
    }

    /// The device registry of the store's copy of the devices collection.
    pub async fn registry(&self) -> Result<Option<Registry>, WebError> {
        match self {
            Storage::Idb(db) => idb::sync_log::registry(db).await,
            Storage::Sql(db) => db.with(|c| sql::sync_log::registry(c)),
        }
    }

    /// Merges `changes` from `peer`, with its cursor when given, in one
    /// durable transaction.
    pub async fn apply(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: Option<SyncCursor>,
        now_ms: u64,
    ) -> Result<Merged, WebError> {
        match self {
            Storage::Idb(db) => idb::sync_apply::apply(db, peer, changes, cursor, now_ms).await,
            Storage::Sql(db) => {
                match db
                    .with(|c| sql::sync_apply::apply(c, db.head(), peer, changes, cursor, now_ms))
                {
                    Err(error) => Err(sql::quota::classify(error).await),
                    merged => merged,
                }
            }
        }
    }
}
