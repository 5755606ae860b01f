//! Merging a peer's changes into the SQLite store: one transaction that
//! loads the records the batch touches (and the devices collection when the
//! batch touches it), decides the merge in memory (`sync/merge.rs`), stores
//! the rewritten records, the new metadata and — in the same transaction —
//! the peer's cursor, and answers only after the commit. A crash keeps both
//! the data and the cursor or neither; any failure rolls it back whole.

use crate::error::WebError;
use crate::keys::record_key;
use crate::row::StoredRecord;
use crate::sql::head::Head;
use crate::sql::meta_rows::put_meta;
use crate::sql::open::put_row;
use crate::sql::txn::Txn;
use crate::sql::{cursors, read, sync_log};
use crate::sync::devices;
use crate::sync::merge::{self, Merged, RecordKey};
use rusqlite::Connection;
use shoal_core::{Change, DbVersion, SyncCursor};
use std::collections::HashMap;

/// Merges `changes` from `peer` and, when given, persists `cursor` (its
/// durable part) as the peer's cursor in the same transaction.
pub fn apply(
    conn: &mut Connection,
    head: &Head,
    peer: &str,
    changes: &[Change],
    cursor: Option<SyncCursor>,
    now_ms: u64,
) -> Result<Merged, WebError> {
    let tx = Txn::begin(conn)?;
    let meta = head.get(&tx)?;
    merge::validate(&meta, changes, now_ms)?;
    let mut stored: HashMap<RecordKey, (DbVersion, StoredRecord)> = HashMap::new();
    for key in merge::records_of(changes) {
        if let Some((version, state)) = read::row(&tx, &record_key(&key.0, &key.1))? {
            stored.insert(key, (version, StoredRecord::decode(&state, version)?));
        }
    }
    let issuers = if merge::touches_devices(changes) {
        devices::issuers(sync_log::registry(&tx)?.as_ref())
    } else {
        shoal_core::devices::Issuers::NoOwner
    };
    let plan = merge::plan_merge(&meta, changes, &stored, &issuers);
    if plan.rows.is_empty() && cursor.is_none() {
        return Ok(Merged::default());
    }
    for row in &plan.rows {
        put_row(
            &tx,
            &record_key(&row.collection, &row.id),
            row.version,
            &row.record.encode(),
        )?;
    }
    // Stored, unlike a local write's: a merged row's clocks may be older
    // than the clock, which is then kept only here (head.rs).
    let changed = plan.meta != meta;
    if changed {
        put_meta(&tx, &plan.meta)?;
    }
    if let Some(cursor) = cursor {
        cursors::save(&tx, peer, cursor)?;
    }
    tx.commit()?;
    if changed {
        head.committed(plan.meta);
    }
    Ok(Merged {
        report: plan.report,
        rows: plan.rows,
    })
}
