//! Range-based set reconciliation (after Meyer, "Range-Based Set
//! Reconciliation"): the two replicas walk the fixed tree of `tree.rs` down
//! only where their fingerprints differ.
//!
//! Each message is a list of [`Entry`]s. A `Split` carries the sender's
//! fingerprints of a node's 16 children; the receiver compares them with its
//! own and, for each child that differs, answers with its own `Split` of that
//! child — or, once it holds few records there, with its `Items`. Items are
//! answered with the receiver's items for the same node; the initiator
//! compares the two lists and records each [`Difference`]. Equal replicas
//! settle in one round trip; each difference costs about one `Split` per level.
//!
//! The responder ([`respond`]) keeps no state between requests; the initiator
//! ([`Reconciler`]) holds the queue of entries still to send and the outcome.
//! A *blind* initiator ([`Reconciler::blind`]) sends nothing about its own
//! replica — only "list what you hold under this node", as an empty replica
//! would — for a collection it receives from the peer but does not send.
//! Replies are bounded by bytes; what does not fit is reported unprocessed and
//! sent again. This module never does IO: the local side is a [`ReconView`].

use super::tree::{FANOUT, Fingerprint, ItemFlags, Node, ShortDigest, ShortFingerprint};
use crate::ids::RecordId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A record as reconciliation lists it: id, digest of its state, flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The record id.
    pub id: RecordId,
    /// The first 8 bytes of its state digest.
    pub digest: ShortDigest,
    /// Alive, assets missing.
    pub flags: ItemFlags,
}

/// One step of reconciliation about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// The sender's fingerprints of the node's 16 children.
    Split {
        /// The node split.
        node: Node,
        /// One per child, in order.
        children: [ShortFingerprint; FANOUT],
    },
    /// Every record the sender holds under the node.
    Items {
        /// The node listed.
        node: Node,
        /// The records.
        items: Vec<Item>,
    },
}

impl Entry {
    /// About how many bytes the entry takes on the wire.
    pub fn wire_size(&self) -> usize {
        match self {
            Entry::Split { .. } => 8 * FANOUT + 12,
            Entry::Items { items, .. } => {
                12 + items
                    .iter()
                    .map(|i| i.id.as_str().len() + 12)
                    .sum::<usize>()
            }
        }
    }
}

/// The local replica's side of one collection, as reconciliation reads it.
pub trait ReconView {
    /// What reading the replica can fail with.
    type Error;

    /// The fingerprint of the records under `node`.
    fn fingerprint(&mut self, node: Node) -> Result<Fingerprint, Self::Error>;

    /// The fingerprints of `node`'s 16 children (a leaf has none: all empty).
    fn children(&mut self, node: Node) -> Result<[Fingerprint; FANOUT], Self::Error> {
        let mut out = [Fingerprint::default(); FANOUT];
        for (i, slot) in out.iter_mut().enumerate() {
            if let Some(child) = node.child(i) {
                *slot = self.fingerprint(child)?;
            }
        }
        Ok(out)
    }

    /// Every record under `node`.
    fn items(&mut self, node: Node) -> Result<Vec<Item>, Self::Error>;
}

/// Tuning of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconLimits {
    /// A side holding at most this many records under a differing node lists
    /// them instead of splitting further.
    pub list_below: u64,
    /// A side answering a list lists its own records if it holds at most this
    /// many there, and splits otherwise.
    pub answer_list_below: u64,
    /// About how many bytes one message may carry.
    pub max_message_bytes: usize,
    /// Most differences an outcome keeps (counts stay exact beyond it).
    pub max_differences: usize,
    /// Most round trips before the walk is abandoned (a misbehaving peer).
    pub max_round_trips: u32,
}

impl Default for ReconLimits {
    fn default() -> Self {
        Self {
            list_below: 4,
            answer_list_below: 256,
            max_message_bytes: 1024 * 1024,
            max_differences: 100_000,
            max_round_trips: 10_000,
        }
    }
}

fn shorts(children: &[Fingerprint; FANOUT]) -> [ShortFingerprint; FANOUT] {
    children.map(Fingerprint::short)
}

/// What one side says next about a differing `node` it holds `mine` of.
fn descend<V: ReconView>(
    view: &mut V,
    node: Node,
    mine: Fingerprint,
    list_below: u64,
) -> Result<Entry, V::Error> {
    if mine.count <= list_below || node.is_leaf() {
        Ok(Entry::Items {
            node,
            items: view.items(node)?,
        })
    } else {
        Ok(Entry::Split {
            node,
            children: shorts(&view.children(node)?),
        })
    }
}

/// Compares the peer's split of `node` with ours; pushes what to say about
/// each differing child.
fn answer_split<V: ReconView>(
    view: &mut V,
    node: Node,
    theirs: &[ShortFingerprint; FANOUT],
    list_below: u64,
    out: &mut impl Extend<Entry>,
) -> Result<(), V::Error> {
    if node.is_leaf() {
        return Ok(());
    }
    let mine = view.children(node)?;
    for (i, fp) in mine.iter().enumerate() {
        if fp.short() != theirs[i]
            && let Some(child) = node.child(i)
        {
            out.extend([descend(view, child, *fp, list_below)?]);
        }
    }
    Ok(())
}

/// The responder's answer to one request: entries answering `entries` in
/// order, and how many of them were answered before the byte budget ran out
/// (at least one). Keeps no state.
pub fn respond<V: ReconView>(
    view: &mut V,
    entries: &[Entry],
    limits: &ReconLimits,
) -> Result<(Vec<Entry>, usize), V::Error> {
    let mut out: Vec<Entry> = Vec::new();
    let mut bytes = 0;
    let mut answered = 0;
    for entry in entries {
        if answered > 0 && bytes >= limits.max_message_bytes {
            break;
        }
        let start = out.len();
        match entry {
            Entry::Split { node, children } => {
                answer_split(view, *node, children, limits.list_below, &mut out)?
            }
            Entry::Items { node, .. } => {
                let mine = view.fingerprint(*node)?;
                out.push(descend(view, *node, mine, limits.answer_list_below)?);
            }
        }
        bytes += out[start..].iter().map(Entry::wire_size).sum::<usize>();
        answered += 1;
    }
    Ok((out, answered))
}

/// How a record differs between the two replicas (only records that differ
/// are reported, and records deleted on both sides are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Alive here; absent or deleted on the peer.
    LocalOnly,
    /// Alive on the peer; absent or deleted here.
    PeerOnly,
    /// Alive on both, in different states.
    Diverged,
    /// The same state on both, but a blob it references is missing on a side.
    AssetsMissing,
}

impl Status {
    /// The report's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::LocalOnly => "local-only",
            Status::PeerOnly => "peer-only",
            Status::Diverged => "diverged",
            Status::AssetsMissing => "assets-missing",
        }
    }
}

/// One side's view of a differing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Its state digest (first 8 bytes).
    pub digest: ShortDigest,
    /// Alive, assets missing.
    pub flags: ItemFlags,
}

/// A record whose state or flags differ between the two replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The record.
    pub id: RecordId,
    /// What we hold (`None`: never seen here).
    pub local: Option<Held>,
    /// What the peer holds (`None`: never seen there).
    pub remote: Option<Held>,
}

impl Difference {
    /// Its report status; `None` for a record deleted (or never seen) on both
    /// sides, which the report does not list.
    pub fn status(&self) -> Option<Status> {
        let alive = |h: Option<Held>| h.is_some_and(|h| h.flags.alive);
        let same_state = match (self.local, self.remote) {
            (Some(l), Some(r)) => l.digest == r.digest,
            _ => false,
        };
        match (alive(self.local), alive(self.remote)) {
            (true, true) if same_state => Some(Status::AssetsMissing),
            (true, true) => Some(Status::Diverged),
            (true, false) => Some(Status::LocalOnly),
            (false, true) => Some(Status::PeerOnly),
            (false, false) => None,
        }
    }

    /// Whether the peer holds state we may lack (worth pulling).
    pub fn peer_has_more(&self) -> bool {
        match (self.local, self.remote) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(l), Some(r)) => l.digest != r.digest,
        }
    }
}

/// Counts per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Records alive only here.
    pub local_only: u64,
    /// Records alive only on the peer.
    pub peer_only: u64,
    /// Records alive on both in different states.
    pub diverged: u64,
    /// Records in the same state whose blobs are missing on a side.
    pub assets_missing: u64,
}

impl StatusCounts {
    /// Counts one more record of `status`.
    pub fn count(&mut self, status: Status) {
        match status {
            Status::LocalOnly => self.local_only += 1,
            Status::PeerOnly => self.peer_only += 1,
            Status::Diverged => self.diverged += 1,
            Status::AssetsMissing => self.assets_missing += 1,
        }
    }

    /// All records not in sync.
    pub fn total(&self) -> u64 {
        self.local_only + self.peer_only + self.diverged + self.assets_missing
    }
}

/// What a finished reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Listed records per status (exact, even past the difference cap).
    pub counts: StatusCounts,
    /// Differing records (including those deleted on both sides), at most
    /// [`ReconLimits::max_differences`] of them.
    pub differences: Vec<Difference>,
    /// Differences beyond the cap, not kept.
    pub dropped: u64,
    /// Request–reply exchanges it took.
    pub round_trips: u32,
}

/// Why a reconciliation was abandoned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReconError<E> {
    /// Reading the local replica failed.
    #[error("reading the local replica failed: {0}")]
    Local(E),
    /// The peer's answers did not let the walk finish.
    #[error("reconciliation did not finish within {0} round trips")]
    TooManyRounds(u32),
    /// The peer answered a request that was not asked.
    #[error("the peer answered more entries than were asked")]
    BadAnswer,
}

/// The initiating side of one reconciliation. See the module docs.
#[derive(Debug)]
pub struct Reconciler {
    limits: ReconLimits,
    queue: VecDeque<Entry>,
    in_flight: Vec<Entry>,
    outcome: Outcome,
    /// Send nothing about the local replica (see [`Reconciler::blind`]).
    blind: bool,
    /// Ask a node again instead of dropping its differences past the cap
    /// (see [`Reconciler::keep_every_difference`]).
    defer_past_cap: bool,
}

/// "List your records under `node`": the request an empty replica makes.
/// The responder never reads the items of a request's `Items` entry, so this
/// says nothing about the asker.
pub(super) fn ask_list(node: Node) -> Entry {
    Entry::Items {
        node,
        items: Vec::new(),
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
            queue: VecDeque::from([first]),
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
            queue: VecDeque::from([ask_list(Node::ROOT)]),
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
        Some(self.in_flight.clone())
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
        self.in_flight.clear();
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
                            next.push(ask_list(child));
                        } else if mine[i].count > 0 {
                            // The peer holds nothing here: ours alone.
                            if self.defer_past_cap && self.is_full() {
                                next.push(ask_list(child));
                            } else {
                                let local = view.items(child).map_err(ReconError::Local)?;
                                self.compare(local, Vec::new());
                            }
                        }
                    }
                }
                Entry::Split { node, children } => {
                    answer_split(view, node, &children, self.limits.list_below, &mut next)
                        .map_err(ReconError::Local)?
                }
                Entry::Items { node, items } => {
                    let mine = view.fingerprint(node).map_err(ReconError::Local)?;
                    if self.defer_past_cap && self.is_full() {
                        // No room for this node's differences: ask again
                        // once the caller took the ones found so far.
                        next.push(ask_list(node));
                    } else if mine.count <= self.limits.answer_list_below || node.is_leaf() {
                        let local = view.items(node).map_err(ReconError::Local)?;
                        self.compare(local, items);
                    } else if self.blind {
                        // Too many here to compare at once: ask child by child.
                        next.extend((0..FANOUT).filter_map(|i| node.child(i)).map(ask_list));
                    } else {
                        next.push(Entry::Split {
                            node,
                            children: shorts(&view.children(node).map_err(ReconError::Local)?),
                        });
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
