//! Which blobs a record references: finding the references in its rendered
//! JSON and writing its `blob_refs` rows, in the record's own transaction
//! (`rows.rs` calls both on every save).
//!
//! It owns those two steps only; the rest of the blob index (which blobs are
//! here, the missing counts, collection) is `blob_index.rs`'s. It reads no
//! other table than `blobs` and writes no other than `blob_refs`.

use crate::error::StoreError;
use rusqlite::{Connection, params};
use shoal_core::blob::{BlobRef, refs_in};

/// Substring every record text holding a blob reference contains; records
/// without it are never parsed for references.
const MARKER: &str = "\"$blob\"";

/// The blob references in a record's rendered JSON (`None` when deleted).
/// Local writes are `strict`: a malformed reference is an error. A peer's
/// record with a malformed one is kept, with that reference ignored (and
/// logged), so one bad field cannot stall sync.
pub(crate) fn refs_of_rendered(
    data: Option<&str>,
    strict: bool,
) -> Result<Vec<BlobRef>, StoreError> {
    let Some(text) = data.filter(|t| t.contains(MARKER)) else {
        return Ok(Vec::new());
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        path: Default::default(),
        detail: format!("unparsable rendered record: {e}"),
    })?;
    match refs_in(&value) {
        Ok(refs) => Ok(refs),
        Err(e) if strict => Err(StoreError::BadBlobRef(e.to_string())),
        Err(e) => {
            tracing::warn!("ignoring a malformed blob reference from a peer: {e}");
            Ok(Vec::new())
        }
    }
}

/// Replaces the references of record `(cid, rid)` by `refs`; returns how
/// many of them are absent here.
pub(crate) fn replace_refs(
    tx: &Connection,
    cid: i64,
    rid: &str,
    refs: &[BlobRef],
) -> Result<u32, StoreError> {
    tx.prepare_cached("DELETE FROM blob_refs WHERE cid = ?1 AND rid = ?2")?
        .execute(params![cid, rid])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO blob_refs (hash, cid, rid, size) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut present = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)")?;
    let mut missing = 0;
    for r in refs {
        insert.execute(params![&r.hash.as_bytes()[..], cid, rid, r.size as i64])?;
        let here: bool = present.query_row([&r.hash.as_bytes()[..]], |row| row.get(0))?;
        missing += u32::from(!here);
    }
    Ok(missing)
}
