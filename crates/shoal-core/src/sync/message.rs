//! The sync protocol's messages: one versioned enum, so every message type is
//! handled exhaustively wherever messages are matched.
//!
//! This module owns the message shapes only; framing, MACs and size caps are
//! `codec.rs`'s, and what to do on each message is `session.rs`'s.

use super::federation::{Request, RequestId, Response};
use super::version::HelloTail;
use crate::change::{Change, LogPosition, SyncCursor};
use crate::ids::{CollectionName, RecordId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a peer refused us, or we refused it. Sent in [`Message::Rejected`]
/// before the connection is closed, so neither side waits for a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rejection {
    /// The membership proof did not verify: the peer does not hold the group secret.
    WrongSecret,
    /// A message failed its MAC check.
    BadMac,
    /// The peer speaks a protocol version we do not.
    UnsupportedVersion,
    /// A message arrived that the protocol does not allow at this point.
    ProtocolViolation,
    /// A frame could not be decoded.
    Garbage,
    /// A frame was larger than the cap.
    TooLarge,
    /// The peer did not answer within the request timeout.
    Timeout,
    /// The changes a peer sent could not be applied here (e.g. invalid or from the far future).
    Unapplicable,
    /// The peer holds the group secret but no admission of the group's
    /// owner counts for it: its request waits for approval (issue 19).
    NotAdmitted,
    /// The peer's admission was revoked (issue 19).
    Revoked,
}

impl Rejection {
    /// Whether it means the peer is not (or does not behave as) a member —
    /// every reason but a timeout, which a live member can cause too.
    /// Native nodes and browser tabs count rejected peers by it.
    pub fn is_membership_failure(self) -> bool {
        match self {
            Rejection::WrongSecret
            | Rejection::BadMac
            | Rejection::UnsupportedVersion
            | Rejection::ProtocolViolation
            | Rejection::Garbage
            | Rejection::TooLarge
            | Rejection::Unapplicable
            | Rejection::NotAdmitted
            | Rejection::Revoked => true,
            Rejection::Timeout => false,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::WrongSecret => "wrong group secret",
            Rejection::BadMac => "message failed authentication",
            Rejection::UnsupportedVersion => "unsupported protocol version",
            Rejection::ProtocolViolation => "protocol violation",
            Rejection::Garbage => "undecodable frame",
            Rejection::TooLarge => "frame too large",
            Rejection::Timeout => "timed out",
            Rejection::Unapplicable => "changes could not be applied",
            Rejection::NotAdmitted => "not admitted: waiting for the owner's approval",
            Rejection::Revoked => "device revoked",
        })
    }
}

/// Every message of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message each side sends: the hello version, a fresh nonce and
    /// (since protocol 3) the sender's offer (see `version.rs`).
    Hello {
        /// Always [`super::version::HELLO_VERSION`] (2) since protocol 2.
        version: u32,
        /// 32 random bytes, used once.
        nonce: [u8; 32],
        /// The sender's protocol version and features; absent from protocol-2 builds.
        tail: HelloTail,
    },
    /// Second message each side sends, right after its hello: its SPAKE2
    /// message under the group key (reveals nothing a guess can be tested on).
    Pake {
        /// The sender's PAKE message (33 bytes for SPAKE2 on Ed25519).
        message: Vec<u8>,
    },
    /// Key confirmation: proof of holding the group secret, keyed by the PAKE
    /// output and bound to both peer ids, both nonces and both PAKE messages.
    /// The dialer sends it first; the listener only after checking it.
    Proof {
        /// Keyed BLAKE3 under the session secret, by role.
        mac: [u8; 32],
    },
    /// The sender refuses the session and closes it.
    Rejected {
        /// Why.
        reason: Rejection,
    },
    /// "Send me your changes after `after`", at most this many and about this many bytes.
    CatchUp {
        /// The requester's cursor in the responder's log.
        after: SyncCursor,
        /// Most changes in the reply.
        max_changes: u32,
        /// Most encoded bytes of changes in the reply (at least one change is
        /// always sent; a record bigger than this comes in parts).
        max_bytes: u32,
    },
    /// One bounded chunk of a catch-up, answering [`Message::CatchUp`].
    Chunk(Batch),
    /// Live changes, continuing exactly from the cursor the last chunk or push left.
    Push(Batch),
    /// "I have applied your changes up to `cursor`" — flow control and lag reporting.
    Ack {
        /// The receiver's cursor in the sender's log.
        cursor: SyncCursor,
    },
    /// A federation request (reconciliation, fetch, offer), answered by a
    /// [`Message::Response`] with the same id.
    Request {
        /// Chosen by the requester, unique within the session.
        id: RequestId,
        /// What is asked.
        body: Request,
    },
    /// The answer to a [`Message::Request`].
    Response {
        /// The request's id.
        id: RequestId,
        /// The answer.
        body: Response,
    },
    /// Feature [`super::version::Feature::About`]: the Shoal build the
    /// sender runs, sent once after authentication.
    About {
        /// E.g. "Shoal 0.1.0" (at most [`super::version::MAX_SOFTWARE_LEN`] bytes are kept).
        software: String,
    },
    /// Feature [`super::version::Feature::PartialReplica`]: the records
    /// the sender takes, per collection (empty: all), sent once right
    /// after authentication and before anything is asked; the receiver
    /// checks them on every path that sends the sender a record.
    Filters {
        /// (collection, filter text) pairs; see `crate::partial`.
        filters: Vec<(CollectionName, String)>,
    },
    /// Feature [`super::version::Feature::PartialReplica`]: these records,
    /// which the receiver may hold, no longer match its filters: it drops
    /// them locally (never as a delete). Sent just before the chunk or push
    /// read with them.
    Leave {
        /// The records, at most [`MAX_LEAVE`].
        records: Vec<(CollectionName, RecordId)>,
    },
}

/// Most records one [`Message::Leave`] names.
pub const MAX_LEAVE: usize = 65_536;

/// Changes read from the sender's log, as carried by a chunk or a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The cursor these changes continue from.
    pub after: SyncCursor,
    /// The changes, in log order (slots of one record share its position).
    pub changes: Vec<Change>,
    /// Where the read stopped: the last record's position if `more`, else the end of the log.
    pub upto: LogPosition,
    /// `Some(n)` when the read stopped inside the record at `upto`, after its
    /// first `n` stored slots: the rest of it follows (only with `more`).
    pub partial: Option<u32>,
    /// Whether more changes follow right now.
    pub more: bool,
}

impl Batch {
    /// The receiver's cursor once these changes are applied.
    pub fn next_cursor(&self) -> SyncCursor {
        self.after
            .advance_within(self.upto, self.partial, self.more)
    }

    /// Positions after the cursor (or at it, continuing a record read in
    /// part), non-decreasing, none beyond `upto`; a cut only inside a record
    /// with more to come; and a batch with more to come moves the cursor.
    pub fn is_well_ordered(&self) -> bool {
        let start = self.after.position;
        let continuing = self.after.partial.is_some();
        let mut last = start;
        for change in &self.changes {
            let before_start = change.position < start || (change.position == start && !continuing);
            if change.position < last || before_start {
                return false;
            }
            last = change.position;
        }
        let cut_ok = match self.partial {
            None => true,
            Some(n) => self.more && n > 0,
        };
        let moves = !self.more || self.next_cursor().reach() > self.after.reach();
        cut_ok && moves && last <= self.upto && start <= self.upto
    }
}

impl Message {
    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::About { .. } => "about",
            Message::Pake { .. } => "pake",
            Message::Proof { .. } => "proof",
            Message::Rejected { .. } => "rejected",
            Message::CatchUp { .. } => "catch-up",
            Message::Chunk(_) => "chunk",
            Message::Push(_) => "push",
            Message::Ack { .. } => "ack",
            Message::Request { .. } => "request",
            Message::Response { .. } => "response",
            Message::Filters { .. } => "filters",
            Message::Leave { .. } => "leave",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{DbVersion, Slot};
    use crate::clock::{Clock, Hlc, Life};
    use crate::ids::SiteId;

    fn at(version: u64, seq: u32) -> LogPosition {
        LogPosition {
            version: DbVersion(version),
            seq,
        }
    }

    fn life_at(position: LogPosition) -> Change {
        Change {
            collection: CollectionName::new("c").unwrap(),
            id: RecordId::new("r").unwrap(),
            slot: Slot::Life,
            value: None,
            clock: Clock {
                hlc: Hlc::from_packed(1),
                site: SiteId(1),
            },
            life: Life(1),
            position,
            pred: None,
        }
    }

    #[test]
    fn a_cut_batch_must_continue_its_record_and_move_the_cursor() {
        let start = SyncCursor::complete(DbVersion(1));
        let cut = Batch {
            after: start,
            changes: vec![life_at(at(2, 1))],
            upto: at(2, 1),
            partial: Some(1),
            more: true,
        };
        assert!(cut.is_well_ordered());
        let inside = cut.next_cursor();
        // The rest of the record comes at the same position.
        let rest = Batch {
            after: inside,
            changes: vec![life_at(at(2, 1))],
            upto: at(2, 1),
            partial: Some(2),
            more: true,
        };
        assert!(rest.is_well_ordered());
        // ...but not from a cursor that had the record whole.
        let whole = Batch {
            after: start.advance(at(2, 1), true),
            ..rest.clone()
        };
        assert!(!whole.is_well_ordered());
        // A batch with more to come that does not move is refused, as is a
        // cut at the end of the log.
        let stuck = Batch {
            partial: Some(1),
            ..rest.clone()
        };
        assert!(!stuck.is_well_ordered());
        let cut_at_end = Batch {
            more: false,
            ..rest
        };
        assert!(!cut_at_end.is_well_ordered());
    }
}
