//! The library's error type, as application code sees it.
//!
//! It owns the translation of store and core errors into the cases an
//! application handles; it adds no behaviour.

use shoal_core::{CollectionName, CoreError, RecordId};
use shoal_store::StoreError;
use thiserror::Error;

/// Why a Shoal operation failed. A failed write changes nothing.
#[derive(Debug, Error)]
pub enum Error {
    /// The record is absent or deleted (for patch, delete and map-entry removal).
    #[error("record {collection}/{id} not found")]
    NotFound {
        /// The collection.
        collection: CollectionName,
        /// The record id.
        id: RecordId,
    },
    /// A create found the record alive (see [`Collection::create`](crate::Collection::create)).
    #[error("record {collection}/{id} already exists")]
    Exists {
        /// The collection.
        collection: CollectionName,
        /// The record id.
        id: RecordId,
    },
    /// The input broke a rule: bad collection name, record id, field name, a
    /// non-object body, or a value over the size cap.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// A typed value could not be converted to or from JSON.
    #[error("cannot convert record {id} of {collection}: {source}")]
    Serde {
        /// The collection.
        collection: CollectionName,
        /// The record id.
        id: String,
        /// What serde reported.
        source: serde_json::Error,
    },
    /// The network layer refused (cannot listen, cannot dial, node stopped).
    #[error(transparent)]
    Net(#[from] shoal_net::NetError),
    /// A blob could not be fetched on demand: no connected peer has it, or
    /// it is still fetching when the wait ran out.
    #[error(transparent)]
    BlobUnavailable(#[from] shoal_net::DemandError),
    /// The database refused: corrupt or foreign file, I/O error, bad query.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(core) => Error::Invalid(core),
            other => Error::Store(other),
        }
    }
}
