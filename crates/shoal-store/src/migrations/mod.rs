//! Every change of the on-disk schema, as an ordered list of numbered steps,
//! and the runner that brings a file up to date at open.
//!
//! Step `N` takes a file from schema version `N - 1` to `N` (the first step
//! takes an empty file to the base schema). The runner applies every pending
//! step and advances the file's `user_version` **in one transaction**: a
//! crash or an error part-way leaves the file exactly at its old version, and
//! the next open starts again. Every step is idempotent (it checks before it
//! adds or drops), so running one over a file that already has its change
//! changes nothing.
//!
//! Adding a table or a column is three lines: a new file `vN_what.rs` with a
//! `pub(super) fn up(tx: &Transaction) -> Result<(), StoreError>` using
//! `CREATE TABLE IF NOT EXISTS` / [`add_column`], a `mod` line below and one
//! [`Migration`] at the end of [`MIGRATIONS`]. Never edit a released step:
//! files in the field were made by it.
//!
//! This module owns the steps and their order; recognising a file (is it
//! Shoal's, is it newer than this build) belongs to `schema.rs`.

use crate::error::StoreError;
use rusqlite::{Connection, Transaction, TransactionBehavior};

mod v10_partial_replicas;
mod v11_recon_key_states;
mod v12_blobs_on_demand;
pub(crate) mod v13_records_by_position;
mod v2_base;
mod v3_digests_sharing;
mod v4_recon_keys_blobs;
mod v5_bookkeeping;
mod v6_collection_schemas;
mod v7_conflict_journal;
mod v8_tombstone_collection;
mod v9_devices;

/// SQLite `application_id` of a Shoal database: "SHOL". The runner marks a
/// new file with it; `schema.rs` recognises Shoal's files by it.
pub(crate) const APPLICATION_ID: i64 = 0x5348_4F4C;

/// One numbered schema change.
pub(crate) struct Migration {
    /// The schema version the file has once this step ran.
    pub to: i64,
    /// What the step changes (for logs and docs).
    pub what: &'static str,
    /// The change, inside the runner's transaction.
    pub up: fn(&Transaction<'_>) -> Result<(), StoreError>,
}

/// Every schema change, oldest first; `to` counts up by one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 2,
        what: "base schema: meta, collections, records and their change log, peer cursors",
        up: v2_base::up,
    },
    Migration {
        to: 3,
        what: "each record's state digest (reconciliation) and the sharing rules",
        up: v3_digests_sharing::up,
    },
    Migration {
        to: 4,
        what: "reconciliation keys in their own table, the blob index",
        up: v4_recon_keys_blobs::up,
    },
    Migration {
        to: 5,
        what: "held-back changes, levelled sharing rules, saved reconciliation trees",
        up: v5_bookkeeping::up,
    },
    Migration {
        to: 6,
        what: "per-collection data versions and JSON Schemas declared on this node",
        up: v6_collection_schemas::up,
    },
    Migration {
        to: 7,
        what: "the conflict journal: values that lost a merge to a concurrent one",
        up: v7_conflict_journal::up,
    },
    Migration {
        to: 8,
        what: "tombstone collection: the collected ledger, peers' acknowledgements, the tombstone index",
        up: v8_tombstone_collection::up,
    },
    Migration {
        to: 9,
        what: "devices: the pinned owner key and admission requests",
        up: v9_devices::up,
    },
    Migration {
        to: 10,
        what: "partial replicas: own filters, peers' filters, records sent to filtered peers",
        up: v10_partial_replicas::up,
    },
    Migration {
        to: 11,
        what: "each record's digest, life and missing blobs beside its reconciliation key",
        up: v11_recon_key_states::up,
    },
    Migration {
        to: 12,
        what: "blobs on demand: those fetched when opened, their source and last open",
        up: v12_blobs_on_demand::up,
    },
    Migration {
        to: 13,
        what: "records keyed by their log positions, found by (collection, id) through an index",
        up: v13_records_by_position::up,
    },
];

/// The schema version this build writes: that of the last step.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].to;

/// The oldest schema version a file can have and still be upgraded (the
/// version the first step creates; older files came from development builds
/// before the format settled).
pub const OLDEST_SCHEMA_VERSION: i64 = MIGRATIONS[0].to;

/// Brings `conn` from the version it has up to [`SCHEMA_VERSION`] with
/// `steps`, in one immediate transaction; `fresh` runs every step (an empty
/// file). The version is read again under the write lock, so two processes
/// opening an old file at once upgrade it once. Returns the versions the
/// file went through (`from`, `to`).
pub(crate) fn upgrade(
    conn: &mut Connection,
    steps: &[Migration],
    fresh: bool,
) -> Result<(i64, i64), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from: i64 = if fresh {
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if tables == 0 { 0 } else { version }
    } else {
        tx.query_row("PRAGMA user_version", [], |r| r.get(0))?
    };
    let target = steps.last().map_or(from, |s| s.to);
    if from >= target {
        // Up to date, or newer than `steps` (the caller refuses it): nothing
        // is written (the transaction rolls back).
        return Ok((from, from));
    }
    for step in steps.iter().filter(|s| s.to > from) {
        (step.up)(&tx)?;
        tracing::debug!("schema migration to version {}: {}", step.to, step.what);
    }
    if from == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok((from, target))
}

/// Whether `table` has a column named `column`.
pub(crate) fn has_column(tx: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let n: i64 = tx.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Adds `column` (declared `decl`) to `table` unless it is there already.
pub(crate) fn add_column(
    tx: &Connection,
    table: &str,
    column: &str,
    decl: &str,
) -> Result<(), StoreError> {
    if !has_column(tx, table, column)? {
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl};"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
