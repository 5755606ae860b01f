//! Reads of the browser store, each in one read-only transaction: a record,
//! a page of a collection, the node metadata; and creating the metadata on
//! first open. It never writes a record.

use crate::error::WebError;
use crate::idb::request::{classify, completed, result};
use crate::idb::rows;
use crate::idb::schema::{META, NODE_KEY, RECORDS};
use crate::idb::tx;
use crate::keys::record_key;
use crate::meta::NodeMeta;
use crate::page::{Page, listing_range};
use crate::row::decode_state;
use js_sys::Array;
use shoal_core::{CollectionName, RecordId};
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbKeyRange};

/// The record's JSON text, `None` if it does not exist or is deleted.
pub async fn get(
    db: &IdbDatabase,
    collection: &CollectionName,
    id: &RecordId,
) -> Result<Option<String>, WebError> {
    let tx = tx::read(db, &[RECORDS])?;
    let request = tx::store(&tx, RECORDS)?
        .get(&record_key(collection, id).into())
        .map_err(|e| classify(&e))?;
    match rows::from_js(&result(&request).await?)? {
        Some(row) => Ok(decode_state(&row.state)?.render_json()),
        None => Ok(None),
    }
}

/// Up to `limit` live records whose id starts with `prefix`, after `after`.
///
/// Deleted records (tombstones) are skipped but count toward the rows read,
/// so a page may hold fewer than `limit` records while `next` is set.
pub async fn list(
    db: &IdbDatabase,
    collection: &CollectionName,
    prefix: &str,
    after: Option<&RecordId>,
    limit: u32,
) -> Result<Page, WebError> {
    let Some((lower, lower_open, upper)) = listing_range(collection, prefix, after, limit)? else {
        return Ok(Page::default());
    };
    let range = IdbKeyRange::bound_with_lower_open_and_upper_open(
        &lower.into(),
        &upper.into(),
        lower_open,
        true,
    )
    .map_err(|e| classify(&e))?;
    let tx = tx::read(db, &[RECORDS])?;
    let request = tx::store(&tx, RECORDS)?
        .get_all_with_key_and_limit(&range, limit + 1)
        .map_err(|e| classify(&e))?;
    let rows: Array = result(&request)
        .await?
        .dyn_into()
        .map_err(|_| WebError::Storage("getAll did not give an array".into()))?;
    let mut read = Vec::with_capacity(rows.length() as usize);
    for value in rows.iter() {
        if let Some(row) = rows::from_js(&value)? {
            read.push((row.id, row.state));
        }
    }
    Page::from_rows(read, limit)
}

/// The stored node metadata (read-only; [`node_meta`] creates it at open).
pub async fn stored_meta(db: &IdbDatabase) -> Result<NodeMeta, WebError> {
    meta_if_any(db)
        .await?
        .ok_or_else(|| WebError::Corrupt("node metadata missing".into()))
}

/// The stored node metadata, `None` in a database that has none yet.
pub async fn meta_if_any(db: &IdbDatabase) -> Result<Option<NodeMeta>, WebError> {
    let tx = tx::read(db, &[META])?;
    let request = tx::store(&tx, META)?
        .get(&NODE_KEY.into())
        .map_err(|e| classify(&e))?;
    rows::text(&result(&request).await?)?
        .map(|text| NodeMeta::decode(&text))
        .transpose()
}

/// The node metadata, created (with 32 random bytes) on the first open.
pub async fn node_meta(db: &IdbDatabase) -> Result<NodeMeta, WebError> {
    let tx = tx::write(db, &[META])?;
    let meta = tx::store(&tx, META)?;
    let request = meta.get(&NODE_KEY.into()).map_err(|e| classify(&e))?;
    if let Some(text) = rows::text(&result(&request).await?)? {
        let node = NodeMeta::decode(&text);
        let _ = tx.abort();
        return node;
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| WebError::Storage(format!("no randomness: {e}")))?;
    let node = NodeMeta::new(seed);
    meta.put_with_key(&node.encode().into(), &NODE_KEY.into())
        .map_err(|e| classify(&e))?;
    completed(&tx).await?;
    Ok(node)
}
