//! The peer table: what the node knows of every peer — addresses, connection
//! and membership state, why it was rejected, last sync, cursor and lag.
//!
//! Shared between the swarm loop and the session tasks behind one lock; it
//! holds status only, never data, and is bounded by the peers that dialed or
//! were dialed.

use libp2p::{Multiaddr, PeerId};
use shoal_core::sync::Rejection;
use shoal_core::{DbVersion, SyncCursor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Most addresses remembered per peer.
const MAX_ADDRESSES: usize = 8;

/// Where a peer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// Known (configured or discovered) but not connected.
    Disconnected,
    /// Connected; membership not yet proven.
    Connecting,
    /// Connected and proven a member: syncing.
    Connected,
    /// Membership failed or the peer broke the protocol.
    Rejected {
        /// Why.
        reason: Rejection,
        /// Whether the peer refused us (true) or we refused it (false).
        by_peer: bool,
    },
    /// The last dial failed.
    Unreachable {
        /// The transport's error.
        error: String,
    },
}

/// What the node knows of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer.
    pub peer: PeerId,
    /// Addresses it was reached or announced at (most recent last).
    pub addresses: Vec<Multiaddr>,
    /// Its state.
    pub state: PeerState,
    /// When a catch-up with it last completed (ms since the Unix epoch).
    pub last_sync_ms: Option<u64>,
    /// How far its log is applied here.
    pub cursor: SyncCursor,
    /// The end of its log as last heard.
    pub remote_head: DbVersion,
    /// How far it has acknowledged our log.
    pub acked: Option<SyncCursor>,
    /// Application bytes sent to / received from it in the current session.
    pub bytes_out: u64,
    /// See `bytes_out`.
    pub bytes_in: u64,
    /// Changes received from it in the current session.
    pub changes_in: u64,
}

impl PeerStatus {
    fn new(peer: PeerId) -> Self {
        Self {
            peer,
            addresses: Vec::new(),
            state: PeerState::Disconnected,
            last_sync_ms: None,
            cursor: SyncCursor::default(),
            remote_head: DbVersion::default(),
            acked: None,
            bytes_out: 0,
            bytes_in: 0,
            changes_in: 0,
        }
    }

    /// How many versions of the peer's log are not yet applied here (moves
    /// during a catch-up too: records up to the cursor's position are in).
    pub fn lag(&self) -> u64 {
        let applied = self.cursor.base.max(self.cursor.position.version);
        self.remote_head.0.saturating_sub(applied.0)
    }
}

/// The shared peer table.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerTable {
    peers: Arc<Mutex<BTreeMap<PeerId, PeerStatus>>>,
    /// Signalled whenever a peer's session authenticates; one waiter (the
    /// blob fetcher), which keeps the signal if it is busy at the time.
    connected: Arc<Notify>,
}

impl PeerTable {
    /// Changes one peer's entry (creating it).
    pub(crate) fn update(&self, peer: PeerId, f: impl FnOnce(&mut PeerStatus)) {
        let mut table = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        f(table.entry(peer).or_insert_with(|| PeerStatus::new(peer)));
    }

    /// Marks `peer` connected (its session authenticated) and wakes whoever
    /// waits in [`PeerTable::connected`].
    pub(crate) fn mark_connected(&self, peer: PeerId) {
        self.update(peer, |s| s.state = PeerState::Connected);
        self.connected.notify_one();
    }

    /// Resolves at the next [`PeerTable::mark_connected`] (or at once if one
    /// happened since the last wait).
    pub(crate) async fn connected(&self) {
        self.connected.notified().await
    }

    /// Remembers an address for a peer.
    pub(crate) fn add_address(&self, peer: PeerId, address: Multiaddr) {
        self.update(peer, |s| {
            s.addresses.retain(|a| *a != address);
            s.addresses.push(address);
            if s.addresses.len() > MAX_ADDRESSES {
                s.addresses.remove(0);
            }
        });
    }

    /// A snapshot of every peer.
    pub(crate) fn snapshot(&self) -> Vec<PeerStatus> {
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// One peer's status.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<PeerStatus> {
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .cloned()
    }
}
