//! Which blobs fetched on demand to evict when they exceed a byte budget:
//! the least recently opened first, only those another peer is known to
//! hold, never one marked as in use. A pure choice over the facts given —
//! it reads no file, clock or database and removes nothing.

use super::BlobHash;

/// One blob this node fetched on demand and still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDemandBlob {
    /// The blob.
    pub hash: BlobHash,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last opened (or fetched), ms since the Unix epoch.
    pub last_open_ms: u64,
    /// Other peers known to hold it (0: this node may be its only holder).
    pub other_holders: usize,
    /// Open right now (or just fetched to be opened): never evicted.
    pub in_use: bool,
}

/// The blobs to evict so that the sizes of `held` fit in `budget` bytes:
/// least recently opened first (ties by hash), skipping blobs in use and
/// blobs no other peer is known to hold. Returns fewer than needed — even
/// none — when only such blobs remain: the budget is then exceeded rather
/// than a blob lost.
pub fn pick_evictions(held: &[OnDemandBlob], budget: u64) -> Vec<BlobHash> {
    let mut total: u64 = held.iter().map(|b| b.size).sum();
    if total <= budget {
        return Vec::new();
    }
    let mut order: Vec<&OnDemandBlob> = held
        .iter()
        .filter(|b| !b.in_use && b.other_holders > 0)
        .collect();
    order.sort_by_key(|b| (b.last_open_ms, b.hash));
    let mut victims = Vec::new();
    for blob in order {
        if total <= budget {
            break;
        }
        total -= blob.size;
        victims.push(blob.hash);
    }
    victims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(seed: &[u8], size: u64, last_open_ms: u64) -> OnDemandBlob {
        OnDemandBlob {
            hash: BlobHash::of(seed),
            size,
            last_open_ms,
            other_holders: 1,
            in_use: false,
        }
    }

    #[test]
    fn nothing_is_evicted_within_the_budget() {
        let held = [blob(b"a", 40, 1), blob(b"b", 60, 2)];
        assert!(pick_evictions(&held, 100).is_empty());
        assert!(pick_evictions(&[], 0).is_empty());
    }

    #[test]
    fn the_least_recently_opened_go_first_until_it_fits() {
        let held = [
            blob(b"new", 50, 30),
            blob(b"old", 50, 10),
            blob(b"mid", 50, 20),
        ];
        assert_eq!(pick_evictions(&held, 100), vec![BlobHash::of(b"old")]);
        assert_eq!(
            pick_evictions(&held, 50),
            vec![BlobHash::of(b"old"), BlobHash::of(b"mid")]
        );
    }

    #[test]
    fn blobs_in_use_or_held_by_no_other_peer_are_never_evicted() {
        let mut open = blob(b"open", 50, 1);
        open.in_use = true;
        let mut only_here = blob(b"only", 50, 2);
        only_here.other_holders = 0;
        let other = blob(b"other", 50, 3);
        let held = [open, only_here, other];
        // Over budget by 150, but only one blob may go: the budget stays
        // exceeded rather than losing the open one or the only copy.
        assert_eq!(pick_evictions(&held, 0), vec![BlobHash::of(b"other")]);
    }
}
