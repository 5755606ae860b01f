//! Schema step 3: each record's state digest (16 bytes of BLAKE3 over its
//! full merged state, for reconciliation), computed for existing records,
//! and the sharing-rule tables.
//!
//! Version 3 files also had a `records.rkey` column with an index; step 4
//! removes both, so this step does not add them (step 4 drops them only
//! where present). Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const SHARING: &str = "
-- Per (peer, collection): none / send / receive / both. Unset means both.
CREATE TABLE IF NOT EXISTS sharing (
    peer TEXT NOT NULL,
    collection TEXT NOT NULL,
    mode TEXT NOT NULL,
    PRIMARY KEY (peer, collection)
) WITHOUT ROWID;
-- Collections that never leave this node.
CREATE TABLE IF NOT EXISTS local_only (collection TEXT PRIMARY KEY) WITHOUT ROWID;
";

/// Adds the digest column, fills it for records that lack one (in pages
/// of 1000, so a large file is never read into memory whole) and the
/// sharing tables.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::add_column(tx, "records", "digest", "BLOB NOT NULL DEFAULT x''")?;
    let mut after = (i64::MIN, String::new());
    loop {
        let page: Vec<(i64, String, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT cid, rid, slots FROM records
                 WHERE (cid, rid) > (?1, ?2) AND length(digest) = 0
                 ORDER BY cid, rid LIMIT 1000",
            )?
            .query_map(rusqlite::params![after.0, after.1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some((cid, rid, _)) = page.last() else {
            break;
        };
        after = (*cid, rid.clone());
        let mut update =
            tx.prepare_cached("UPDATE records SET digest = ?3 WHERE cid = ?1 AND rid = ?2")?;
        for (cid, rid, slots) in page {
            let id = shoal_core::RecordId::new(rid.clone())?;
            let state = crate::rows::unpack(&slots)?.state;
            let digest = shoal_core::recon::StateDigest::of(&id, &state);
            update.execute(rusqlite::params![cid, rid, digest.0.to_vec()])?;
        }
    }
    tx.execute_batch(SHARING)?;
    Ok(())
}
