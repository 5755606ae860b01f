//! The SQLite store's node metadata as its transactions use it ([`Head`]):
//! read once — the stored metadata, with the log's head and the clock
//! raised to those of the last row written — and then kept in memory
//! between transactions (one owner holds the store, its Web Lock, on one
//! worker thread).
//!
//! A local write stores no metadata, as on native nodes: its rows carry
//! its log positions and clocks, the newest row the newest of both (every
//! local write's clock is above every clock issued or seen before it), so a
//! put's commit writes one page fewer. A merge of a peer's changes still
//! stores it: the merged rows' clocks may be older than one seen here, and
//! the stored clock is then the mark that keeps a clock once seen from
//! being issued again after a restart (native Shoal's `clock_mark.rs`).
//! Should the newest row's state not read (altered outside Shoal), the
//! clock is the highest of every row that does (one pass over the table,
//! only then): the clocks of the writes before it are still above all
//! those issued earlier.
//!
//! It owns this derivation and the copy in memory; what changes the
//! metadata, and when it is stored, is the transactions'.

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::row::decode_state;
use crate::sql::meta_rows::node_meta;
use crate::sql::sql_error;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use shoal_core::{DbVersion, Hlc};
use std::cell::RefCell;

/// The node metadata for the next transaction, once known.
#[derive(Default)]
pub struct Head {
    known: RefCell<Option<NodeMeta>>,
}

impl Head {
    /// The metadata as of the last commit: derived from the database on
    /// first use ([`derive`]), then the copy the commits left.
    pub fn get(&self, conn: &Connection) -> Result<NodeMeta, WebError> {
        if let Some(meta) = self.known.borrow().as_ref() {
            return Ok(meta.clone());
        }
        let meta = derive(conn)?;
        *self.known.borrow_mut() = Some(meta.clone());
        Ok(meta)
    }

    /// A transaction that used [`Head::get`]'s metadata committed, leaving
    /// it as `meta`.
    pub fn committed(&self, meta: NodeMeta) {
        *self.known.borrow_mut() = Some(meta);
    }

    /// The stored metadata was replaced by other means (a store moved in):
    /// the next [`Head::get`] derives it again.
    pub fn forget(&self) {
        self.known.borrow_mut().take();
    }
}

/// The stored metadata with its log head and clock raised to the newest
/// row's: its version, and the highest clock in its state.
pub fn derive(conn: &Connection) -> Result<NodeMeta, WebError> {
    let mut meta = node_meta(conn)?;
    // Integers sort before text in SQLite: a version altered into text
    // outside Shoal must not hide the newest row (that row's own writes
    // are refused, read.rs).
    let newest: Option<(i64, Option<Hlc>)> = conn
        .prepare_cached(
            "SELECT v, s FROM records WHERE typeof(v) = 'integer' ORDER BY v DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([], |r| Ok((r.get(0)?, clock_of(r.get_ref(1)?))))
                .optional()
        })
        .map_err(sql_error)?;
    if let Some((version, clock)) = newest {
        meta.version = meta.version.max(DbVersion(version as u64));
        // Its clock lost: the highest of every row that reads.
        let clock = match clock {
            Some(clock) => Some(clock),
            None => highest_clock(conn)?,
        };
        if let Some(hlc) = clock {
            meta.hlc = meta.hlc.max(hlc);
        }
    }
    Ok(meta)
}

/// The highest clock in any record row whose state reads: one pass over
/// the table, made only when the newest row's state does not read.
fn highest_clock(conn: &Connection) -> Result<Option<Hlc>, WebError> {
    let mut statement = conn
        .prepare_cached("SELECT s FROM records")
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    let mut highest = None;
    while let Some(row) = rows.next().map_err(sql_error)? {
        highest = highest.max(row.get_ref(0).ok().and_then(clock_of));
    }
    Ok(highest)
}

/// The highest clock in a row's state column; `None` when it does not
/// read as a state (altered outside Shoal).
fn clock_of(state: ValueRef<'_>) -> Option<Hlc> {
    let state = decode_state(state.as_str().ok()?).ok()?;
    state.max_clock().map(|clock| clock.hlc)
}
