//! The puller half of a [`Session`]: asking for the peer's changes from the
//! persisted cursor, accepting bounded chunks and contiguous pushes, and
//! advancing the cursor only as the driver reports them applied.
//!
//! At most one catch-up request is outstanding; a push that does not continue
//! exactly from the cursor falls back to catch-up (and is counted).

use super::action::Action;
use super::message::{Batch, Message, Rejection};
use super::session::{Pending, Session};
use crate::change::SyncCursor;

impl Session {
    /// Whether a catch-up (request or chunk being applied) is under way.
    pub fn catching_up(&self) -> bool {
        self.request.is_some()
            || self
                .applying
                .iter()
                .any(|(_, p)| matches!(p, Pending::Chunk { .. }))
    }

    /// Asks the peer for its changes now (unless a catch-up is already under way).
    pub fn resync(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_authenticated() && !self.catching_up() && !self.catch_up_held {
            self.request_catch_up(now_ms, &mut out);
        }
        out
    }

    pub(super) fn request_catch_up(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if self.request.is_some() {
            return;
        }
        let after = self.expected;
        self.request = Some((after, now_ms));
        self.stats.catchups += 1;
        self.next_resync_ms = now_ms + self.config.resync_interval_ms;
        let (max_changes, max_bytes) = (self.config.max_changes, self.config.max_bytes);
        self.send(
            Message::CatchUp {
                after,
                max_changes,
                max_bytes,
            },
            out,
        );
    }

    pub(super) fn on_chunk(&mut self, batch: Batch, now_ms: u64, out: &mut Vec<Action>) {
        match self.request {
            Some((asked, _)) if asked == batch.after => {}
            _ => return self.close(Rejection::ProtocolViolation, true, out),
        }
        if !batch.is_well_ordered() {
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        self.request = None;
        let more = batch.more;
        if more {
            // Pipeline: ask for the next chunk *before* this one is applied
            // (actions run in order), continuing from the cursor this chunk
            // leads to. At most one request is outstanding and two chunks held.
            self.expected = batch.next_cursor();
            self.request_catch_up(now_ms, out);
        }
        self.accept(batch, Pending::Chunk { more }, out);
    }

    pub(super) fn on_push(&mut self, batch: Batch, now_ms: u64, out: &mut Vec<Action>) {
        if self.request.is_some() {
            // The outstanding catch-up's answer covers these changes.
            self.stats.pushes_ignored += 1;
            return;
        }
        if batch.after != self.expected {
            self.stats.gaps += 1;
            return self.request_catch_up(now_ms, out);
        }
        if !batch.is_well_ordered() {
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        self.accept(batch, Pending::Push, out);
    }

    fn accept(&mut self, batch: Batch, kind: Pending, out: &mut Vec<Action>) {
        self.stats.changes_in += batch.changes.len() as u64;
        let cursor = batch.next_cursor();
        self.expected = cursor;
        self.remote_head = self.remote_head.max(batch.upto);
        self.applying.push_back((cursor, kind));
        out.push(Action::Apply {
            changes: batch.changes,
            cursor,
        });
    }

    /// The driver applied the changes of an [`Action::Apply`] and persisted `cursor`.
    pub fn applied(&mut self, cursor: SyncCursor) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        let Some((expected, kind)) = self.applying.pop_front() else {
            return out;
        };
        debug_assert_eq!(expected, cursor, "applies are reported in order");
        self.cursor = cursor;
        self.send(Message::Ack { cursor }, &mut out);
        match kind {
            // The next request went out when this chunk arrived.
            Pending::Chunk { more: true } | Pending::Push => {}
            Pending::Chunk { more: false } => out.push(Action::CaughtUp { cursor }),
        }
        out
    }

    /// The driver could not apply an [`Action::Apply`] (e.g. the store refused
    /// the changes); the cursor stays where it was and the session ends.
    pub fn apply_failed(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.close(Rejection::Unapplicable, true, &mut out);
        out
    }
}
