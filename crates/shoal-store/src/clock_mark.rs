//! The clock mark: the highest clock this store used or observed, kept in
//! `meta` under `hlc` by the transactions after which the clocks of the
//! log's last transaction may be lower than that — a merge of a peer's
//! changes (its clocks may be older than ours), tombstone collection and a
//! partial replica's drop (both remove rows, maybe the newest). Opening
//! restores the clock from the higher of the mark and the last
//! transaction's clocks (`Store::restored_head`), so a clock once issued or
//! seen is never issued again after a restart.
//!
//! It owns the mark's key and encoding; when to write it is the callers'.

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension};
use shoal_core::Hlc;

/// Stores `hlc` as the mark (inside the caller's transaction).
pub(crate) fn save(conn: &Connection, hlc: Hlc) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('hlc', ?1)")?
        .execute([hlc.packed().to_be_bytes().to_vec()])?;
    Ok(())
}

/// The stored mark (the zero clock when none was stored).
pub(crate) fn load(conn: &Connection) -> Result<Hlc, StoreError> {
    let mark: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'hlc'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(Hlc::from_packed(
        mark.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes),
    ))
}
