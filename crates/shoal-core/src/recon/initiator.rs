//! The initiating side of a reconciliation walk ([`Reconciler`]): the queue
//! of entries still to send, the entries in flight, and the outcome, with the
//! comparison of two lists of items into [`Difference`]s.
//!
//! The entries themselves, the responder and the replica's view belong to
//! `step.rs`; this file never does IO either.

use super::step::{
    Difference, Entry, Held, Item, Outcome, ReconError, ReconLimits, ReconView, answer_split,
    ask_list, descend, shorts,
};
use super::tree::{FANOUT, Fingerprint, Node};
use crate::ids::RecordId;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The initiating side of one reconciliation. See the module docs.
#[derive(Debug)]
pub struct Reconciler {
    limits: ReconLimits,
    queue: VecDeque<Queued>,
    in_flight: Vec<Queued>,
    outcome: Outcome,
    /// Send nothing about the local replica (see [`Reconciler::blind`]).
    blind: bool,
    /// Ask a node again instead of dropping its differences past the cap
    /// (see [`Reconciler::keep_every_difference`]).
    defer_past_cap: bool,
}

/// An entry of the walk waiting to be sent, or sent and waiting for its
/// answer.
#[derive(Debug)]
enum Queued {
    /// What this replica says of a node: its split, or its list of the
    /// records it holds there.
    Ours(Entry),
    /// "List what you hold under this node" ([`ask_list`]), which says
    /// nothing of this replica.
    Ask(Node),
}

impl Queued {
    /// The entry as sent.
    fn entry(&self) -> Entry {
        match self {
            Queued::Ours(entry) => entry.clone(),
            Queued::Ask(node) => ask_list(*node),
        }
    }

    /// About how many bytes it takes on the wire.
    fn wire_size(&self) -> usize {
        match self {
            Queued::Ours(entry) => entry.wire_size(),
            Queued::Ask(node) => ask_list(*node).wire_size(),
        }
    }
}

impl Reconciler {
    /// Starts a walk: the first request offers the split of the root (or, for
    /// a small replica, its whole list).
    pub fn start<V: ReconView>(
        view: &mut V,
        limits: ReconLimits,
    ) -> Result<Self, ReconError<V::Error>> {
        let root = view.fingerprint(Node::ROOT).map_err(ReconError::Local)?;
        let first =
            descend(view, Node::ROOT, root, limits.list_below).map_err(ReconError::Local)?;
        Ok(Self {
            limits,
            queue: VecDeque::from([Queued::Ours(first)]),
            in_flight: Vec::new(),
            outcome: Outcome::default(),
            blind: false,
            defer_past_cap: false,
        })
    }

    /// Starts a walk that tells the peer nothing about this replica — no
    /// fingerprint, id, digest or flag: every request is what an empty
    /// replica would ask ("list what you hold under this node"), and the
    /// peer's lists are compared here. For a collection this node receives
    /// from the peer but does not send to it. It costs what an empty
    /// replica's walk costs: the peer lists every record it holds (bounded
    /// per message as usual), and a node where this side holds many records
    /// is asked child by child rather than compared whole.
    pub fn blind(limits: ReconLimits) -> Self {
        Self {
            limits,
            queue: VecDeque::from([Queued::Ask(Node::ROOT)]),
            in_flight: Vec::new(),
            outcome: Outcome::default(),
            blind: true,
            defer_past_cap: false,
        }
    }

    /// Whether the walk sends nothing about this replica.
    pub fn is_blind(&self) -> bool {
        self.blind
    }

    /// For a walk that pulls: differences the peer holds more of
    /// ([`Difference::peer_has_more`]) past [`ReconLimits::max_differences`]
    /// are no longer dropped — once the kept list is full, a node the peer
    /// listed is asked again later instead of compared, so a walk whose
    /// caller takes the differences after every step
    /// ([`take_differences`](Self::take_differences)) finds every one of
    /// them. Differences there is nothing to pull for (ours alone, or newer
    /// here) are counted but not listed, so they never hold the walk up: a
    /// replica far ahead of an empty peer walks it in a few round trips. A walk that never takes them must not use
    /// this (it would ask forever; the round-trip bound ends it).
    pub fn keep_every_difference(&mut self) {
        self.defer_past_cap = true;
    }

    /// The next request to send, or `None` when the walk is finished.
    pub fn next_request(&mut self) -> Option<Vec<Entry>> {
        if self.queue.is_empty() {
            return None;
        }
        let mut bytes = 0;
        while let Some(entry) = self.queue.front() {
            if !self.in_flight.is_empty()
                && bytes + entry.wire_size() > self.limits.max_message_bytes
            {
                break;
            }
            bytes += entry.wire_size();
            self.in_flight.extend(self.queue.pop_front());
        }
        self.outcome.round_trips += 1;
        Some(self.in_flight.iter().map(Queued::entry).collect())
    }

    /// Takes the peer's answer to the last request: `answered` of its entries
    /// were answered (the rest are sent again).
    pub fn receive<V: ReconView>(
        &mut self,
        view: &mut V,
        reply: Vec<Entry>,
        answered: usize,
    ) -> Result<(), ReconError<V::Error>> {
        if answered > self.in_flight.len() || (answered == 0 && !self.in_flight.is_empty()) {
            return Err(ReconError::BadAnswer);
        }
        let unanswered = self.in_flight.split_off(answered);
        // The lists of our own records the peer had: a node the peer
        // answers with its list is compared with the one we sent, not
        // read again.
        let mut sent_lists: HashMap<Node, Vec<Item>> = std::mem::take(&mut self.in_flight)
            .into_iter()
            .filter_map(|queued| match queued {
                Queued::Ours(Entry::Items { node, items }) => Some((node, items)),
                Queued::Ours(Entry::Split { .. }) | Queued::Ask(_) => None,
            })
            .collect();
        for entry in unanswered.into_iter().rev() {
            self.queue.push_front(entry);
        }
        let mut next = Vec::new();
        for entry in reply {
            match entry {
                // Blind: answer as an empty replica, asking for the list of
                // every child the peer holds something under.
                Entry::Split { node, children } if self.blind => {
                    let empty = Fingerprint::default().short();
                    let mine = view.children(node).map_err(ReconError::Local)?;
                    for (i, child) in (0..FANOUT).filter_map(|i| Some((i, node.child(i)?))) {
                        if children[i] != empty {
                            next.push(Queued::Ask(child));
                        } else if mine[i].count > 0 {
                            // The peer holds nothing here: ours alone.
                            if self.defer_past_cap && self.is_full() {
                                next.push(Queued::Ask(child));
                            } else {
                                let local = view.items(child).map_err(ReconError::Local)?;
                                self.compare(local, Vec::new());
                            }
                        }
                    }
                }
                Entry::Split { node, children } => {
                    let mut ours = Vec::new();
                    answer_split(view, node, &children, self.limits.list_below, &mut ours)
                        .map_err(ReconError::Local)?;
                    next.extend(ours.into_iter().map(Queued::Ours));
                }
                Entry::Items { node, .. } if self.defer_past_cap && self.is_full() => {
                    // No room for this node's differences: ask again once
                    // the caller took the ones found so far.
                    next.push(Queued::Ask(node));
                }
                Entry::Items { node, items } => {
                    if let Some(local) = sent_lists.remove(&node) {
                        self.compare(local, items);
                        continue;
                    }
                    let mine = view.fingerprint(node).map_err(ReconError::Local)?;
                    if mine.count <= self.limits.answer_list_below || node.is_leaf() {
                        let local = view.items(node).map_err(ReconError::Local)?;
                        self.compare(local, items);
                    } else if self.blind {
                        // Too many here to compare at once: ask child by child.
                        next.extend((0..FANOUT).filter_map(|i| node.child(i)).map(Queued::Ask));
                    } else {
                        next.push(Queued::Ours(Entry::Split {
                            node,
                            children: shorts(&view.children(node).map_err(ReconError::Local)?),
                        }));
                    }
                }
            }
        }
        self.queue.extend(next);
        if !self.queue.is_empty() && self.outcome.round_trips >= self.limits.max_round_trips {
            return Err(ReconError::TooManyRounds(self.outcome.round_trips));
        }
        Ok(())
    }

    /// Whether the kept differences reached the cap (never while empty, so
    /// a walk that defers always makes progress).
    fn is_full(&self) -> bool {
        self.outcome.differences.len() >= self.limits.max_differences
            && !self.outcome.differences.is_empty()
    }

    /// Records the differences of one node. A deferring walk keeps every
    /// one the peer holds more of (it compares a node only below the cap:
    /// the overshoot is one node's records) and only counts the others;
    /// other walks keep up to the cap and count the rest.
    fn compare(&mut self, local: Vec<Item>, remote: Vec<Item>) {
        let cap = self.limits.max_differences;
        compare_into(&mut self.outcome, local, remote, cap, self.defer_past_cap);
    }

    /// Takes the differences found so far out of the outcome (counts stay).
    pub fn take_differences(&mut self) -> Vec<Difference> {
        std::mem::take(&mut self.outcome.differences)
    }

    /// Whether nothing remains to send.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// The outcome so far (complete once [`is_done`](Self::is_done)).
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Ends the walk, returning what it found.
    pub fn finish(self) -> Outcome {
        self.outcome
    }
}

/// Records in `outcome` how `local` and `remote` (one side's records of
/// the same range each) differ. With `pulling`, keeps every difference the
/// peer holds more of and only counts the others; otherwise keeps up to
/// `cap` and counts the rest as dropped.
pub(super) fn compare_into(
    outcome: &mut Outcome,
    local: Vec<Item>,
    remote: Vec<Item>,
    cap: usize,
    pulling: bool,
) {
    let held = |i: &Item| Held {
        digest: i.digest,
        flags: i.flags,
    };
    let mut both: BTreeMap<RecordId, (Option<Held>, Option<Held>)> = BTreeMap::new();
    for item in &local {
        both.entry(item.id.clone()).or_default().0 = Some(held(item));
    }
    for item in &remote {
        both.entry(item.id.clone()).or_default().1 = Some(held(item));
    }
    for (id, (local, remote)) in both {
        if local == remote {
            continue;
        }
        let difference = Difference { id, local, remote };
        if let Some(status) = difference.status() {
            outcome.counts.count(status);
        }
        if pulling {
            // A pulling walk lists only what there is to pull: the
            // rest is counted, and neither fills the cap nor makes the
            // walk ask a node again.
            if difference.peer_has_more() {
                outcome.differences.push(difference);
            }
        } else if outcome.differences.len() < cap {
            outcome.differences.push(difference);
        } else {
            outcome.dropped += 1;
        }
    }
}
