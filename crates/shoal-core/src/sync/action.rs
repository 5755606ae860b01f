//! What a sync session asks of its driver: the [`Action`]s it returns, to be
//! performed in order, and why it asks for local reads ([`ReadPurpose`]).
//!
//! It owns these output types only; when and why a session emits each is
//! `session.rs`'s and its handlers' (`pull.rs`, `serve.rs`, …).

use super::federation::{Request, RequestId, Response};
use super::message::Rejection;
use crate::change::{Change, SyncCursor};

/// Which local reads a session asks the driver for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPurpose {
    /// To answer the peer's catch-up request.
    Serve,
    /// To push local commits live.
    Push,
}

/// What the driver must do.
///
/// Actions must be performed first-in first-out: those returned while
/// performing one are queued *after* the ones already pending. Frames are
/// sealed with consecutive sequence numbers when the action is created, so a
/// driver that sends them out of order breaks the session (the peer rejects
/// the frame as [`Rejection::BadMac`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this frame to the connection.
    Send(Vec<u8>),
    /// Read local changes after the cursor `after` (at most `max_changes`,
    /// about `max_bytes`), then call [`Session::changes_read`](crate::sync::Session::changes_read).
    ReadChanges {
        /// Why.
        purpose: ReadPurpose,
        /// Read after this cursor.
        after: SyncCursor,
        /// Most changes.
        max_changes: u32,
        /// About this many encoded bytes at most.
        max_bytes: u32,
    },
    /// Merge these changes from the peer and persist `cursor` as the peer's
    /// cursor in the same transaction, then call [`Session::applied`](crate::sync::Session::applied) (or
    /// [`Session::apply_failed`](crate::sync::Session::apply_failed)).
    Apply {
        /// The changes, in the peer's log order.
        changes: Vec<Change>,
        /// The cursor to persist with them.
        cursor: SyncCursor,
    },
    /// The peer proved membership; data may flow.
    Authenticated,
    /// A catch-up finished: everything the peer had when it answered is applied.
    CaughtUp {
        /// The cursor now persisted.
        cursor: SyncCursor,
    },
    /// Answer the peer's federation request from the local store, then call
    /// [`Session::respond`](crate::sync::Session::respond) with the same id.
    Serve {
        /// The request's id.
        id: RequestId,
        /// What the peer asks.
        request: Request,
    },
    /// The peer answered one of our requests ([`Session::request`](crate::sync::Session::request)).
    Answer {
        /// The request's id.
        id: RequestId,
        /// The peer's answer.
        response: Response,
    },
    /// One of our requests went unanswered for the request timeout.
    Unanswered {
        /// The request's id.
        id: RequestId,
    },
    /// The peer declared the records it takes (a partial replica; empty:
    /// all): check them on every path that sends it a record, from now on.
    PeerFilters {
        /// The peer's filters, parsed and bounded.
        filters: crate::partial::PartialFilters,
    },
    /// The peer says these records left this node's filters: drop them
    /// locally, without a delete or any log entry.
    Leave {
        /// The records.
        records: Vec<(crate::ids::CollectionName, crate::ids::RecordId)>,
    },
    /// Close the connection (after sending any frames before this action).
    Close {
        /// Why.
        reason: Rejection,
        /// Whether the peer refused us (true) or we refused the peer (false).
        by_peer: bool,
    },
}
