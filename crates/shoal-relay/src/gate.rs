//! The member gate: which connected peers proved membership, consulted by
//! libp2p's relay before every reservation and circuit request (through its
//! rate-limiter hook), so a peer that has not proved itself is denied both.
//!
//! It only answers and records; proving is `admission.rs`'s.

use libp2p::{Multiaddr, PeerId};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Peers admitted while connected to the relay.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    admitted: Arc<Mutex<HashSet<PeerId>>>,
}

impl Gate {
    /// Admits `peer` (it proved membership).
    pub(crate) fn admit(&self, peer: PeerId) {
        lock(&self.admitted).insert(peer);
    }

    /// Forgets `peer` (its last connection to the relay closed): it proves
    /// itself again on its next connection.
    pub(crate) fn forget(&self, peer: &PeerId) {
        lock(&self.admitted).remove(peer);
    }

    /// Whether `peer` proved membership.
    pub(crate) fn is_admitted(&self, peer: &PeerId) -> bool {
        lock(&self.admitted).contains(peer)
    }

    /// A check for the relay's rate-limiter list: true only for members.
    pub(crate) fn limiter(&self) -> Box<dyn libp2p::relay::RateLimiter> {
        let gate = self.clone();
        Box::new(move |peer: PeerId, _: &Multiaddr, _: std::time::Instant| gate.is_admitted(&peer))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
