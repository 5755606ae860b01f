//! Merging a peer's changes into IndexedDB: one read-write transaction
//! (`durability: "strict"`) over the records, the metadata and the cursors
//! that loads the records the batch touches (and the devices collection when
//! the batch touches it), decides the merge in memory (`sync/merge.rs`),
//! stores the rewritten records, the new metadata and — in the same
//! transaction — the peer's cursor, and resolves only once it is complete.
//! A crash keeps both the data and the cursor or neither, so the cursor
//! never runs ahead of the applied data; any failure aborts it whole.
//!
//! It owns the transaction's steps; the decisions are `sync/merge.rs`'s.

use crate::error::WebError;
use crate::idb::request::{classify, completed, result};
use crate::idb::rows;
use crate::idb::schema::{CURSORS, META, NODE_KEY, RECORDS};
use crate::idb::sync_log;
use crate::idb::tx;
use crate::keys::record_key;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use crate::sync::devices;
use crate::sync::merge::{self, Merged, RecordKey};
use js_sys::Array;
use shoal_core::{Change, DbVersion, SyncCursor};
use std::collections::{HashMap, HashSet};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransaction};

/// Merges `changes` from `peer` and, when given, persists `cursor` (its
/// durable part) as the peer's cursor in the same transaction.
pub async fn apply(
    db: &IdbDatabase,
    peer: &str,
    changes: &[Change],
    cursor: Option<SyncCursor>,
    now_ms: u64,
) -> Result<Merged, WebError> {
    let tx = tx::write(db, &[RECORDS, META, CURSORS])?;
    match steps(&tx, peer, changes, cursor, now_ms).await {
        Ok(Some(merged)) => {
            completed(&tx).await?;
            Ok(merged)
        }
        Ok(None) => {
            let _ = tx.abort();
            Ok(Merged::default())
        }
        Err(error) => {
            let _ = tx.abort();
            Err(error)
        }
    }
}

/// The stored rows of `keys` (those that exist). A catch-up batch names
/// thousands of records, mostly in one stretch of keys: when the rows in
/// the stretch from the least key to the greatest are not many more than
/// the batch names, they are read with one `getAll` (none at all when the
/// stretch is empty, as for a new tab), else each with its own `get`.
async fn load(
    records: &IdbObjectStore,
    keys: &[RecordKey],
) -> Result<HashMap<RecordKey, (DbVersion, StoredRecord)>, WebError> {
    let mut stored = HashMap::with_capacity(keys.len());
    let texts: Vec<String> = keys.iter().map(|(c, i)| record_key(c, i)).collect();
    let (Some(least), Some(greatest)) = (texts.iter().min(), texts.iter().max()) else {
        return Ok(stored);
    };
    let stretch = IdbKeyRange::bound(&least.into(), &greatest.into()).map_err(|e| classify(&e))?;
    let count = records.count_with_key(&stretch).map_err(|e| classify(&e))?;
    let count = result(&count).await?.as_f64().unwrap_or(f64::MAX);
    if count == 0.0 {
        return Ok(stored);
    }
    let decode =
        |value: &JsValue| -> Result<Option<(RecordKey, (DbVersion, StoredRecord))>, WebError> {
            let Some(row) = rows::from_js(value)? else {
                return Ok(None);
            };
            let version = row.version;
            let row = sync_log::log_row(row)?;
            Ok(Some(((row.collection, row.id), (version, row.record))))
        };
    if count <= (keys.len() * 2 + 64) as f64 {
        let request = records
            .get_all_with_key(&stretch)
            .map_err(|e| classify(&e))?;
        let values: Array = result(&request)
            .await?
            .dyn_into()
            .map_err(|_| WebError::Storage("getAll did not give an array".into()))?;
        let wanted: HashSet<&RecordKey> = keys.iter().collect();
        for value in values.iter() {
            if let Some((key, row)) = decode(&value)?
                && wanted.contains(&key)
            {
                stored.insert(key, row);
            }
        }
        return Ok(stored);
    }
    // Every request is placed before the first is awaited.
    let mut requests = Vec::with_capacity(keys.len());
    for key in texts {
        requests.push(records.get(&key.into()).map_err(|e| classify(&e))?);
    }
    for request in requests {
        if let Some((key, row)) = decode(&result(&request).await?)? {
            stored.insert(key, row);
        }
    }
    Ok(stored)
}

/// Loads, decides and places the puts; `None` when there is nothing to write.
async fn steps(
    tx: &IdbTransaction,
    peer: &str,
    changes: &[Change],
    cursor: Option<SyncCursor>,
    now_ms: u64,
) -> Result<Option<Merged>, WebError> {
    let records = tx::store(tx, RECORDS)?;
    let meta_store = tx::store(tx, META)?;
    let node = meta_store.get(&NODE_KEY.into()).map_err(|e| classify(&e))?;
    let keys = merge::records_of(changes);
    let node = rows::text(&result(&node).await?)?
        .ok_or_else(|| WebError::Corrupt("node metadata missing".into()))?;
    let meta = NodeMeta::decode(&node)?;
    merge::validate(&meta, changes, now_ms)?;
    let stored = load(&records, &keys).await?;
    let issuers = if merge::touches_devices(changes) {
        let devices = sync_log::devices(&records).await?;
        let registry = devices::registry_from(devices.iter().map(|(id, r)| (id.as_str(), r)));
        devices::issuers(registry.as_ref())
    } else {
        shoal_core::devices::Issuers::NoOwner
    };
    let plan = merge::plan_merge(&meta, changes, &stored, &issuers);
    if plan.rows.is_empty() && cursor.is_none() {
        return Ok(None);
    }
    for row in &plan.rows {
        records
            .put(&rows::to_js(
                &row.collection,
                &row.id,
                row.version,
                &row.record.encode(),
            ))
            .map_err(|e| classify(&e))?;
    }
    if plan.meta != meta {
        meta_store
            .put_with_key(&plan.meta.encode().into(), &NODE_KEY.into())
            .map_err(|e| classify(&e))?;
    }
    if let Some(cursor) = cursor {
        let text = crate::cursor_text::encode(cursor);
        tx::store(tx, CURSORS)?
            .put_with_key(&text.into(), &peer.into())
            .map_err(|e| classify(&e))?;
    }
    Ok(Some(Merged {
        report: plan.report,
        rows: plan.rows,
    }))
}
