//! The one error type of the pure core: every way an input can be invalid.
//!
//! It owns validation failures only; storage and network errors live in their
//! own crates and wrap this one.

use thiserror::Error;

/// Why a name, id, value or change was refused by the core.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    /// A collection name outside the rules (1–64 bytes of `[A-Za-z0-9_-]`, starting with a letter).
    #[error("invalid collection name {name:?}: {reason}")]
    InvalidCollectionName {
        /// The name as given.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A record id outside the rules (1–128 bytes of `[A-Za-z0-9._:-]`).
    #[error("invalid record id {id:?}: {reason}")]
    InvalidRecordId {
        /// The id as given.
        id: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A field name outside the rules (1–128 bytes, no control characters).
    #[error("invalid field name {name:?}: {reason}")]
    InvalidFieldName {
        /// The name as given.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A map-entry key longer than 128 bytes.
    #[error("map key of {len} bytes is longer than 128 bytes")]
    InvalidMapKey {
        /// The key's length in bytes.
        len: usize,
    },
    /// A record body that is not a JSON object.
    #[error("a record must be a JSON object, got {got}")]
    NotAnObject {
        /// The JSON type that was given instead.
        got: &'static str,
    },
    /// Text that is not valid JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A value larger than the configured cap.
    #[error("value of {size} bytes exceeds the cap of {cap} bytes")]
    ValueTooLarge {
        /// Encoded size of the value.
        size: usize,
        /// The configured cap.
        cap: usize,
    },
    /// A local write that would grow a record's stored state — every slot
    /// version, the tombstones of removed fields and map entries included —
    /// past the configured cap.
    #[error(
        "the record's stored state would be {size} bytes (tombstones of removed fields and map entries included), over the cap of {cap} bytes; delete and re-create the record to clear its tombstones"
    )]
    RecordTooLarge {
        /// Packed size of the state the write would leave.
        size: usize,
        /// The configured cap.
        cap: usize,
    },
    /// A clock further ahead of local wall time than the allowed drift.
    #[error(
        "clock {wall_ms} ms is {ahead_ms} ms ahead of local time (max drift {max_drift_ms} ms)"
    )]
    ClockTooFarAhead {
        /// The wall part of the offending clock.
        wall_ms: u64,
        /// How far ahead of local wall time it is.
        ahead_ms: u64,
        /// The allowed drift.
        max_drift_ms: u64,
    },
    /// A patch, delete or entry removal on a record that is not alive.
    #[error("record not found")]
    RecordNotFound,
    /// A create of a record that is alive.
    #[error("record already exists")]
    RecordExists,
    /// A write that would start a life past [`Life::MAX`](crate::Life::MAX)
    /// (only reachable from a peer's change at the bound).
    #[error("the record cannot be re-created: its life is at the limit")]
    LifeExhausted,
    /// A change whose parts contradict each other (e.g. a field written in a deleted life).
    #[error("malformed change for {collection}/{id}: {reason}")]
    MalformedChange {
        /// Collection of the change.
        collection: String,
        /// Record id of the change.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
