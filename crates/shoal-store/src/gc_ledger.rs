//! The collected ledger's rows (`collected`, schema step 8): what it holds
//! of one record, whether it holds anything, and taking a record out when it
//! has a row again. Merges and local writes read it through
//! `rows::load_for_merge`; the collection pass that fills it is `gc.rs`'s.
//!
//! It owns these three statements only and decides nothing.

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::gc::Held;
use shoal_core::{Clock, Hlc, Life, SiteId};

/// What the ledger holds of a record (`Held::Unknown` if nothing).
pub(crate) fn ledger_entry(conn: &Connection, cid: i64, rid: &str) -> Result<Held, StoreError> {
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached("SELECT life, hlc, site FROM collected WHERE cid = ?1 AND rid = ?2")?
        .query_row(params![cid, rid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match row {
        Some((life, hlc, site)) => Held::Collected {
            life: Life(life as u64),
            clock: Clock {
                hlc: Hlc::from_packed(hlc as u64),
                site: SiteId(site as u64),
            },
        },
        None => Held::Unknown,
    })
}

/// Whether the ledger holds anything (when not, merges skip looking).
pub(crate) fn ledger_in_use(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM collected)")?
        .query_row([], |r| r.get(0))?)
}

/// Takes a record out of the ledger (it has a row again).
pub(crate) fn unledger(conn: &Connection, cid: i64, rid: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM collected WHERE cid = ?1 AND rid = ?2")?
        .execute(params![cid, rid])?;
    Ok(())
}
