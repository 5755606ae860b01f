//! What the tab knows of one sync peer, for `store.peers()`: where the
//! session is (connecting, connected, ended and why), whether a catch-up
//! completed, the cursor, the peer's log head, traffic counters and the
//! last error. The driver (`driver.rs`) updates it; the JS API reads it.
//!
//! It owns the shape and its sharing ([`StatusCell`], which also wakes
//! whoever waits for the status to change).

use shoal_core::sync::{Rejection, SessionStats};
use shoal_core::{DbVersion, SyncCursor};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Where a session with a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// The handshake is under way.
    Connecting,
    /// The peer proved membership; changes flow.
    Connected,
    /// The session ended with a named refusal: by the peer (`by_peer`: e.g.
    /// the tab's group secret is wrong) or by the tab.
    Rejected {
        /// Why.
        reason: Rejection,
        /// Whether the peer refused the tab.
        by_peer: bool,
    },
    /// The two builds cannot talk (the protocol versions do not overlap).
    Incompatible {
        /// Why, worded for the person who must upgrade.
        why: String,
    },
    /// The session ended without a verdict (the stream broke, it timed out
    /// or was stopped); `error` says why when it was not asked for.
    Disconnected {
        /// What went wrong, if anything.
        error: Option<String>,
    },
}

/// One peer's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer id (text), as the transport names it.
    pub peer: String,
    /// Where the session is.
    pub state: PeerState,
    /// Whether a catch-up from the peer completed in this session.
    pub caught_up: bool,
    /// Wall-clock ms of the last completed catch-up.
    pub last_sync_ms: Option<u64>,
    /// How far the peer's log is applied here.
    pub cursor: SyncCursor,
    /// The end of the peer's log as last heard of.
    pub remote_head: DbVersion,
    /// How far the peer acknowledged the tab's log.
    pub acked: Option<SyncCursor>,
    /// The Shoal build the peer runs, if it said.
    pub software: Option<String>,
    /// This session's counters.
    pub stats: SessionStats,
    /// The last failure seen (a refused apply, a broken stream), if any.
    pub last_error: Option<String>,
}

impl PeerStatus {
    /// A status for a session starting with `peer`.
    pub fn new(peer: &str) -> Self {
        PeerStatus {
            peer: peer.to_string(),
            state: PeerState::Connecting,
            caught_up: false,
            last_sync_ms: None,
            cursor: SyncCursor::default(),
            remote_head: DbVersion::default(),
            acked: None,
            software: None,
            stats: SessionStats::default(),
            last_error: None,
        }
    }

    /// Whether the session is over.
    pub fn ended(&self) -> bool {
        !matches!(self.state, PeerState::Connecting | PeerState::Connected)
    }
}

/// A [`PeerStatus`] shared between the driver and whoever shows it; clones
/// share it. Each change that alters the status moves its generation and
/// wakes those waiting in [`StatusCell::changed`].
#[derive(Debug, Clone)]
pub struct StatusCell(Rc<RefCell<Shared>>);

#[derive(Debug)]
struct Shared {
    status: PeerStatus,
    generation: u64,
    waiting: Vec<Waker>,
}

impl StatusCell {
    /// A cell for a session starting with `peer`.
    pub fn new(peer: &str) -> Self {
        StatusCell(Rc::new(RefCell::new(Shared {
            status: PeerStatus::new(peer),
            generation: 0,
            waiting: Vec::new(),
        })))
    }

    /// A copy of the status now.
    pub fn get(&self) -> PeerStatus {
        self.0.borrow().status.clone()
    }

    /// How many changes the status has seen.
    pub fn generation(&self) -> u64 {
        self.0.borrow().generation
    }

    /// Changes the status (waking the waiting if it is now different).
    pub fn update(&self, change: impl FnOnce(&mut PeerStatus)) {
        let waiting = {
            let mut shared = self.0.borrow_mut();
            let before = shared.status.clone();
            change(&mut shared.status);
            if shared.status == before {
                return;
            }
            shared.generation += 1;
            std::mem::take(&mut shared.waiting)
        };
        for waker in waiting {
            waker.wake();
        }
    }

    /// Resolves with the status and its generation once the generation is
    /// past `seen` (e.g. to answer `connect` the moment the peer proved
    /// membership, without polling).
    pub fn changed(&self, seen: u64) -> impl Future<Output = (PeerStatus, u64)> + use<> {
        let cell = self.clone();
        std::future::poll_fn(move |cx| {
            let mut shared = cell.0.borrow_mut();
            if shared.generation > seen {
                return Poll::Ready((shared.status.clone(), shared.generation));
            }
            if !shared.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                shared.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_change_wakes_the_waiting_and_an_unchanged_update_does_not() {
        let cell = StatusCell::new("p");
        let seen = cell.generation();
        let mut waiting = Box::pin(cell.changed(seen));
        assert!(waiting.as_mut().now_or_never().is_none());
        cell.update(|s| s.state = PeerState::Connecting);
        assert_eq!(cell.generation(), seen, "the same state is no change");
        cell.update(|s| s.state = PeerState::Connected);
        let (status, generation) = waiting.now_or_never().expect("woken");
        assert_eq!(status.state, PeerState::Connected);
        assert_eq!(generation, seen + 1);
    }
}
