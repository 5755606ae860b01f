//! The wire layout of the changes a message carries, per the session's
//! agreed features: [`ChangeLayout`].
//!
//! A [`Change`]'s own encoding is the protocol-2 one: every field but
//! `pred`. With [`Feature::Predecessors`] agreed, a message that carries
//! changes (a catch-up chunk, a push, an offer, a fetch's records) is
//! followed, after its last byte, by the list of their `pred`s in order
//! (`Vec<Option<Clock>>`, postcard) — the *pred tail*; a message without
//! changes has none. Without the feature (a protocol-2 peer, or one that
//! does not offer it) no tail is sent, any bytes after the message are
//! ignored as protocol-2 builds ignore them, and every change received gets
//! [`UNKNOWN_PRED`]: its writer's history is unknown, so the conflict rule
//! reports no conflict against it (a missed journal entry, never a bogus
//! one; `conflict.rs`).
//!
//! With [`Feature::GroupedChanges`] agreed as well, such a message is sent
//! with an empty list of changes, followed by its changes in the
//! record-grouped encoding (`grouped.rs`: collection, id, position and
//! clocks once per record instead of once per slot, `pred`s included).
//!
//! This module owns only that layout; framing and MACs are `codec.rs`'s,
//! which calls it, and the choice of layout is the session's (`session.rs`).

use super::federation::{Request, Response};
use super::frame_error::FrameError;
use super::message::{Batch, Message};
use super::version::{Agreed, Feature};
use crate::change::Change;
use crate::clock::Clock;
use crate::conflict::UNKNOWN_PRED;

/// How the changes of a message travel in one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeLayout {
    /// The protocol-2 layout: no `pred` on the wire; received changes get
    /// [`UNKNOWN_PRED`]. Used until the hellos are settled and whenever
    /// [`Feature::Predecessors`] is not agreed.
    Protocol2,
    /// The message is followed by the `pred` of each change it carries.
    WithPredecessors,
    /// The message's changes travel after it, grouped by record
    /// (`grouped.rs`), with their `pred`s; its own list of them is empty.
    Grouped,
}

impl ChangeLayout {
    /// The layout a session uses once (if) the hellos agreed on `agreed`.
    pub fn agreed(agreed: Option<&Agreed>) -> Self {
        match agreed {
            Some(a) if a.has(Feature::Predecessors) && a.has(Feature::GroupedChanges) => {
                ChangeLayout::Grouped
            }
            Some(a) if a.has(Feature::Predecessors) => ChangeLayout::WithPredecessors,
            _ => ChangeLayout::Protocol2,
        }
    }

    /// The body of `message` in this layout: its postcard encoding (without
    /// its changes when grouped) and the tail the layout adds.
    pub(super) fn body(self, message: &Message) -> Vec<u8> {
        // Encoding into a Vec cannot fail for these types.
        let mut body = match (self, hollow(message)) {
            (ChangeLayout::Grouped, Some(hollow)) => postcard::to_allocvec(&hollow),
            _ => postcard::to_allocvec(message),
        }
        .unwrap_or_default();
        self.append_tail(message, &mut body);
        body
    }

    /// Appends the tail `message` needs in this layout to its encoded `body`.
    fn append_tail(self, message: &Message, body: &mut Vec<u8>) {
        let Some(changes) = changes(message) else {
            return;
        };
        match self {
            ChangeLayout::Protocol2 => {}
            ChangeLayout::Grouped => super::grouped::encode(changes, body),
            ChangeLayout::WithPredecessors => {
                let preds: Vec<Option<Clock>> = changes.iter().map(|c| c.pred).collect();
                // Encoding into a Vec cannot fail for these types.
                if let Ok(tail) = postcard::to_allocvec(&preds) {
                    body.extend_from_slice(&tail);
                }
            }
        }
    }

    /// Gives the changes of a decoded `message` their `pred`s from `rest`,
    /// the bytes after it (grouped: the changes themselves). Errors: with
    /// predecessors, a message carrying changes whose tail is missing,
    /// unreadable, of another length, or followed by more bytes; grouped,
    /// also a message whose own list of changes is not empty.
    pub(super) fn read_tail(self, message: &mut Message, rest: &[u8]) -> Result<(), FrameError> {
        let Some(changes) = changes_mut(message) else {
            return Ok(());
        };
        match self {
            ChangeLayout::Protocol2 => {
                for change in changes {
                    change.pred = Some(UNKNOWN_PRED);
                }
            }
            ChangeLayout::Grouped => {
                if !changes.is_empty() {
                    return Err(FrameError::Garbage(
                        "changes inside a message whose changes travel grouped".into(),
                    ));
                }
                let (grouped, after) = super::grouped::decode(rest)?;
                if !after.is_empty() {
                    return Err(FrameError::Garbage(
                        "grouped changes followed by stray bytes".into(),
                    ));
                }
                *changes = grouped;
            }
            ChangeLayout::WithPredecessors => {
                let garbage = |why: &str| FrameError::Garbage(format!("predecessor tail {why}"));
                let (preds, after) = postcard::take_from_bytes::<Vec<Option<Clock>>>(rest)
                    .map_err(|e| garbage(&format!("unreadable: {e}")))?;
                if preds.len() != changes.len() {
                    return Err(garbage(&format!(
                        "names {} changes for {}",
                        preds.len(),
                        changes.len()
                    )));
                }
                if !after.is_empty() {
                    return Err(garbage("followed by stray bytes"));
                }
                for (change, pred) in changes.iter_mut().zip(preds) {
                    change.pred = pred;
                }
            }
        }
        Ok(())
    }
}

/// The changes `message` carries, if it is of a kind that carries them.
fn changes(message: &Message) -> Option<&Vec<Change>> {
    match message {
        Message::Chunk(batch) | Message::Push(batch) => Some(&batch.changes),
        Message::Request {
            body: Request::Offer { changes, .. },
            ..
        }
        | Message::Response {
            body: Response::Records { changes, .. },
            ..
        } => Some(changes),
        Message::Hello { .. }
        | Message::Pake { .. }
        | Message::Proof { .. }
        | Message::Rejected { .. }
        | Message::CatchUp { .. }
        | Message::Ack { .. }
        | Message::About { .. }
        | Message::Filters { .. }
        | Message::Leave { .. }
        | Message::Request { .. }
        | Message::Response { .. } => None,
    }
}

/// A copy of `message` without its changes, if it is of a kind that
/// carries them (every other part is small).
fn hollow(message: &Message) -> Option<Message> {
    let body = match message {
        Message::Chunk(batch) => Message::Chunk(empty_batch(batch)),
        Message::Push(batch) => Message::Push(empty_batch(batch)),
        Message::Request {
            id,
            body:
                Request::Offer {
                    collection,
                    id: record,
                    whole,
                    ..
                },
        } => Message::Request {
            id: *id,
            body: Request::Offer {
                collection: collection.clone(),
                id: record.clone(),
                changes: Vec::new(),
                whole: *whole,
            },
        },
        Message::Response {
            id,
            body: Response::Records { missing, cut, .. },
        } => Message::Response {
            id: *id,
            body: Response::Records {
                changes: Vec::new(),
                missing: missing.clone(),
                cut: *cut,
            },
        },
        Message::Hello { .. }
        | Message::Pake { .. }
        | Message::Proof { .. }
        | Message::Rejected { .. }
        | Message::CatchUp { .. }
        | Message::Ack { .. }
        | Message::About { .. }
        | Message::Filters { .. }
        | Message::Leave { .. }
        | Message::Request { .. }
        | Message::Response { .. } => return None,
    };
    Some(body)
}

/// `batch` without its changes.
fn empty_batch(batch: &Batch) -> Batch {
    Batch {
        after: batch.after,
        changes: Vec::new(),
        upto: batch.upto,
        partial: batch.partial,
        more: batch.more,
    }
}

/// [`changes`], mutably.
fn changes_mut(message: &mut Message) -> Option<&mut Vec<Change>> {
    match message {
        Message::Chunk(batch) | Message::Push(batch) => Some(&mut batch.changes),
        Message::Request {
            body: Request::Offer { changes, .. },
            ..
        }
        | Message::Response {
            body: Response::Records { changes, .. },
            ..
        } => Some(changes),
        Message::Hello { .. }
        | Message::Pake { .. }
        | Message::Proof { .. }
        | Message::Rejected { .. }
        | Message::CatchUp { .. }
        | Message::Ack { .. }
        | Message::About { .. }
        | Message::Filters { .. }
        | Message::Leave { .. }
        | Message::Request { .. }
        | Message::Response { .. } => None,
    }
}
