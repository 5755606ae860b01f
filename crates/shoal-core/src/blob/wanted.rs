//! [`MissingBlob`]: what a replica reports of a blob its records reference
//! but it does not hold — the input of background fetching.
//!
//! Plain data; which peer to ask is the network layer's decision.

use super::hash::BlobHash;
use crate::ids::CollectionName;

/// A blob some live record references and this node does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingBlob {
    /// The blob.
    pub hash: BlobHash,
    /// Its size as the references state it.
    pub size: u64,
    /// The collections of the records referencing it (a peer may send it
    /// only if it may send one of them).
    pub collections: Vec<CollectionName>,
}
