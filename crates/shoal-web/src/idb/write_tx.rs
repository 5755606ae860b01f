//! One local write as one IndexedDB transaction: read the record's row and
//! the node metadata, decide the write in memory (write.rs, shoal-core's
//! rules), store the new row — its state, field clocks and change-log
//! position — and the new metadata together, and resolve only when the
//! transaction is complete. Any failure aborts the transaction whole.
//!
//! It owns the transaction's steps; the decisions are write.rs's.

use crate::error::WebError;
use crate::idb::request::{completed, result};
use crate::idb::rows;
use crate::idb::schema::{META, NODE_KEY, RECORDS};
use crate::idb::tx;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use crate::write::local_write;
use shoal_core::{CollectionName, DbVersion, Intent, RecordId};
use web_sys::{IdbDatabase, IdbTransaction};

/// A committed write.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The change-log position it was written at.
    pub version: DbVersion,
    /// The record as it now reads (`None`: deleted).
    pub value: Option<String>,
}

/// Applies `intent` to one record durably. `Ok(None)`: nothing changed, so
/// nothing was written.
pub async fn write(
    db: &IdbDatabase,
    collection: &CollectionName,
    id: &RecordId,
    intent: &Intent,
    now_ms: u64,
) -> Result<Option<Committed>, WebError> {
    let tx = tx::write(db, &[RECORDS, META])?;
    let outcome = steps(&tx, collection, id, intent, now_ms).await;
    match outcome {
        Ok(Some(committed)) => {
            completed(&tx).await?;
            Ok(Some(committed))
        }
        Ok(None) => {
            let _ = tx.abort();
            Ok(None)
        }
        Err(error) => {
            let _ = tx.abort();
            Err(error)
        }
    }
}

/// Reads, decides and places the puts (not yet committed).
async fn steps(
    tx: &IdbTransaction,
    collection: &CollectionName,
    id: &RecordId,
    intent: &Intent,
    now_ms: u64,
) -> Result<Option<Committed>, WebError> {
    let records = tx::store(tx, RECORDS)?;
    let meta = tx::store(tx, META)?;
    let key = crate::keys::record_key(collection, id);
    let row = records
        .get(&key.into())
        .map_err(|e| crate::idb::request::classify(&e))?;
    let node = meta
        .get(&NODE_KEY.into())
        .map_err(|e| crate::idb::request::classify(&e))?;
    let row = rows::from_js(&result(&row).await?)?;
    let node = rows::text(&result(&node).await?)?
        .ok_or_else(|| WebError::Corrupt("node metadata missing".into()))?;
    let node = NodeMeta::decode(&node)?;
    let stored = match row {
        Some(row) => StoredRecord::decode(&row.state, row.version)?,
        None => StoredRecord::default(),
    };
    let Some(written) = local_write(&node, &stored, intent, now_ms)? else {
        return Ok(None);
    };
    let version = written.meta.version;
    records
        .put(&rows::to_js(collection, id, version, &written.encoded))
        .map_err(|e| crate::idb::request::classify(&e))?;
    meta.put_with_key(&written.meta.encode().into(), &NODE_KEY.into())
        .map_err(|e| crate::idb::request::classify(&e))?;
    Ok(Some(Committed {
        version,
        value: written.state.render_json(),
    }))
}
