//! The federation requests a session carries besides catch-up and pushes:
//! listing shared collections, reconciliation walks, fetching records' full
//! state and offering one. Each is a [`Request`] answered by one [`Response`]
//! under the same request id.
//!
//! This module owns the shapes only; `requests.rs` tracks them in a session,
//! and the store answers them.

use crate::change::{Change, LogPosition, SyncCursor};
use crate::ids::{CollectionName, RecordId};
use crate::recon::{Entry, Item, ShortFingerprint, StateDigest};
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

/// Most bytes of record state one [`Response::Records`] or one part of an
/// [`Request::Offer`] carries (about; the first change always goes), far
/// under the frame cap: a record bigger than this travels in parts.
pub const MAX_PART_BYTES: usize = 4 * 1024 * 1024;

/// Most records one [`Response::Filtered`] lists.
pub const MAX_FILTERED_ITEMS: usize = 1024;

/// Most records the responder reads to answer one [`Request::Filtered`]
/// (matching or not): a selective filter over a big collection is answered
/// in several pages, each bounded in work as well as in size.
pub const MAX_FILTERED_SCAN: usize = 4096;

/// Where one record's state was cut between two messages (a record bigger
/// than one answer travels in parts): its first `slots` stored slots, in
/// slot order, were sent, as the record stood at `position` in the sender's
/// log. A record rewritten since has moved to a later position, and is then
/// sent again from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCut {
    /// The record's log position when the part was read.
    pub position: LogPosition,
    /// How many of its stored slots were sent (at least one).
    pub slots: u32,
}

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
        /// Continuing the first id, whose earlier part a previous answer
        /// carried ([`Response::Records`] `cut`): send the rest of it.
        resume: Option<RecordCut>,
    },
    /// "Merge this part of a record's full state" (push of one record; a
    /// record bigger than one message is offered in several parts, in slot order).
    Offer {
        /// The collection.
        collection: CollectionName,
        /// The record.
        id: RecordId,
        /// Slot versions of the record (all of them, or this part's).
        changes: Vec<Change>,
        /// On the last part: the digest of the whole state offered, which the
        /// responder compares its record with once merged. `None`: more parts follow.
        whole: Option<StateDigest>,
    },
    /// "I now send you this collection (a rule of mine started allowing
    /// it): level it with me" — what my catch-up left out while the rule
    /// held it back is behind your cursor, and only a reconciliation that
    /// you start finds it.
    Level {
        /// The collection.
        collection: CollectionName,
    },
    /// Feature `filtered-report`: "list, in id order after `after`, the
    /// records of this collection your filter for me admits, with their
    /// digests" — the integrity report of a collection the requester takes
    /// only part of (`docs/partial.md`). Answered by [`Response::Filtered`].
    Filtered {
        /// The collection (one the requester declared a filter for).
        collection: CollectionName,
        /// List ids strictly after this one (`None`: from the first).
        after: Option<RecordId>,
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
            Request::Filtered { .. } => "filtered",
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
        /// Every slot version of each record found (grouped by record, in
        /// request order, each in slot order, with its log position here).
        changes: Vec<Change>,
        /// Ids the responder has never seen.
        missing: Vec<RecordId>,
        /// `Some` when the last record's changes stop part-way: ask again,
        /// starting with that record and this as the `resume`.
        cut: Option<RecordCut>,
    },
    /// Answers [`Request::Offer`].
    Offered {
        /// Whether merging (this part) changed the responder's record.
        changed: bool,
        /// On the last part: whether the responder's record now holds exactly
        /// the offered state (false: it held newer state the offer lacked).
        in_sync: bool,
    },
    /// Answers [`Request::Level`]: the responder receives the collection
    /// from the requester and has started (or queued) levelling with it.
    Levelling,
    /// Answers [`Request::Filtered`]: one page of the admitted records.
    Filtered {
        /// The admitted records with ids in `(after, next]` (or after
        /// `after` to the end when `next` is `None`), in id order, at most
        /// [`MAX_FILTERED_ITEMS`]; each with the digest and flags its
        /// reconciliation tree holds (deleted records are never admitted).
        items: Vec<Item>,
        /// The last id this page covers (read, admitted or not); `None`:
        /// the listing is complete.
        next: Option<RecordId>,
    },
    /// The request was not served.
    Refused(Refusal),
}
