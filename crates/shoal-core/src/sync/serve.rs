//! The server half of a [`Session`]: answering the peer's catch-up requests
//! from the local log, then pushing local commits live, each push continuing
//! exactly from the cursor the previous chunk or push left the peer at.
//!
//! Back-pressure, not loss: at most `max_unacked` pushes are in flight, and no
//! push is sent while a catch-up is being served.
//!
//! A push read that finds nothing for the peer — the commits since were only
//! merges of the peer's own changes (its echo), or in collections it does not
//! receive — is not sent at once: an empty push would only move the peer's
//! cursor, and the peer pays a write transaction to persist it. The session
//! keeps it as *quiet* and treats the log as pushed up to there; the next
//! push continues from the last cursor sent (its read skips the same echo
//! again), and a quiet batch still unsent at the next [`Session::tick`] goes
//! then, so the peer's persisted cursor keeps up within a tick.

use super::action::{Action, ReadPurpose};
use super::message::{Batch, Message, Rejection};
use super::session::Session;
use crate::change::{DbVersion, LogRead, SyncCursor};

impl Session {
    pub(super) fn on_catch_up(
        &mut self,
        after: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
        out: &mut Vec<Action>,
    ) {
        if self.serving {
            // One catch-up at a time: the next request may only follow our chunk.
            return self.close(Rejection::ProtocolViolation, true, out);
        }
        self.serving = true;
        // No live pushes until this catch-up has reached the end of our log.
        self.pushed = None;
        self.quiet = None;
        self.note_acked(after);
        out.push(Action::ReadChanges {
            purpose: ReadPurpose::Serve,
            after,
            max_changes: max_changes.clamp(1, self.config.max_changes),
            max_bytes: max_bytes.clamp(1, self.config.max_bytes),
        });
    }

    pub(super) fn on_ack(&mut self, cursor: SyncCursor, out: &mut Vec<Action>) {
        self.note_acked(cursor);
        while self
            .in_flight
            .front()
            .is_some_and(|(c, _)| c.reach() <= cursor.reach())
        {
            self.in_flight.pop_front();
        }
        self.maybe_push(out);
    }

    fn note_acked(&mut self, cursor: SyncCursor) {
        let newer = self.peer_acked.is_none_or(|a| cursor.reach() >= a.reach());
        if newer {
            self.peer_acked = Some(cursor);
        }
    }

    /// The driver read local changes for an [`Action::ReadChanges`] after
    /// `after`: the changes, where the read stopped (the last record's
    /// position when more remain — inside it if cut — else the end of the
    /// log at the time of the read), and whether more remain.
    pub fn changes_read(
        &mut self,
        purpose: ReadPurpose,
        after: SyncCursor,
        read: LogRead,
        now_ms: u64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        let LogRead {
            changes,
            upto,
            partial,
            more,
            leaves,
            // The shell's business (noted as held back before this call).
            held_back: _,
        } = read;
        self.local_head = self.local_head.max(upto.version);
        let batch = Batch {
            after,
            changes,
            upto,
            partial: partial.filter(|_| more),
            more,
        };
        match purpose {
            ReadPurpose::Serve => {
                self.serving = false;
                self.send_leaves(leaves, &mut out);
                let next = batch.next_cursor();
                self.send(Message::Chunk(batch), &mut out);
                if !more {
                    // The peer is now current: live pushes continue from here.
                    self.pushed = Some(next);
                    self.quiet = None;
                    self.in_flight.clear();
                    self.maybe_push(&mut out);
                }
            }
            ReadPurpose::Push => {
                self.push_reading = false;
                if self.serving || self.pushed != Some(after) {
                    // A catch-up request overtook this read; it covers these changes.
                    return out;
                }
                if batch.changes.is_empty() && !batch.more && leaves.is_empty() {
                    // Nothing for the peer: hold it back (see the module docs).
                    self.quiet = Some(batch);
                    return out;
                }
                self.quiet = None;
                self.send_leaves(leaves, &mut out);
                self.send_push(batch, now_ms, &mut out);
                self.maybe_push(&mut out);
            }
        }
        out
    }

    fn send_push(&mut self, batch: Batch, now_ms: u64, out: &mut Vec<Action>) {
        let next = batch.next_cursor();
        self.send(Message::Push(batch), out);
        self.in_flight.push_back((next, now_ms));
        self.pushed = Some(next);
    }

    /// Sends the quiet batch held back (see the module docs), if it still
    /// continues from the last cursor sent and there is room for it.
    pub(super) fn send_quiet(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let sendable = self.is_authenticated()
            && !self.serving
            && !self.push_reading
            && self.in_flight.len() < self.config.max_unacked;
        if !sendable {
            return;
        }
        if let Some(batch) = self.quiet.take()
            && self.pushed == Some(batch.after)
        {
            self.send_push(batch, now_ms, out);
        }
    }

    /// The local store committed; its log now ends at version `head`.
    pub fn local_committed(&mut self, head: DbVersion) -> Vec<Action> {
        let mut out = Vec::new();
        self.local_head = self.local_head.max(head);
        self.maybe_push(&mut out);
        out
    }

    fn maybe_push(&mut self, out: &mut Vec<Action>) {
        let Some(pushed) = self.pushed else { return };
        let current = pushed == SyncCursor::complete(pushed.base) && pushed.base >= self.local_head;
        // A read found nothing for the peer up to here: nothing to push yet.
        let quiet = self
            .quiet
            .as_ref()
            .is_some_and(|q| q.after == pushed && q.upto.version >= self.local_head);
        if !self.is_authenticated()
            || self.serving
            || self.push_reading
            || self.in_flight.len() >= self.config.max_unacked
            || current
            || quiet
        {
            return;
        }
        self.push_reading = true;
        out.push(Action::ReadChanges {
            purpose: ReadPurpose::Push,
            after: pushed,
            max_changes: self.config.max_changes,
            max_bytes: self.config.max_bytes,
        });
    }
}
