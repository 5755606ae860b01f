//! Recognising a database file at open — is it Shoal's, and can this build
//! read it — before anything is written to it, then handing it to the
//! migrations.
//!
//! This module owns the open-time checks only (and telling a caller,
//! before an open, the upgrade it would run); the schema's tables and
//! their history are the steps in `migrations/`, and reading and writing
//! rows belongs to `rows.rs`.

use crate::error::StoreError;
use crate::migrations::{self, APPLICATION_ID, MIGRATIONS, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};
use rusqlite::Connection;
use std::path::Path;

/// Checks that `conn` is a Shoal database this build can read and brings its
/// schema up to date (creating it in an empty file), or explains why not. A
/// file that is refused is not written to.
pub fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, e);
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sqlite)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(sqlite)?;
    let fresh = application_id == 0 && version == 0 && tables == 0;
    if !fresh {
        refuse_unreadable(path, application_id, version, tables)?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
    }
    let (_, now) = migrations::upgrade(conn, MIGRATIONS, fresh).map_err(|e| e.with_path(path))?;
    // Another process may have upgraded the file with a newer build between
    // the checks above and the migration's write lock.
    refuse_unreadable(path, APPLICATION_ID, now, 1)
}

/// An upgrade opening a file will run: its schema versions and how many
/// record rows it holds (step 13 rewrites every one, about 4 s per
/// million). For a caller to say so before a long open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingUpgrade {
    /// The file's schema version.
    pub from: i64,
    /// This build's schema version.
    pub to: i64,
    /// Record rows (live and deleted) in the file.
    pub records: u64,
}

/// The upgrade opening the database at `path` would run, if any; read
/// only. `None` for a missing file, one up to date, and one an open would
/// refuse (another application's, too old or too new: the open says why).
pub fn pending_upgrade(path: &Path) -> Result<Option<PendingUpgrade>, StoreError> {
    if !path.try_exists().map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })? {
        return Ok(None);
    }
    let sqlite = |e| StoreError::from_sqlite(path, e);
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    let (application_id, from): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id),
                    (SELECT user_version FROM pragma_user_version)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sqlite)?;
    if application_id != APPLICATION_ID || !(OLDEST_SCHEMA_VERSION..SCHEMA_VERSION).contains(&from)
    {
        return Ok(None);
    }
    let records: i64 = conn
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .map_err(sqlite)?;
    Ok(Some(PendingUpgrade {
        from,
        to: SCHEMA_VERSION,
        records: records.max(0) as u64,
    }))
}

/// Refuses a file of another application, or with a schema version this
/// build cannot read (older than the first step, or newer than the last).
fn refuse_unreadable(
    path: &Path,
    application_id: i64,
    version: i64,
    tables: i64,
) -> Result<(), StoreError> {
    if application_id != APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            application_id,
            tables,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < OLDEST_SCHEMA_VERSION {
        return Err(StoreError::ObsoleteSchema {
            path: path.to_path_buf(),
            found: version,
            oldest: OLDEST_SCHEMA_VERSION,
        });
    }
    Ok(())
}
