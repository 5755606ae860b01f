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
//! This module owns only that layout; framing and MACs are `codec.rs`'s,
//! which calls it, and the choice of layout is the session's (`session.rs`).

use super::codec::FrameError;
use super::federation::{Request, Response};
use super::message::Message;
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
}

impl ChangeLayout {
    /// The layout a session uses once (if) the hellos agreed on `agreed`.
    pub fn agreed(agreed: Option<&Agreed>) -> Self {
        match agreed {
            Some(a) if a.has(Feature::Predecessors) => ChangeLayout::WithPredecessors,
            _ => ChangeLayout::Protocol2,
        }
    }

    /// Appends the tail `message` needs in this layout to its encoded `body`.
    pub(super) fn append_tail(self, message: &Message, body: &mut Vec<u8>) {
        let Some(changes) = changes(message) else {
            return;
        };
        match self {
            ChangeLayout::Protocol2 => {}
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
    /// the bytes after it. Errors: with predecessors, a message carrying
    /// changes whose tail is missing, unreadable, of another length, or
    /// followed by more bytes.
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
