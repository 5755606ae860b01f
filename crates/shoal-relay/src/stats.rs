//! The relay's counters: shared atomics the swarm loop and the admission
//! tasks bump, and the [`RelayStats`] snapshot read from them.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a relay did since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayStats {
    /// Peers that proved membership.
    pub admitted: u64,
    /// Membership proofs refused (wrong token, bad or missing answer).
    pub refused: u64,
    /// Reservations granted (renewals included).
    pub reservations_accepted: u64,
    /// Reservations denied (not a member, over a limit or rate).
    pub reservations_denied: u64,
    /// Circuits opened.
    pub circuits_accepted: u64,
    /// Circuits denied (not a member, no reservation, over a limit or rate).
    pub circuits_denied: u64,
    /// Circuits closed (ended, or cut at a limit).
    pub circuits_closed: u64,
    /// Reservations held now.
    pub reservations_now: u64,
    /// AutoNAT v2 dial-back probes answered to members (whether the
    /// dial-back reached the member is the member's to know).
    pub probes: u64,
}

/// The live counters behind [`RelayStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) admitted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) reservations_accepted: AtomicU64,
    pub(crate) reservations_denied: AtomicU64,
    pub(crate) circuits_accepted: AtomicU64,
    pub(crate) circuits_denied: AtomicU64,
    pub(crate) circuits_closed: AtomicU64,
    pub(crate) reservations_now: AtomicU64,
    pub(crate) probes: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// A snapshot.
    pub(crate) fn snapshot(&self) -> RelayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelayStats {
            admitted: get(&self.admitted),
            refused: get(&self.refused),
            reservations_accepted: get(&self.reservations_accepted),
            reservations_denied: get(&self.reservations_denied),
            circuits_accepted: get(&self.circuits_accepted),
            circuits_denied: get(&self.circuits_denied),
            circuits_closed: get(&self.circuits_closed),
            reservations_now: get(&self.reservations_now),
            probes: get(&self.probes),
        }
    }
}
