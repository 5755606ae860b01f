//! Reading the SQLite store's change log for a sync peer: the rows after
//! the cursor through `records_by_version`, in log order, fed to
//! `sync/log_read.rs` until it has enough, with the end of the log from the
//! node metadata (head.rs, as of the last commit: nothing commits in
//! between on the worker's one thread). Also the
//! other reads syncing needs: rows by id (fetch answers), the devices
//! collection. What to take from each row is `sync/log_read.rs`'s.

use crate::error::WebError;
use crate::keys::{page_range, record_key};
use crate::sql::{read, sql_error};
use crate::sync::echo::EchoLog;
use crate::sync::log_read::{LogReader, LogRow, nothing_after};
use rusqlite::{Connection, Row};
use shoal_core::devices::{DEVICES_COLLECTION, Registry};
use shoal_core::{CollectionName, DbVersion, LogRead, RecordId, SyncCursor};

/// A `(k, v, s)` result row as the log reader takes it.
fn log_row(row: &Row<'_>) -> Result<LogRow, WebError> {
    let key: String = row.get(0).map_err(sql_error)?;
    let version = DbVersion(row.get::<_, i64>(1).map_err(sql_error)? as u64);
    let state: String = row.get(2).map_err(sql_error)?;
    let (collection, id) = key
        .split_once('/')
        .ok_or_else(|| WebError::Corrupt(format!("record key {key:?}")))?;
    LogRow::decode(collection, id, version, &state)
}

/// One bounded read for `peer` after `after` (see `sync/log_read.rs`);
/// `echoes` are the versions merged from the peer in this session.
pub fn read_for_peer(
    conn: &Connection,
    head: DbVersion,
    peer: &str,
    after: SyncCursor,
    max_changes: u32,
    max_bytes: u32,
    echoes: &EchoLog,
) -> Result<LogRead, WebError> {
    if after == SyncCursor::complete(after.base) && echoes.covers(peer, after.base, head) {
        return Ok(nothing_after(after, head));
    }
    let mut reader = LogReader::new(after, max_changes, max_bytes, |v| echoes.contains(peer, v));
    if reader.inside_record() {
        let mut at = conn
            .prepare_cached("SELECT k, v, s FROM records WHERE v = ?1 ORDER BY k LIMIT 1")
            .map_err(sql_error)?;
        let mut found = at
            .query([after.position.version.0 as i64])
            .map_err(sql_error)?;
        let row = match found.next().map_err(sql_error)? {
            Some(row) => Some(log_row(row)?),
            None => None,
        };
        reader.resume(row.as_ref());
    }
    let mut later = conn
        .prepare_cached("SELECT k, v, s FROM records WHERE v > ?1 ORDER BY v, k")
        .map_err(sql_error)?;
    let mut rows = later
        .query([reader.after_version().0 as i64])
        .map_err(sql_error)?;
    while reader.wants_more() {
        let Some(row) = rows.next().map_err(sql_error)? else {
            break;
        };
        reader.take(&log_row(row)?);
    }
    Ok(reader.finish(head))
}

/// The rows of these records (`None` for one never seen).
pub fn rows_of(
    conn: &Connection,
    collection: &CollectionName,
    ids: &[RecordId],
) -> Result<Vec<Option<LogRow>>, WebError> {
    ids.iter()
        .map(|id| {
            read::row(conn, &record_key(collection, id))?
                .map(|(version, state)| {
                    LogRow::decode(collection.as_str(), id.as_str(), version, &state)
                })
                .transpose()
        })
        .collect()
}

/// The rows of the tab's copy of the devices collection.
pub fn devices(conn: &Connection) -> Result<Vec<LogRow>, WebError> {
    let collection =
        CollectionName::new(DEVICES_COLLECTION).expect("the devices collection name is valid");
    let (lower, _, upper) = page_range(&collection, "", None);
    read::range(conn, (&lower, false, &upper), u32::MAX)?
        .into_iter()
        .map(|(key, version, state)| {
            let id = crate::keys::id_of_key(&key).unwrap_or_default();
            LogRow::decode(DEVICES_COLLECTION, id, version, &state)
        })
        .collect()
}

/// The device registry of the tab's copy of the devices collection
/// (`sync/devices.rs`).
pub fn registry(conn: &Connection) -> Result<Option<Registry>, WebError> {
    let rows = devices(conn)?;
    Ok(crate::sync::devices::registry_from(
        rows.iter().map(|r| (r.id.as_str(), &r.record)),
    ))
}
