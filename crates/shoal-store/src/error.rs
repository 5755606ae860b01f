//! The store's error type: every way opening, writing or reading can fail.
//!
//! It owns the mapping from SQLite's failure codes to named errors (corrupt,
//! foreign, busy) so callers never have to inspect SQLite codes themselves.

use shoal_core::CoreError;
use std::path::PathBuf;
use thiserror::Error;

/// Why a store operation failed. Nothing is changed when one is returned.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The input was refused by the core rules (bad name, id, value, clock or change).
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// The database file does not exist and the store was opened without `create_if_missing`.
    #[error("database {path} does not exist")]
    Missing {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not a SQLite database, or its pages are damaged.
    #[error("database {path} is corrupt or not a database: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The file is a SQLite database that belongs to another application.
    #[error(
        "database {path} is not a Shoal database (application id {application_id:#x}, {tables} tables)"
    )]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Its SQLite application id.
        application_id: i64,
        /// How many tables it has.
        tables: i64,
    },
    /// The file was written by a newer Shoal (its schema version is past the
    /// last migration this build knows). It is refused before anything is
    /// written to it.
    #[error(
        "database {path} was written by a newer Shoal (schema version {found}; this Shoal reads up to {supported}): upgrade Shoal to open it; the file was not changed"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },
    /// The file has a schema version older than the first migration (made by
    /// a development build before the format settled). It is not changed.
    #[error(
        "database {path} has schema version {found}, from before Shoal's format settled (the oldest this Shoal upgrades is {oldest}): export its records with the build that made it"
    )]
    ObsoleteSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found.
        found: i64,
        /// The oldest version this build upgrades.
        oldest: i64,
    },
    /// The collection is not shared with that peer in that direction.
    #[error("collection {collection} is not shared with that peer")]
    NotShared {
        /// The collection.
        collection: String,
    },
    /// A partial-replica filter that does not parse (or too many of them).
    #[error("{0}")]
    BadFilter(#[from] shoal_core::partial::FiltersError),
    /// The stored node key could not be decoded.
    #[error("stored node key is unreadable: {0}")]
    BadNodeKey(String),
    /// A query that cannot be run (e.g. a field name that cannot be used as a JSON path).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A file of the blob directory could not be read or written.
    #[error("blob file {path}: {detail}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed, and the system's reason.
        detail: String,
    },
    /// A blob larger than the configured cap.
    #[error("blob of {size} bytes or more exceeds the cap of {cap} bytes")]
    BlobTooLarge {
        /// Bytes seen when the cap was passed (or the blob's size).
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// A peer's changes whose clocks are too far ahead would be held back
    /// (see `held.rs`), but the table of held changes is full: the batch is
    /// refused whole, and the peer's session ends with the refusal.
    #[error(
        "{held} changes with clocks too far ahead are already held back{} (at most {max}); \
         refusing more until local time catches up or the drift bound is raised",
        if *.per_peer { " from this peer" } else { "" }
    )]
    HeldFull {
        /// Changes held now (from this peer, if `per_peer`).
        held: u64,
        /// The bound.
        max: u64,
        /// Whether the bound is the one peer's share rather than the table's.
        per_peer: bool,
    },
    /// Another fetch (in this process or another one sharing the blob
    /// directory) holds the claim on this blob's partial file; nothing was
    /// touched. Try again once it has finished or failed.
    #[error("blob {hash} is being fetched already")]
    BlobBusy {
        /// The blob (hex).
        hash: String,
    },
    /// A file that should hold a blob does not hash to the blob's name: a
    /// finished fetch re-hashed before placing, or a held blob re-hashed by
    /// the scrub. The bad bytes are never placed (or are moved aside).
    #[error("blob {hash} does not match its hash: {detail}")]
    BlobMismatch {
        /// The blob (hex).
        hash: String,
        /// What differed (size or hash).
        detail: String,
    },
    /// A record field holds a malformed blob reference.
    #[error("bad blob reference: {0}")]
    BadBlobRef(String),
    /// A local write would leave a record that does not validate against
    /// the JSON Schema declared for its collection on this node.
    #[error(
        "record {collection}/{id} does not match the schema of data version {version}: {message}"
    )]
    SchemaViolation {
        /// The collection.
        collection: String,
        /// The record.
        id: String,
        /// The declared data version.
        version: u32,
        /// The schema's messages (up to three), each with where it failed.
        message: String,
    },
    /// A declaration that cannot be used: not a JSON Schema, version 0, or
    /// older than the declared one.
    #[error("schema for collection {collection}: {detail}")]
    BadSchema {
        /// The collection.
        collection: String,
        /// What is wrong.
        detail: String,
    },
    /// A local write to a record a newer app wrote (its data version is
    /// above the one declared here). The record is kept as it is.
    #[error(
        "record {collection}/{id} was written by data version {record} of its app; this node's app declares {declared}: upgrade the app before changing it (the record is kept as it is)"
    )]
    NewerDataVersion {
        /// The collection.
        collection: String,
        /// The record.
        id: String,
        /// The record's data version.
        record: u64,
        /// The version declared here.
        declared: u32,
    },
    /// A local write to a collection this device is admitted read-only for
    /// (issue 19). Nothing is written.
    #[error(
        "this device is read-only for collection {collection}: local writes are refused (the group's owner sets roles with `shoal devices role`)"
    )]
    ReadOnlyDevice {
        /// The collection.
        collection: String,
    },
    /// A write to the reserved devices collection other than through the
    /// device commands (issue 19).
    #[error("collection {collection} is reserved for device admissions; use `shoal devices`")]
    ReservedCollection {
        /// The collection.
        collection: String,
    },
    /// A device statement could not be issued (no owner key here, not
    /// allowed, or bad input).
    #[error("devices: {0}")]
    Devices(String),
    /// A call made [without waiting](crate::Store::without_waiting) that
    /// would have had to: its commit would copy the write-ahead log into the
    /// database (a checkpoint due in the write). Nothing was done.
    #[error("the call would have to wait: {reason}")]
    WouldWait {
        /// What it would have waited for.
        reason: &'static str,
    },
    /// The change log holds no more versions: a write would take db_version
    /// `version`, past the last one a log position can hold (2^43 − 1, see
    /// `log_pos.rs`). Nothing was written.
    #[error(
        "the change log is full: a write would take db_version {version}, past the last one it can hold"
    )]
    LogFull {
        /// The version the write would have taken.
        version: u64,
    },
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

impl StoreError {
    pub(crate) fn from_sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, DatabaseCorrupt | NotADatabase) =>
            {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// Whether the call changed nothing because it would have had to wait:
    /// the database file locked by another connection (SQLite's busy or
    /// locked — at once under [`Store::without_waiting`](crate::Store::without_waiting),
    /// else after the configured wait) or [`StoreError::WouldWait`]. It can
    /// be made again.
    pub fn is_busy(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match self {
            StoreError::WouldWait { .. } => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                matches!(f.code, DatabaseBusy | DatabaseLocked)
            }
            _ => false,
        }
    }

    /// Whether SQLite refused a value as bigger than it stores (its
    /// `SQLITE_TOOBIG`): the data's doing, not the file's.
    pub fn is_too_big(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::TooBig
        )
    }

    /// Names `path` in a corruption error that does not name its file yet.
    pub fn with_path(self, path: &std::path::Path) -> Self {
        match self {
            StoreError::Corrupt { path: p, detail } if p.as_os_str().is_empty() => {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail,
                }
            }
            other => other,
        }
    }
}

/// Conversion for `?` inside the store; the file is named afterwards by
/// [`StoreError::with_path`] (every public entry point of an open store is
/// reached through a caller that knows the path, and `Store::open` does it itself).
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::from_sqlite(std::path::Path::new(""), e)
    }
}
