//! Reading the tab's change log for a sync peer from IndexedDB: one
//! read-only transaction over the records (through the `by_version` index,
//! in log order, a page at a time) and the metadata (the end of the log),
//! so the rows and the head agree. What to take from each row is
//! `sync/log_read.rs`'s; this file only feeds it rows. Also the other reads
//! syncing needs: rows by id (fetch answers), the devices collection.

use crate::error::WebError;
use crate::idb::request::{classify, result};
use crate::idb::rows::{self, RecordRow};
use crate::idb::schema::{BY_VERSION, META, NODE_KEY, RECORDS};
use crate::idb::tx;
use crate::keys::page_range;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use crate::sync::echo::EchoLog;
use crate::sync::log_read::{LogReader, LogRow, nothing_after};
use js_sys::Array;
use shoal_core::devices::{DEVICES_COLLECTION, Registry};
use shoal_core::{CollectionName, LogRead, RecordId, SyncCursor};
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbIndex, IdbKeyRange, IdbObjectStore};

/// Rows fetched per request.
const PAGE: u32 = 1024;

/// A stored row as the log reader takes it.
pub fn log_row(row: RecordRow) -> Result<LogRow, WebError> {
    LogRow::decode(&row.collection, &row.id, row.version, &row.state)
}

/// One bounded read for `peer` after `after` (see `sync/log_read.rs`);
/// `echoes` are the versions merged from the peer in this session.
pub async fn read_for_peer(
    db: &IdbDatabase,
    peer: &str,
    after: SyncCursor,
    max_changes: u32,
    max_bytes: u32,
    echoes: &EchoLog,
) -> Result<LogRead, WebError> {
    let tx = tx::read(db, &[RECORDS, META])?;
    let node = tx::store(&tx, META)?
        .get(&NODE_KEY.into())
        .map_err(|e| classify(&e))?;
    let node = rows::text(&result(&node).await?)?
        .ok_or_else(|| WebError::Corrupt("node metadata missing".into()))?;
    let head = NodeMeta::decode(&node)?.version;
    if after == SyncCursor::complete(after.base) && echoes.covers(peer, after.base, head) {
        return Ok(nothing_after(after, head));
    }
    let index = tx::store(&tx, RECORDS)?
        .index(BY_VERSION)
        .map_err(|e| classify(&e))?;
    let mut reader = LogReader::new(after, max_changes, max_bytes, |v| echoes.contains(peer, v));
    if reader.inside_record() {
        let at = IdbKeyRange::only(&(after.position.version.0 as f64).into())
            .map_err(|e| classify(&e))?;
        let found = page(&index, &at, 1).await?;
        reader.resume(found.first());
    }
    let mut from = reader.after_version();
    while reader.wants_more() {
        let range = IdbKeyRange::lower_bound_with_open(&(from.0 as f64).into(), true)
            .map_err(|e| classify(&e))?;
        let rows = page(&index, &range, PAGE).await?;
        for row in &rows {
            reader.take(row);
            from = row.version;
        }
        if (rows.len() as u32) < PAGE {
            break;
        }
    }
    Ok(reader.finish(head))
}

/// Up to `limit` rows of the index range, in log order.
async fn page(index: &IdbIndex, range: &IdbKeyRange, limit: u32) -> Result<Vec<LogRow>, WebError> {
    let request = index
        .get_all_with_key_and_limit(range, limit)
        .map_err(|e| classify(&e))?;
    let values: Array = result(&request)
        .await?
        .dyn_into()
        .map_err(|_| WebError::Storage("getAll did not give an array".into()))?;
    let mut out = Vec::with_capacity(values.length() as usize);
    for value in values.iter() {
        if let Some(row) = rows::from_js(&value)? {
            out.push(log_row(row)?);
        }
    }
    Ok(out)
}

/// The rows of these records (`None` for one never seen), in one
/// read-only transaction.
pub async fn rows_of(
    db: &IdbDatabase,
    collection: &CollectionName,
    ids: &[RecordId],
) -> Result<Vec<Option<LogRow>>, WebError> {
    let tx = tx::read(db, &[RECORDS])?;
    let records = tx::store(&tx, RECORDS)?;
    let mut requests = Vec::with_capacity(ids.len());
    for id in ids {
        let key = crate::keys::record_key(collection, id);
        requests.push(records.get(&key.into()).map_err(|e| classify(&e))?);
    }
    let mut out = Vec::with_capacity(ids.len());
    for request in requests {
        out.push(
            rows::from_js(&result(&request).await?)?
                .map(log_row)
                .transpose()?,
        );
    }
    Ok(out)
}

/// The tab's copy of the devices collection, read in `records`'s
/// transaction: id and state of each record.
pub async fn devices(records: &IdbObjectStore) -> Result<Vec<(String, StoredRecord)>, WebError> {
    let collection =
        CollectionName::new(DEVICES_COLLECTION).expect("the devices collection name is valid");
    let (lower, _, upper) = page_range(&collection, "", None);
    let range = IdbKeyRange::bound_with_lower_open_and_upper_open(
        &lower.into(),
        &upper.into(),
        false,
        true,
    )
    .map_err(|e| classify(&e))?;
    let request = records.get_all_with_key(&range).map_err(|e| classify(&e))?;
    let values: Array = result(&request)
        .await?
        .dyn_into()
        .map_err(|_| WebError::Storage("getAll did not give an array".into()))?;
    let mut out = Vec::new();
    for value in values.iter() {
        if let Some(row) = rows::from_js(&value)? {
            let row = log_row(row)?;
            out.push((row.id.as_str().to_string(), row.record));
        }
    }
    Ok(out)
}

/// The device registry of the tab's copy of the devices collection
/// (`sync/devices.rs`), in a read-only transaction of its own.
pub async fn registry(db: &IdbDatabase) -> Result<Option<Registry>, WebError> {
    let tx = tx::read(db, &[RECORDS])?;
    let records = devices(&tx::store(&tx, RECORDS)?).await?;
    Ok(crate::sync::devices::registry_from(
        records.iter().map(|(id, r)| (id.as_str(), r)),
    ))
}
