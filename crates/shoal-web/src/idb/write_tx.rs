//! Local writes as one IndexedDB transaction: read the rows of the records
//! written and the node metadata, decide the writes in memory
//! (write_batch.rs, shoal-core's rules), store the new rows —
//! state, field clocks and change-log position — and the new metadata
//! together, and resolve only when the transaction is complete.
//!
//! A write the core refuses (a patch of a missing record, say) gets its own
//! error and leaves nothing; the others of the transaction are unaffected.
//! A transaction that fails (the quota, the storage) fails every write in
//! it, none of them stored. It owns the transaction's steps; the decisions
//! are write_batch.rs's, and which writes share a transaction is
//! `write_queue.rs`'s.

use crate::error::WebError;
use crate::idb::request::{classify, completed, result};
use crate::idb::rows;
use crate::idb::schema::{META, NODE_KEY, RECORDS};
use crate::idb::tx;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use crate::write_batch::{self, WriteOutcome, WriteRequest};
use web_sys::{IdbRequest, IdbTransaction};

/// Applies `writes` in order in one durable transaction, each as one local
/// write (its own clock tick and change-log version), and answers one
/// outcome per write. `Err`: the transaction failed, and none of the
/// writes is stored.
pub async fn write_all(
    db: &web_sys::IdbDatabase,
    writes: &[WriteRequest],
    now_ms: u64,
) -> Result<Vec<WriteOutcome>, WebError> {
    let tx = tx::write(db, &[RECORDS, META])?;
    match steps(&tx, writes, now_ms).await {
        Ok((outcomes, true)) => {
            completed(&tx).await?;
            Ok(outcomes)
        }
        Ok((outcomes, false)) => {
            let _ = tx.abort();
            Ok(outcomes)
        }
        Err(error) => {
            let _ = tx.abort();
            Err(error)
        }
    }
}

/// Reads, decides and places the puts (not yet committed); also says
/// whether anything was placed.
async fn steps(
    tx: &IdbTransaction,
    writes: &[WriteRequest],
    now_ms: u64,
) -> Result<(Vec<WriteOutcome>, bool), WebError> {
    let records = tx::store(tx, RECORDS)?;
    let meta = tx::store(tx, META)?;
    let node = meta.get(&NODE_KEY.into()).map_err(|e| classify(&e))?;
    // Every record's row asked for at once; the answers come in order.
    let needed = write_batch::needed(writes);
    let asked: Vec<IdbRequest> = needed
        .keys
        .iter()
        .map(|key| records.get(&key.as_str().into()).map_err(|e| classify(&e)))
        .collect::<Result<_, WebError>>()?;
    let node = rows::text(&result(&node).await?)?
        .ok_or_else(|| WebError::Corrupt("node metadata missing".into()))?;
    let node = NodeMeta::decode(&node)?;
    // A row that does not decode (or is not a row at all) refuses the
    // writes of its record only.
    let mut stored: Vec<Result<StoredRecord, WebError>> = Vec::with_capacity(asked.len());
    for request in &asked {
        stored.push(match rows::from_js(&result(request).await?) {
            Ok(Some(row)) => StoredRecord::decode(&row.state, row.version),
            Ok(None) => Ok(StoredRecord::default()),
            Err(error) => Err(error),
        });
    }
    let decided = write_batch::decide(node, stored, &needed, writes, now_ms);
    for row in &decided.rows {
        let write = &writes[row.write];
        records
            .put(&rows::to_js(
                &write.collection,
                &write.id,
                row.version,
                &row.encoded,
            ))
            .map_err(|e| classify(&e))?;
    }
    let placed = decided.meta.is_some();
    if let Some(node) = decided.meta {
        meta.put_with_key(&node.encode().into(), &NODE_KEY.into())
            .map_err(|e| classify(&e))?;
    }
    Ok((decided.outcomes, placed))
}
