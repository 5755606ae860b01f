//! The federation requests a session carries besides catch-up and pushes:
//! listing shared collections, reconciliation walks, fetching records' full
//! state and offering one. Each is a [`Request`] answered by one [`Response`]
//! under the same request id.
//!
//! This module owns the shapes only; `requests.rs` tracks them in a session,
//! and the store answers them.

use crate::change::{Change, SyncCursor};
use crate::ids::{CollectionName, RecordId};
use crate::recon::{Entry, ShortFingerprint};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies a request within one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u32);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Most record ids one [`Request::Fetch`] may name.
pub const MAX_FETCH_IDS: usize = 1024;

/// A federation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// "Which collections do you send me, and what is the end of your log?"
    Collections,
    /// One step of a reconciliation walk over a collection.
    Reconcile {
        /// The collection.
        collection: CollectionName,
        /// The walk's entries (see `recon`).
        entries: Vec<Entry>,
    },
    /// "Send me the full state of these records."
    Fetch {
        /// The collection.
        collection: CollectionName,
        /// At most [`MAX_FETCH_IDS`] ids.
        ids: Vec<RecordId>,
    },
    /// "Merge this record's full state" (push of one record).
    Offer {
        /// The collection.
        collection: CollectionName,
        /// The record.
        id: RecordId,
        /// Every slot version of the record.
        changes: Vec<Change>,
    },
    /// "I now send you this collection (a rule of mine started allowing
    /// it): level it with me" — what my catch-up left out while the rule
    /// held it back is behind your cursor, and only a reconciliation that
    /// you start finds it.
    Level {
        /// The collection.
        collection: CollectionName,
    },
}

/// Bytes a request or response takes encoded (its payload, before framing).
pub fn encoded_len<T: Serialize>(value: &T) -> u64 {
    postcard::to_allocvec(value).map_or(0, |v| v.len() as u64)
}

impl Request {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Collections => "collections",
            Request::Reconcile { .. } => "reconcile",
            Request::Fetch { .. } => "fetch",
            Request::Offer { .. } => "offer",
            Request::Level { .. } => "level",
        }
    }
}

/// A collection as [`Response::Collections`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedCollection {
    /// Its name.
    pub name: CollectionName,
    /// The root fingerprint of its reconciliation tree.
    pub root: ShortFingerprint,
    /// How many records (live or deleted) it holds.
    pub records: u64,
}

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// The collection is not shared with the requester in that direction.
    NotShared,
    /// The request was malformed (e.g. too many ids, a record other than the one named).
    BadRequest,
    /// The responder could not read or write its store.
    Failed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotShared => "not shared with you",
            Refusal::BadRequest => "bad request",
            Refusal::Failed => "the peer could not serve it",
        })
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answers [`Request::Collections`].
    Collections {
        /// The responder's log end when it answered, as a complete cursor.
        head: SyncCursor,
        /// The collections it sends to the requester.
        collections: Vec<SharedCollection>,
    },
    /// Answers [`Request::Reconcile`].
    Reconcile {
        /// The answering entries.
        entries: Vec<Entry>,
        /// How many of the request's entries these answer (the rest are to be sent again).
        answered: u32,
    },
    /// Answers [`Request::Fetch`].
    Records {
        /// Every slot version of each record found (grouped by record, in request order).
        changes: Vec<Change>,
        /// Ids the responder has never seen.
        missing: Vec<RecordId>,
    },
    /// Answers [`Request::Offer`].
    Offered {
        /// Whether merging changed the responder's record.
        changed: bool,
        /// Whether the responder's record now holds exactly the offered state
        /// (false: it held newer state the offer lacked).
        in_sync: bool,
    },
    /// Answers [`Request::Level`]: the responder receives the collection
    /// from the requester and has started (or queued) levelling with it.
    Levelling,
    /// The request was not served.
    Refused(Refusal),
}
