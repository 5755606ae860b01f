//! Finding one record among the peer's without naming it: the lookup a pull
//! or a Sync Details view makes in a collection this node receives from the
//! peer but does not send it (a `receive` rule), where asking for the record
//! by id would tell the peer that this node knows of it.
//!
//! A [`BlindLookup`] asks only what a blind walk asks — "list what you hold
//! under this node" ([`Entry::Items`] with no items) — over the fixed tree of
//! `tree.rs`. It narrows toward the record's key only down to
//! [`LOOKUP_LEVEL`] (each level narrows the range by 16), and only while the
//! peer holds too many records there to list them at once; below that level
//! it asks every node the peer holds something under, as a blind walk does,
//! whatever the record. So what its requests say about the record is at most
//! the top `4 × LOOKUP_LEVEL` bits of its key — nothing at all when the peer
//! holds few enough records to list them in one answer — and never its id,
//! digest or flags: two records with the same key prefix at that level ask
//! the very same requests, whether held here, on the peer, or nowhere. A
//! peer that splits when it should list cannot drive it deeper; it only
//! makes it ask more (bounded by [`ReconLimits::max_round_trips`]).
//!
//! The lookup ends with the peer's listing of the record, if it listed it;
//! the caller may then fetch it by id (an id the peer itself just named).
//! This module never does IO: the caller carries the entries.

use super::step::{Entry, Held, ReconLimits, ask_list};
use super::tree::{FANOUT, Node, ReconKey, ShortFingerprint};
use crate::ids::RecordId;
use std::collections::VecDeque;

/// The deepest tree level a [`BlindLookup`] narrows to toward its record: it
/// reveals at most the top `4 × LOOKUP_LEVEL` bits of the record's key (one
/// of 256 ranges). Below it, the peer lists everything it holds in that range
/// — about 1/256 of the collection — and the record is picked out here.
pub const LOOKUP_LEVEL: u8 = 2;

/// Why a lookup was abandoned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The peer's answers did not let the lookup finish.
    #[error("the lookup did not finish within {0} round trips")]
    TooManyRounds(u32),
    /// The peer answered something other than the nodes asked.
    #[error("{0}")]
    BadAnswer(&'static str),
}

/// Looks for one record among the peer's records of a collection without
/// sending anything about it but a coarse range. See the module docs.
#[derive(Debug)]
pub struct BlindLookup {
    id: RecordId,
    key: ReconKey,
    limits: ReconLimits,
    queue: VecDeque<Node>,
    in_flight: Vec<Node>,
    found: Option<Held>,
    round_trips: u32,
}

impl BlindLookup {
    /// A lookup for record `id`; its first request asks for the list of the
    /// whole collection (the peer splits it if it holds too many records).
    pub fn new(id: RecordId, limits: ReconLimits) -> Self {
        Self {
            key: ReconKey::of(&id),
            id,
            limits,
            queue: VecDeque::from([Node::ROOT]),
            in_flight: Vec::new(),
            found: None,
            round_trips: 0,
        }
    }

    /// The next request to send (entries for a [`respond`](super::respond)er),
    /// or `None` when the lookup is finished.
    pub fn next_request(&mut self) -> Option<Vec<Entry>> {
        if self.queue.is_empty() {
            return None;
        }
        let mut bytes = 0;
        while let Some(&node) = self.queue.front() {
            let size = ask_list(node).wire_size();
            if !self.in_flight.is_empty() && bytes + size > self.limits.max_message_bytes {
                break;
            }
            bytes += size;
            self.in_flight.extend(self.queue.pop_front());
        }
        self.round_trips += 1;
        Some(self.in_flight.iter().copied().map(ask_list).collect())
    }

    /// Takes the peer's answer to the last request: `answered` of its
    /// entries were answered, one reply entry each and in order (the rest
    /// are asked again).
    pub fn receive(&mut self, reply: Vec<Entry>, answered: usize) -> Result<(), LookupError> {
        if answered == 0 || answered > self.in_flight.len() {
            return Err(LookupError::BadAnswer("answered none, or more than asked"));
        }
        if reply.len() != answered {
            return Err(LookupError::BadAnswer("not one answer per node asked"));
        }
        let unanswered = self.in_flight.split_off(answered);
        let asked = std::mem::take(&mut self.in_flight);
        for node in unanswered.into_iter().rev() {
            self.queue.push_front(node);
        }
        for (node, entry) in asked.into_iter().zip(reply) {
            match entry {
                Entry::Items { node: n, items } if n == node => {
                    if node.contains(self.key) {
                        self.found = items.into_iter().find(|i| i.id == self.id).map(|i| Held {
                            digest: i.digest,
                            flags: i.flags,
                        });
                    }
                }
                Entry::Split { node: n, children } if n == node && !node.is_leaf() => {
                    self.narrow(node, &children)
                }
                _ => return Err(LookupError::BadAnswer("an answer about another node")),
            }
        }
        if !self.queue.is_empty() && self.round_trips >= self.limits.max_round_trips {
            return Err(LookupError::TooManyRounds(self.round_trips));
        }
        Ok(())
    }

    /// Queues what to ask about `node`'s children, which the peer split:
    /// above [`LOOKUP_LEVEL`] the child holding the key, below it every
    /// child the peer holds something under.
    fn narrow(&mut self, node: Node, children: &[ShortFingerprint; FANOUT]) {
        let empty = ShortFingerprint::default();
        let held = (0..FANOUT).filter(|&i| children[i] != empty);
        let held = held.filter_map(|i| node.child(i));
        if node.level() < LOOKUP_LEVEL {
            // Only a node on the key's path is ever asked this high up.
            self.queue.extend(held.filter(|c| c.contains(self.key)));
        } else {
            self.queue.extend(held);
        }
    }

    /// Whether nothing remains to ask.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Request–reply exchanges so far.
    pub fn round_trips(&self) -> u32 {
        self.round_trips
    }

    /// Ends the lookup: what the peer listed of the record, `None` if it did
    /// not list it (it does not hold it). Meaningful once
    /// [`is_done`](Self::is_done).
    pub fn finish(self) -> Option<Held> {
        self.found
    }
}
