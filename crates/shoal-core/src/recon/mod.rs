//! Set reconciliation over record digests: how two replicas find which
//! records differ without either sending its whole manifest.
//!
//! `tree.rs` owns the fixed hash tree, fingerprints and record digests,
//! `slot_bytes.rs` the bytes a digest hashes of each slot;
//! `step.rs` owns the walk's entries, the stateless responder and the
//! classification into a [`Status`] per record; `initiator.rs` the
//! initiating [`Reconciler`];
//! `lookup.rs` owns finding one record among the peer's without naming it
//! ([`BlindLookup`]); `filtered.rs` owns the report of a collection the
//! peer filters for this node ([`FilteredWalk`]: pages of what its filter
//! admits, compared here).
//! Nothing here touches storage or the network: the store implements
//! [`ReconView`], the sync session carries the [`Entry`] lists.

mod filtered;
mod initiator;
mod lookup;
mod slot_bytes;
mod step;
mod tree;

pub use filtered::{FilteredCounts, FilteredError, FilteredView, FilteredWalk};
pub use initiator::Reconciler;
pub use lookup::{BlindLookup, LOOKUP_LEVEL, LookupError};
pub use slot_bytes::push_varint;
pub use step::{
    Difference, Entry, Held, Item, Outcome, ReconError, ReconLimits, ReconView, Status,
    StatusCounts, respond,
};
pub use tree::{
    Element, FANOUT, Fingerprint, ItemFlags, MAX_LEVEL, Node, ReconKey, ShortDigest,
    ShortFingerprint, StateDigest, element,
};
