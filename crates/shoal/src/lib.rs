//! # Shoal
//!
//! A local-first database whose records replicate peer-to-peer. This crate is
//! what applications embed: open a [`Store`], take a [`Collection`] (or a
//! [`TypedCollection`] through serde), put/get/patch/delete/list/query JSON
//! records, and [`subscribe`](Store::subscribe) to changes — local writes and
//! changes merged from peers alike.
//!
//! ```
//! use serde_json::json;
//! let dir = tempfile::tempdir().unwrap();
//! let store = shoal::Store::open(dir.path().join("shoal.db"))?;
//! let tasks = store.collection("tasks")?;
//! tasks.put("t1", json!({"title": "buy milk", "done": false}))?;
//! tasks.patch("t1", json!({"done": true}))?;
//! assert_eq!(tasks.get("t1")?.unwrap()["done"], true);
//! tasks.delete("t1")?;
//! assert!(tasks.get("t1")?.is_none());
//! # Ok::<(), shoal::Error>(())
//! ```
//!
//! Every write is one SQLite transaction covering data, per-field clocks and the
//! change log. Merge semantics (per-field last-writer-wins on hybrid logical
//! clocks, causal-length deletes, map fields) are those of [`shoal_core`].
#![deny(missing_docs)]

mod blobs;
mod collection;
mod commit_watch;
mod data_versions;
pub mod devices;
mod edit;
mod error;
mod events;
mod feeding;
mod gc;
mod node;
mod partial;
mod peer_key;
mod store;
mod typed;
mod wal_watcher;

pub use collection::{Collection, ListOptions};
pub use edit::{Edit, Written};
pub use error::Error;
pub use events::{ChangeEvent, Origin, Subscription, SubscriptionError};
pub use shoal_store::{CollectionSchema, DATA_VERSION_FIELD, DataVersionCheck, data_version_of};
pub use store::{Store, StoreOptions};
pub use typed::{TypedCollection, TypedPage};

pub use shoal_net::{ADDRESS_BOOK_FILE, AGE_OUT_INTERVAL, MAX_INVITE_RELAYS, Reachability};
pub use shoal_net::{
    BlobConfig, BlobState, BlobTotals, BlobTransfer, ConnectionCaps, DURATION_BUCKETS, DemandError,
    DurationHistogram, FedError, GroupKey, GroupKeyError, GroupSalt, HeldChanges,
    HistogramSnapshot, Invite, InviteError, Levelled, Multiaddr, NetError, NetMetrics, Node,
    NodeConfig, PeerId, PeerPath, PeerProtocol, PeerState, PeerStatus, PunchStats, Reconciliation,
    Rejection, RejectionCount, RelayToken, SyncConfig, Traffic, Transfer,
};

pub use shoal_core::blob::{
    BlobError, BlobHash, BlobRef, MissingBlob, OnDemandBlob, PIECE_LEN, pick_evictions, refs_in,
};
pub use shoal_core::gc::{DEFAULT_HORIZON_MS, GcPolicy};
pub use shoal_core::partial::{Filter, FilterError, FiltersError, PartialFilters};
pub use shoal_core::recon::{
    Difference, FilteredCounts, Held, ItemFlags, Outcome, StateDigest, Status, StatusCounts,
};
pub use shoal_core::sync::{
    Feature, FeatureSet, Incompatible, OLDEST_PROTOCOL_VERSION, Offer, PROTOCOL_VERSION, Refusal,
    SharedCollection,
};
pub use shoal_core::{
    ANY_PEER, CanonicalJson, Change, Clock, CollectionName, CoreError, DbVersion, Direction,
    FieldName, Hlc, Life, LogPosition, LogRead, RecordId, RecordState, ShareMode, SharingRules,
    SiteId, Slot, SlotVersion, SyncCursor, derive_id,
};
/// Consistent copies of a database and its blobs (`shoal backup` / `restore`).
pub use shoal_store::backup;
pub use shoal_store::{
    ApplyReport, BlobInfo, CollectionStatus, DEFAULT_MAX_BLOB_BYTES, DEFAULT_MAX_RECORD_BYTES,
    Durability, HeldBack, MAX_QUERY_LIMIT, OnDemand, Order, Page, Query, Record, Scrubbed,
    StoreConfig, StoreError, StoreStatus,
};
pub use shoal_store::{CheckProgress, CheckReport, CheckStage};
pub use shoal_store::{
    ConflictEntry, ConflictQuery, ConflictSide, JournalBounds, JournalledConflict,
    MAX_CONFLICTS_LISTED,
};
pub use shoal_store::{GcProgress, GcReport, TombstoneStatus};
pub use shoal_store::{PendingUpgrade, SCHEMA_VERSION, pending_upgrade};

/// Unix milliseconds now (0 if the clock reads before the epoch): the time
/// of admissions and revocations, and the `now` of a partial filter sweep.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
