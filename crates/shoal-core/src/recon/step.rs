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
//! ([`Reconciler`](super::Reconciler), in `initiator.rs`) holds the queue of entries still to
//! send and the outcome.
//! A *blind* initiator ([`Reconciler::blind`](super::Reconciler::blind)) sends nothing about its own
//! replica — only "list what you hold under this node", as an empty replica
//! would — for a collection it receives from the peer but does not send.
//! Replies are bounded by bytes; what does not fit is reported unprocessed and
//! sent again. This module never does IO: the local side is a [`ReconView`].

use super::tree::{FANOUT, Fingerprint, ItemFlags, Node, ShortDigest, ShortFingerprint};
use crate::ids::RecordId;
use serde::{Deserialize, Serialize};

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

pub(super) fn shorts(children: &[Fingerprint; FANOUT]) -> [ShortFingerprint; FANOUT] {
    children.map(Fingerprint::short)
}

/// What one side says next about a differing `node` it holds `mine` of.
pub(super) fn descend<V: ReconView>(
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
pub(super) fn answer_split<V: ReconView>(
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

/// "List your records under `node`": the request an empty replica makes.
/// The responder never reads the items of a request's `Items` entry, so this
/// says nothing about the asker.
pub(super) fn ask_list(node: Node) -> Entry {
    Entry::Items {
        node,
        items: Vec::new(),
    }
}
