//! Moving a store from IndexedDB to SQLite on OPFS: what
//! `Store.open(name, {storage: "opfs", importFrom: "indexeddb"})` does
//! before the store is handed out, so an app that kept its data in
//! IndexedDB can switch to the faster storage without losing a write.
//!
//! The move copies the rows as they are stored — every record with its
//! log position and state (tombstones too), the catch-up cursors, and the
//! node metadata: identity seed, site id, clock and log head — so the OPFS
//! store *is* the IndexedDB store, not a new peer that learned its data:
//! daemons know it by the same peer id (and device admission), and their
//! catch-up cursors still point into the same log. The copy is one SQLite
//! transaction, flushed to the disk; the IndexedDB database is deleted only
//! after it committed. Stopped anywhere (a closed tab, a full disk), the
//! IndexedDB store is intact and the next open moves it again. Stopped
//! between the commit and the delete, the next open deletes the old copy —
//! unless it was written since (an older version of the app opened it):
//! then two stores hold writes of one identity, and the open is refused
//! with both kept.
//!
//! The caller holds the store name's lock, which covers both storages
//! (`lock.rs`), so nothing writes either store meanwhile. It owns the
//! decision and the order of the steps; the reads are `idb/export.rs`'s and
//! the writes `sql/import.rs`'s.

use crate::error::WebError;
use crate::idb;
use crate::meta::NodeMeta;
use crate::sql::import as write;
use crate::sql::open::SqlDb;
use crate::storage::StorageKind;

/// Record rows read from IndexedDB and written per step, at first: a row
/// holds up to one record's state (at most 16 MiB), so the move starts
/// with few and takes more while pages stay small.
const FIRST_PAGE_ROWS: u32 = 8;
/// The most rows per step.
const MAX_PAGE_ROWS: u32 = 1024;
/// A page of state text under this takes twice the rows next time; over
/// four times this, half.
const PAGE_BYTES: usize = 2 << 20;

/// What an open asked to move into the store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFrom {
    /// The IndexedDB store of the same name, if there is one.
    IndexedDb,
}

impl ImportFrom {
    /// The source an `OpenOptions.importFrom` string names, for a store
    /// opened on `target` (only IndexedDB into OPFS is a move).
    pub fn parse(text: &str, target: StorageKind) -> Result<ImportFrom, WebError> {
        match (text, target) {
            ("indexeddb", StorageKind::Opfs) => Ok(ImportFrom::IndexedDb),
            ("indexeddb", StorageKind::IndexedDb) => Err(WebError::BadRequest(
                "importFrom \"indexeddb\" moves a store into OPFS: open it with storage \"opfs\""
                    .into(),
            )),
            (other, _) => Err(WebError::BadRequest(format!(
                "importFrom must be \"indexeddb\", got {other:?}"
            ))),
        }
    }
}

/// How a move ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// There was no IndexedDB store of this name.
    Nothing,
    /// The IndexedDB store was copied (so many record rows) and deleted;
    /// `deleted` is false when the delete failed (the next open deletes it).
    Copied {
        /// Record rows copied, tombstones included.
        rows: u64,
        /// Whether the IndexedDB database is gone.
        deleted: bool,
    },
    /// An earlier move had copied it but not deleted it; deleted now.
    AlreadyCopied,
}

/// Moves the IndexedDB store `name` into `target` (the just-opened OPFS
/// store of the same name, whose metadata is `target_meta`), and answers
/// the metadata the OPFS store has afterwards.
///
/// Refused (`bad-request`, both stores left as they are) when the OPFS
/// store already holds records of another identity (two different stores,
/// which a copy would mix), or when the IndexedDB store was written after
/// an earlier move of it.
pub async fn from_indexeddb(
    name: &str,
    target: &SqlDb,
    target_meta: NodeMeta,
) -> Result<(NodeMeta, Moved), WebError> {
    if idb::export::exists(name).await? == Some(false) {
        return Ok((target_meta, Moved::Nothing));
    }
    let source = idb::schema::open(name).await?;
    let found = copy(name, &source, target, &target_meta).await;
    source.close();
    // Refused or failed: the IndexedDB store stays as it was.
    let found = found?;
    // It goes only once its rows are committed in SQLite.
    let deleted = idb::schema::delete(name).await.is_ok();
    let moved = match found {
        // A database without metadata holds nothing: the browser could not
        // list its databases, and opening this one created it.
        Found::Empty => Moved::Nothing,
        Found::Copied(rows) => Moved::Copied { rows, deleted },
        Found::AlreadyCopied => Moved::AlreadyCopied,
    };
    // The move stored the IndexedDB store's metadata and rows.
    target.head().forget();
    Ok((target.with(|c| target.head().get(c))?, moved))
}

/// What the IndexedDB database held, once copied.
enum Found {
    /// No store (no metadata).
    Empty,
    /// A store an earlier move copied already (same identity).
    AlreadyCopied,
    /// A store, copied now: so many record rows.
    Copied(u64),
}

/// Copies `source` into `target` unless that is done or would mix two
/// stores.
async fn copy(
    name: &str,
    source: &web_sys::IdbDatabase,
    target: &SqlDb,
    target_meta: &NodeMeta,
) -> Result<Found, WebError> {
    let Some(source_meta) = idb::read::meta_if_any(source).await? else {
        return Ok(Found::Empty);
    };
    if source_meta.site == target_meta.site {
        // Moved here before; the IndexedDB copy goes only if nothing was
        // written to it since (an older version of the app may have opened
        // it again): else both stores now hold writes of one identity.
        if target.with(|c| write::moved_from(c))?.as_ref() == Some(&source_meta) {
            return Ok(Found::AlreadyCopied);
        }
        return Err(WebError::BadRequest(format!(
            "the IndexedDB store {name:?} was written after it was moved to OPFS; nothing was \
             moved or deleted (open it with storage \"indexeddb\" to read those writes)"
        )));
    }
    if target_meta.version.0 > 0 || target.with(|c| write::holds_records(c))? {
        return Err(WebError::BadRequest(format!(
            "the OPFS store {name:?} already holds other data than the IndexedDB store {name:?}; \
             nothing was moved (open the IndexedDB store with storage \"indexeddb\" to read it, \
             or delete one of them)"
        )));
    }
    target.with(|c| write::begin(c))?;
    let copied = async {
        let mut rows = 0u64;
        let mut after: Option<String> = None;
        let mut limit = FIRST_PAGE_ROWS;
        loop {
            let (page, full) = idb::export::records_after(source, after.as_deref(), limit).await?;
            target.with(|c| {
                write::rows(
                    c,
                    page.iter()
                        .map(|r| (r.key.as_str(), r.version, r.state.as_str())),
                )
            })?;
            rows += page.len() as u64;
            let bytes: usize = page.iter().map(|r| r.state.len()).sum();
            limit = next_limit(limit, bytes);
            match page.last() {
                Some(last) if full => after = Some(last.key.clone()),
                _ => break,
            }
        }
        let cursors = idb::export::cursors(source).await?;
        target.with(|c| write::finish(c, &source_meta, &cursors))?;
        Ok(rows)
    }
    .await;
    match copied {
        Ok(rows) => Ok(Found::Copied(rows)),
        Err(error) => {
            let _ = target.with(|c| {
                write::abort(c);
                Ok(())
            });
            Err(crate::sql::quota::classify(error).await)
        }
    }
}

/// The rows to read next after a page of `limit` rows held `bytes` of state.
fn next_limit(limit: u32, bytes: usize) -> u32 {
    if bytes < PAGE_BYTES {
        (limit * 2).min(MAX_PAGE_ROWS)
    } else if bytes > 4 * PAGE_BYTES {
        (limit / 2).max(1)
    } else {
        limit
    }
}
