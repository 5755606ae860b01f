//! What the tab knows of one sync peer, for `store.peers()`: where the
//! session is (connecting, connected, ended and why), whether a catch-up
//! completed, the cursor, the peer's log head, traffic counters and the
//! last error. The driver (`driver.rs`) updates it; the JS API reads it.
//!
//! It owns the shape only (plain data, shared through [`StatusCell`]).

use shoal_core::sync::{Rejection, SessionStats};
use shoal_core::{DbVersion, SyncCursor};
use std::cell::RefCell;
use std::rc::Rc;

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

/// A [`PeerStatus`] shared between the driver and whoever shows it.
#[derive(Debug, Clone)]
pub struct StatusCell(Rc<RefCell<PeerStatus>>);

impl StatusCell {
    /// A cell for a session starting with `peer`.
    pub fn new(peer: &str) -> Self {
        StatusCell(Rc::new(RefCell::new(PeerStatus::new(peer))))
    }

    /// A copy of the status now.
    pub fn get(&self) -> PeerStatus {
        self.0.borrow().clone()
    }

    /// Changes the status.
    pub fn update(&self, change: impl FnOnce(&mut PeerStatus)) {
        change(&mut self.0.borrow_mut());
    }
}
