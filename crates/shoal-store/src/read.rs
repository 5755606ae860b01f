//! Reads: one record, a page of records, per-record merge state, and status.
//!
//! This module owns read-side SQL other than queries (`query.rs`) and the change
//! log (`log.rs`). Nothing here writes.

use crate::error::StoreError;
use crate::rows;
use crate::{RecordKey, Store};
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};
use shoal_core::{CollectionName, DbVersion, RecordId, RecordState, SiteId};
use std::collections::BTreeMap;

/// A live record: its id and its fields.
pub type Record = (RecordId, Map<String, Value>);

/// A page of records in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, as `(id, fields)`.
    pub records: Vec<Record>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<RecordId>,
}

/// Counts for one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionStatus {
    /// The collection.
    pub name: CollectionName,
    /// Live records.
    pub live: u64,
    /// Deleted records (kept as tombstones so deletes never resurrect).
    pub deleted: u64,
}

/// A summary of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStatus {
    /// This node's site id.
    pub site: SiteId,
    /// This node's peer id, as text.
    pub peer_id: String,
    /// The version of the last committed transaction.
    pub db_version: DbVersion,
    /// Per-collection counts, by name.
    pub collections: Vec<CollectionStatus>,
}

/// Exclusive upper bound for ids starting with `prefix` (id bytes are all below 0x7f).
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{7f}")
}

impl Store {
    /// A live record's fields, or `None` if it is absent or deleted.
    pub fn get(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let Some(cid) = self.collection_id(collection)? else {
            return Ok(None);
        };
        let data: Option<Option<String>> = self
            .db
            .conn
            .prepare_cached("SELECT data FROM records WHERE cid = ?1 AND rid = ?2")?
            .query_row(params![cid, id.as_str()], |r| r.get(0))
            .optional()?;
        data.flatten().map(|text| parse_object(&text)).transpose()
    }

    /// The full merge state of a record (life and every slot with its clock),
    /// including deleted records; `None` if never seen.
    pub fn record_state(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<RecordState>, StoreError> {
        let Some(cid) = self.collection_id(collection)? else {
            return Ok(None);
        };
        let loaded = rows::load(&self.db.kept, cid, id)?;
        Ok((loaded.state.life().0 > 0).then_some(loaded.state))
    }

    /// Live records in id order: those whose id starts with `prefix`, after the
    /// id `after` (exclusive), at most `limit` of them.
    pub fn list(
        &self,
        collection: &CollectionName,
        prefix: &str,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        crate::page_limit::check_limit(limit)?;
        let Some(cid) = self.collection_id(collection)? else {
            return Ok(Page {
                records: Vec::new(),
                next: None,
            });
        };
        let lower = match after {
            Some(after) if after.as_str() >= prefix => after.as_str().to_string(),
            _ => String::new(),
        };
        let mut stmt = self.db.conn.prepare_cached(
            "SELECT rid, data FROM records
             WHERE cid = ?1 AND rid >= ?2 AND rid < ?3 AND rid > ?4 AND data IS NOT NULL
             ORDER BY rid LIMIT ?5",
        )?;
        let mut rows = stmt.query(params![
            cid,
            prefix,
            prefix_end(prefix),
            lower,
            limit as i64 + 1
        ])?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            let id = RecordId::new(row.get::<_, String>(0)?)?;
            records.push((id, parse_object(&row.get::<_, String>(1)?)?));
        }
        let next = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|(id, _)| id.clone())
        } else {
            None
        };
        Ok(Page { records, next })
    }

    /// How many records `collection` holds, live or deleted, counting no
    /// further than `limit`: it reads at most `limit` rows, so a small
    /// limit answers at once whatever the collection's size (unlike its
    /// reconciliation root, which may first index every record).
    pub fn record_count_up_to(
        &self,
        collection: &CollectionName,
        limit: u64,
    ) -> Result<u64, StoreError> {
        let Some(cid) = self.collection_id(collection)? else {
            return Ok(0);
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let counted: i64 = self
            .db
            .conn
            .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM records WHERE cid = ?1 LIMIT ?2)")?
            .query_row(params![cid, limit], |r| r.get(0))?;
        Ok(counted as u64)
    }

    /// Site id, db_version and record counts per collection.
    pub fn status(&self) -> Result<StoreStatus, StoreError> {
        let mut stmt = self.db.conn.prepare_cached(
            "SELECT c.name,
                    COALESCE(SUM(r.data IS NOT NULL), 0),
                    COALESCE(SUM(r.rid IS NOT NULL AND r.data IS NULL), 0)
             FROM collections c LEFT JOIN records r ON r.cid = c.cid
             GROUP BY c.cid ORDER BY c.name",
        )?;
        let mut rows = stmt.query([])?;
        let mut collections = Vec::new();
        while let Some(row) = rows.next()? {
            collections.push(CollectionStatus {
                name: CollectionName::new(row.get::<_, String>(0)?)?,
                live: row.get::<_, i64>(1)? as u64,
                deleted: row.get::<_, i64>(2)? as u64,
            });
        }
        Ok(StoreStatus {
            site: self.identity.site(),
            peer_id: self.identity.peer_id().to_string(),
            db_version: self.db_version,
            collections,
        })
    }

    /// Checks every page of the file (SQLite `quick_check`): ordinary reads do
    /// not always notice damaged pages, this does. Reads the whole file.
    pub fn verify(&self) -> Result<(), StoreError> {
        let mut stmt = self.db.conn.prepare("PRAGMA quick_check(20)")?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::Corrupt {
            path: self.path.clone(),
            detail: problems.join("; "),
        })
    }

    /// Every record's full merge state, keyed by collection and id. Loads the
    /// whole store into memory: meant for tests and offline tools only.
    pub fn full_state(&self) -> Result<BTreeMap<RecordKey, RecordState>, StoreError> {
        let mut stmt = self.db.conn.prepare(
            "SELECT c.name, r.rid, r.slots FROM records r JOIN collections c ON c.cid = r.cid",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let key = (
                CollectionName::new(row.get::<_, String>(0)?)?,
                RecordId::new(row.get::<_, String>(1)?)?,
            );
            out.insert(key, rows::unpack(&row.get::<_, Vec<u8>>(2)?)?.state);
        }
        Ok(out)
    }
}

pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::Corrupt {
            path: Default::default(),
            detail: "stored record data is not a JSON object".into(),
        }),
    }
}
