//! Reads of the SQLite store: a record, a page of a collection, a stored
//! row by key, the rows of a key range. It never writes.

use crate::error::WebError;
use crate::keys::{id_of_key, record_key};
use crate::page::{Page, listing_range};
use crate::row::decode_state;
use crate::sql::sql_error;
use rusqlite::{Connection, OptionalExtension};
use shoal_core::{CollectionName, DbVersion, RecordId};

/// The stored row of `key`: its version and state text. A row whose
/// columns do not read as such (altered outside Shoal) is
/// [`WebError::Corrupt`], as on IndexedDB; SQLite's own failures are not.
pub fn row(conn: &Connection, key: &str) -> Result<Option<(DbVersion, String)>, WebError> {
    conn.prepare_cached("SELECT v, s FROM records WHERE k = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((DbVersion(r.get::<_, i64>(0)? as u64), r.get(1)?))
            })
            .optional()
        })
        .map_err(|error| match error {
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => {
                WebError::Corrupt(format!("the row of {key} does not read: {error}"))
            }
            other => sql_error(other),
        })
}

/// The record's JSON text, `None` if it does not exist or is deleted.
pub fn get(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
) -> Result<Option<String>, WebError> {
    match row(conn, &record_key(collection, id))? {
        Some((_, state)) => Ok(decode_state(&state)?.render_json()),
        None => Ok(None),
    }
}

/// The rows whose key is in `[lower, upper)` (`(lower, upper)` when
/// `lower_open`), in key order, at most `limit`: key, version, state.
pub fn range(
    conn: &Connection,
    (lower, lower_open, upper): (&str, bool, &str),
    limit: u32,
) -> Result<Vec<(String, DbVersion, String)>, WebError> {
    let sql = if lower_open {
        "SELECT k, v, s FROM records WHERE k > ?1 AND k < ?2 ORDER BY k LIMIT ?3"
    } else {
        "SELECT k, v, s FROM records WHERE k >= ?1 AND k < ?2 ORDER BY k LIMIT ?3"
    };
    let mut statement = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = statement
        .query_map((lower, upper, limit), |r| {
            Ok((r.get(0)?, DbVersion(r.get::<_, i64>(1)? as u64), r.get(2)?))
        })
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Up to `limit` live records whose id starts with `prefix`, after
/// `after` (`Page::from_rows`: tombstones count toward the rows read).
pub fn list(
    conn: &Connection,
    collection: &CollectionName,
    prefix: &str,
    after: Option<&RecordId>,
    limit: u32,
) -> Result<Page, WebError> {
    let Some((lower, lower_open, upper)) = listing_range(collection, prefix, after, limit)? else {
        return Ok(Page::default());
    };
    let rows = range(conn, (&lower, lower_open, &upper), limit + 1)?;
    Page::from_rows(
        rows.into_iter()
            .map(|(key, _, state)| (id_of_key(&key).unwrap_or_default().to_string(), state)),
        limit,
    )
}
