//! The blob table: where each blob fetch of a node stands (fetching from
//! which peer, waiting for a direct connection, failed and why), the totals
//! since the node started, and the claims that keep two fetches of one blob
//! apart. Bounded: failed and waiting entries past a cap are forgotten.
//!
//! Bookkeeping only, shared between the scheduler and the fetches
//! (`blob_fetch.rs`); it never touches the network or a file.

use libp2p::PeerId;
use shoal_core::blob::{self, BlobHash, MissingBlob};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most failures remembered in the blob table.
const MAX_FAILURES: usize = 256;
/// Why a blob no peer is fetching waits.
pub(crate) const NO_PEER: &str = "no connected peer may send it";

/// Where one blob transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobState {
    /// Being fetched from `peer`.
    Fetching {
        /// The peer asked.
        peer: PeerId,
    },
    /// Every connected peer that may send it is reached through a relay,
    /// and it is larger than what blobs may take through one
    /// ([`crate::BlobConfig::relay_max`]): it waits for a direct connection.
    AwaitingDirect {
        /// The largest blob fetched through a relay.
        relay_max: u64,
    },
    /// The last attempt failed; retried after a pause.
    Failed {
        /// Why (the last peer's error, or "no peer has it").
        error: String,
    },
}

/// What the node knows of one blob it is fetching or failed to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobTransfer {
    /// The blob.
    pub hash: BlobHash,
    /// Its size, as referenced.
    pub size: u64,
    /// Where it stands.
    pub state: BlobState,
    /// Verified bytes held so far (including a resumed prefix).
    pub verified_bytes: u64,
}

/// Totals since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobTotals {
    /// Blobs fetched completely.
    pub fetched: u64,
    /// Piece bytes received from peers (verified or not).
    pub bytes_received: u64,
    /// Pieces that failed verification.
    pub bad_pieces: u64,
}

#[derive(Debug, Default)]
struct TableInner {
    transfers: BTreeMap<BlobHash, BlobTransfer>,
    totals: BlobTotals,
    /// Blobs not to retry before the instant.
    retry_at: HashMap<BlobHash, Instant>,
    /// Blobs claimed by a fetch task of this node, from the claim until it
    /// ends (whatever its state says meanwhile).
    claimed: HashSet<BlobHash>,
}

/// The blob transfers of a node, shared between the scheduler and fetches.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlobTable(Arc<Mutex<TableInner>>);

impl BlobTable {
    fn with<T>(&self, f: impl FnOnce(&mut TableInner) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    /// Every transfer in progress or failed, by hash.
    pub(crate) fn snapshot(&self) -> (Vec<BlobTransfer>, BlobTotals) {
        self.with(|t| (t.transfers.values().cloned().collect(), t.totals))
    }

    /// Claims `blob` for one fetch unless a fetch task of it exists (from
    /// its claim to its end, not only while a peer is being asked) or it
    /// waits for a retry.
    pub(crate) fn claim(&self, blob: &MissingBlob) -> bool {
        self.claim_with(blob, true)
    }

    /// Claims `blob` for a fetch someone waits for (an open): like
    /// [`BlobTable::claim`], but a pause before a retry does not hold it back.
    pub(crate) fn claim_now(&self, blob: &MissingBlob) -> bool {
        self.claim_with(blob, false)
    }

    fn claim_with(&self, blob: &MissingBlob, respect_pause: bool) -> bool {
        self.with(|t| {
            let busy = t.claimed.contains(&blob.hash);
            let waiting = respect_pause
                && t.retry_at
                    .get(&blob.hash)
                    .is_some_and(|at| Instant::now() < *at);
            if busy || waiting {
                return false;
            }
            t.claimed.insert(blob.hash);
            t.transfers.insert(
                blob.hash,
                BlobTransfer {
                    hash: blob.hash,
                    size: blob.size,
                    state: BlobState::Failed {
                        error: NO_PEER.into(),
                    },
                    verified_bytes: 0,
                },
            );
            true
        })
    }

    /// Whether a fetch task of `hash` is claimed and not ended.
    pub(crate) fn is_claimed(&self, hash: &BlobHash) -> bool {
        self.with(|t| t.claimed.contains(hash))
    }

    /// Fetch tasks claimed and not ended.
    pub(crate) fn running(&self) -> usize {
        self.with(|t| t.claimed.len())
    }

    /// The transfer of `hash`, if one is in progress or failed.
    pub(crate) fn get(&self, hash: &BlobHash) -> Option<BlobTransfer> {
        self.with(|t| t.transfers.get(hash).cloned())
    }

    pub(crate) fn set(&self, hash: &BlobHash, f: impl FnOnce(&mut BlobTransfer)) {
        self.with(|t| {
            if let Some(transfer) = t.transfers.get_mut(hash) {
                f(transfer);
            }
        })
    }

    /// Records that the first `pieces` pieces of `hash` are verified here.
    pub(crate) fn set_verified(&self, hash: &BlobHash, pieces: u64) {
        self.set(hash, |t| {
            t.verified_bytes = pieces.saturating_mul(blob::PIECE_LEN).min(t.size)
        });
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut BlobTotals)) {
        self.with(|t| f(&mut t.totals))
    }

    pub(crate) fn done(&self, hash: &BlobHash) {
        self.with(|t| {
            t.transfers.remove(hash);
            t.retry_at.remove(hash);
            t.claimed.remove(hash);
            t.totals.fetched += 1;
        })
    }

    /// Ends a claim whose blob may only come over a direct connection, none
    /// open: looked at again at the next scan or connection.
    pub(crate) fn awaiting_direct(&self, hash: &BlobHash, relay_max: u64) {
        self.with(|t| {
            if let Some(transfer) = t.transfers.get_mut(hash) {
                transfer.state = BlobState::AwaitingDirect { relay_max };
            }
            t.claimed.remove(hash);
            t.forget_past_bound();
        })
    }

    /// Ends a claim that failed with `error`; it may be claimed again after
    /// `retry_after` (`None`: at the next scan — no peer was asked).
    pub(crate) fn failed(&self, hash: &BlobHash, error: String, retry_after: Option<Duration>) {
        self.with(|t| {
            if let Some(transfer) = t.transfers.get_mut(hash) {
                transfer.state = BlobState::Failed { error };
            }
            if let Some(pause) = retry_after {
                t.retry_at.insert(*hash, Instant::now() + pause);
            }
            t.claimed.remove(hash);
            t.forget_past_bound();
        })
    }
}

impl TableInner {
    /// Bounded: forgets failed and waiting blobs (by hash order, cheap) past [`MAX_FAILURES`].
    fn forget_past_bound(&mut self) {
        while self.transfers.len() > MAX_FAILURES {
            let Some(oldest) = self
                .transfers
                .iter()
                .find(|(h, x)| {
                    !matches!(x.state, BlobState::Fetching { .. }) && !self.claimed.contains(*h)
                })
                .map(|(h, _)| *h)
            else {
                break;
            };
            self.transfers.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(seed: &[u8]) -> MissingBlob {
        MissingBlob {
            hash: BlobHash::of(seed),
            size: 10,
            collections: Vec::new(),
        }
    }

    #[test]
    fn a_claimed_blob_is_not_claimed_again_until_its_fetch_ends() {
        let table = BlobTable::default();
        let blob = missing(b"one");
        assert!(table.claim(&blob));
        // Before its task has asked any peer (the state still says no peer
        // was asked), a second scan must not start a second fetch.
        assert!(!table.claim(&blob));
        assert_eq!(table.running(), 1);
        table.set(&blob.hash, |t| {
            t.state = BlobState::Failed {
                error: "between two peers".into(),
            }
        });
        assert!(!table.claim(&blob));
        // Ended without a pause: claimable at once; with one: not yet.
        table.failed(&blob.hash, NO_PEER.into(), None);
        assert_eq!(table.running(), 0);
        assert!(table.claim(&blob));
        table.failed(&blob.hash, "bad".into(), Some(Duration::from_secs(60)));
        assert!(!table.claim(&blob));
        let other = missing(b"two");
        assert!(table.claim(&other));
        table.done(&other.hash);
        assert!(table.claim(&other));
    }
}
