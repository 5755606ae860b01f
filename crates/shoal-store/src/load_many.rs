//! Loading every record a merged batch touches with one statement per
//! collection, instead of one look-up per record: [`load_many`].
//!
//! What a record loads as is exactly what `rows::load_for_merge` gives it
//! (its row; else, with the ledger in use, the tombstone the ledger keeps;
//! else nothing). This module reads only; it decides nothing and writes
//! nothing.

use crate::error::StoreError;
use crate::kept::KeptStatements;
use crate::rows::{self, StoredSlots};
use rusqlite::{Connection, params};
use shoal_core::RecordId;

/// Ids sent to SQLite per statement (a JSON array read by `json_each`):
/// bounds the text built for one statement whatever the batch.
const IDS_PER_STATEMENT: usize = 4096;

/// The rows of a list of ids, each with its id's index in the list
/// (`json_each`'s `key`), so that a row goes to its place without a look-up
/// by id. CROSS JOIN keeps the id list as the outer loop, so each id is one
/// primary-key look-up: with a plain JOIN the planner (which knows nothing
/// of json_each's size) scanned every record for each id in a
/// 100,000-record catch-up (557 s instead of about 2 s; a query-plan test
/// on a small table could not reproduce the choice).
const LOAD: &str = "SELECT j.key, r.slots, r.digest, r.refs, r.missing
     FROM json_each(?2) j CROSS JOIN records r ON r.cid = ?1 AND r.rid = j.value";

/// The stored state of each of `ids` in collection `cid`, as
/// `rows::load_for_merge` loads it, in the order of `ids`: an id with
/// nothing stored loads as empty ([`StoredSlots::default`]).
pub(crate) fn load_many(
    conn: &Connection,
    kept: &KeptStatements,
    cid: i64,
    ids: &[&RecordId],
    ledger_in_use: bool,
) -> Result<Vec<StoredSlots>, StoreError> {
    let mut found: Vec<Option<StoredSlots>> = ids.iter().map(|_| None).collect();
    let mut stmt = conn.prepare_cached(LOAD)?;
    for (part_index, part) in ids.chunks(IDS_PER_STATEMENT).enumerate() {
        let list: Vec<&str> = part.iter().map(|id| id.as_str()).collect();
        // Ids are plain text: a JSON array of strings cannot fail to encode.
        let json = serde_json::to_string(&list).unwrap_or_default();
        let mut rows = stmt.query(params![cid, json])?;
        while let Some(row) = rows.next()? {
            let key: i64 = row.get(0)?;
            let slot = usize::try_from(key)
                .ok()
                .filter(|index| *index < part.len())
                .and_then(|index| found.get_mut(part_index * IDS_PER_STATEMENT + index))
                .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, key))?;
            *slot = Some(rows::stored_from_row(
                row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?,
                row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?,
                row.get(3)?,
                row.get(4)?,
            )?);
        }
    }
    found
        .into_iter()
        .zip(ids)
        .map(|(stored, id)| match stored {
            Some(stored) => Ok(stored),
            // Only records without a row can be in the ledger.
            None if ledger_in_use => rows::load_for_merge(conn, kept, cid, id, true),
            None => Ok(StoredSlots::default()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreConfig, WriteOp};
    use rusqlite::StatementStatus;
    use shoal_core::gc::Held;
    use shoal_core::{CollectionName, Intent};

    #[test]
    fn loading_a_few_records_compiles_no_statement_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db"), StoreConfig::default()).unwrap();
        let notes = CollectionName::new("notes").unwrap();
        let ids: Vec<RecordId> = (0..3)
            .map(|i| RecordId::new(format!("n{i}")).unwrap())
            .collect();
        let ops = ids.iter().map(|id| WriteOp {
            collection: notes.clone(),
            id: id.clone(),
            intent: Intent::Put(serde_json::json!({"t": 1}).as_object().unwrap().clone()),
        });
        store.write(ops).unwrap();
        let cid = rows::collection_id(&store.db.conn, &notes, false)
            .unwrap()
            .unwrap();
        let absent = RecordId::new("absent").unwrap();
        let reprepared = || -> i32 {
            [
                LOAD,
                "SELECT slots, digest, refs, missing FROM records WHERE cid = ?1 AND rid = ?2",
            ]
            .iter()
            .map(|sql| {
                store
                    .db
                    .conn
                    .prepare_cached(sql)
                    .unwrap()
                    .get_status(StatementStatus::RePrepare)
            })
            .sum()
        };
        let before = reprepared();
        // A live push brings one record, a small batch a few: each is a
        // look-up, and a look-up must not make SQLite compile its statement
        // again (the statement with json_each did, on every run).
        for round in 0..20 {
            let some: Vec<&RecordId> = ids.iter().take(1 + round % 3).chain([&absent]).collect();
            let found = load_many(&store.db.conn, &store.db.kept, cid, &some, false).unwrap();
            let held: Vec<bool> = found.iter().map(|s| s.held == Held::Row).collect();
            let mut want = vec![true; some.len() - 1];
            want.push(false);
            assert_eq!(held, want, "every stored record, in order, and no other");
        }
        assert_eq!(reprepared(), before, "a statement was compiled again");
    }
}
