//! The peer table: what the node knows of every peer — addresses, connection
//! and membership state, why it was rejected, last sync, cursor and lag.
//!
//! Shared between the swarm loop and the session tasks behind one lock; it
//! holds status only, never data. It is bounded: anyone can connect with a
//! fresh identity, so past [`MAX_PEERS`] entries the longest-untouched
//! stranger (never synced, not a proven member — also one still connecting)
//! is forgotten, else the longest-untouched peer not connected.

use crate::metrics::Counters;
use libp2p::{Multiaddr, PeerId};
use shoal_core::sync::{Feature, Incompatible, Rejection};
use shoal_core::{DbVersion, SyncCursor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Most addresses remembered per peer.
const MAX_ADDRESSES: usize = 8;
/// Most peers remembered.
pub(crate) const MAX_PEERS: usize = 1024;

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
    /// The peer runs a Shoal whose protocol this node cannot talk (or that
    /// cannot talk this node's): both sides refuse, each saying which one to upgrade.
    Incompatible {
        /// Which side is too old, and the versions.
        why: Incompatible,
    },
    /// The last dial failed.
    Unreachable {
        /// The transport's error.
        error: String,
    },
}

/// How a peer is reached now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPath {
    /// No connection.
    None,
    /// At least one direct connection.
    Direct,
    /// Only through a relay.
    Relayed {
        /// The relay.
        relay: PeerId,
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
    /// How it is reached now (direct, through which relay, or not at all).
    pub path: PeerPath,
    /// When `path` last changed (ms since the Unix epoch); `None` until a
    /// first connection.
    pub path_since_ms: Option<u64>,
    /// Hole punching with it since the node started.
    pub punch: PunchStats,
    /// Why its last connection attempt failed or its last connection
    /// ended, if one did (kept after it reconnects, until the next one).
    pub last_error: Option<String>,
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
    /// What was exchanged with it in every session since the node started.
    pub totals: Traffic,
    /// Its changes held back here because their clocks are too far ahead
    /// of local time (merged once local time catches up).
    pub held: HeldChanges,
    /// What its hello said: protocol version, the features both sides use,
    /// and the build it runs (once a session got that far).
    pub protocol: Option<PeerProtocol>,
}

/// A peer's protocol, as negotiated in the last session's hellos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerProtocol {
    /// The version it speaks.
    pub version: u32,
    /// The version the session with it uses (the lower of the two).
    pub agreed: u32,
    /// Features used with it (both sides have them).
    pub features: Vec<Feature>,
    /// The Shoal build it said it runs (feature `about`), if it said.
    pub software: Option<String>,
}

/// Hole punches (DCUtR upgrades of a relayed connection to a direct one)
/// with a peer, as this node saw them end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PunchStats {
    /// Upgrades that ended (succeeded or gave up).
    pub attempts: u64,
    /// Those that opened a direct connection.
    pub successes: u64,
    /// Why the last failed one failed.
    pub last_error: Option<String>,
}

/// Bytes and changes exchanged with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    /// Application bytes received.
    pub bytes_in: u64,
    /// Application bytes sent.
    pub bytes_out: u64,
    /// Changes received (in catch-up chunks and pushes).
    pub changes_in: u64,
    /// Changes sent (in catch-up chunks and pushes).
    pub changes_out: u64,
}

/// A peer's changes held back for their clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeldChanges {
    /// How many.
    pub changes: u64,
    /// The furthest wall clock among them (ms since the Unix epoch; 0 when none).
    pub max_wall_ms: u64,
}

impl HeldChanges {
    /// How far the furthest held clock is ahead of `now_ms` ("clock ahead by …").
    pub fn ahead_ms(&self, now_ms: u64) -> u64 {
        self.max_wall_ms.saturating_sub(now_ms)
    }
}

impl PeerStatus {
    fn new(peer: PeerId) -> Self {
        Self {
            peer,
            addresses: Vec::new(),
            state: PeerState::Disconnected,
            path: PeerPath::None,
            path_since_ms: None,
            punch: PunchStats::default(),
            last_error: None,
            last_sync_ms: None,
            cursor: SyncCursor::default(),
            remote_head: DbVersion::default(),
            acked: None,
            bytes_out: 0,
            bytes_in: 0,
            changes_in: 0,
            totals: Traffic::default(),
            held: HeldChanges::default(),
            protocol: None,
        }
    }

    /// Sets how the peer is reached, noting when that changed.
    pub(crate) fn set_path(&mut self, path: PeerPath) {
        if self.path != path || self.path_since_ms.is_none() {
            self.path = path;
            self.path_since_ms = Some(now_ms());
        }
    }

    /// A connection to the peer opened: it is connecting — unless it is
    /// connected already, or a session's verdict (rejected, incompatible)
    /// stands. A session on another connection may have ended in that
    /// verdict a moment before the driver saw this connection open; the
    /// next session to start, not a connection, moves the state on.
    pub(crate) fn connection_opened(&mut self) {
        match self.state {
            PeerState::Disconnected | PeerState::Unreachable { .. } => {
                self.state = PeerState::Connecting
            }
            PeerState::Connecting
            | PeerState::Connected
            | PeerState::Rejected { .. }
            | PeerState::Incompatible { .. } => {}
        }
    }

    /// How many versions of the peer's log are not yet applied here (moves
    /// during a catch-up too: records up to the cursor's position are in).
    pub fn lag(&self) -> u64 {
        let applied = self.cursor.base.max(self.cursor.position.version);
        self.remote_head.0.saturating_sub(applied.0)
    }
}

/// The peers, each with when it was last changed (a counter, for eviction).
#[derive(Debug, Default)]
struct Entries {
    peers: BTreeMap<PeerId, (u64, PeerStatus)>,
    clock: u64,
}

impl Entries {
    fn entry(&mut self, peer: PeerId) -> &mut PeerStatus {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            self.evict_one();
        }
        self.clock += 1;
        let (touched, status) = self
            .peers
            .entry(peer)
            .or_insert_with(|| (0, PeerStatus::new(peer)));
        *touched = self.clock;
        status
    }

    /// Forgets the longest-untouched peer that never completed a sync and is
    /// not proven a member (a stranger, also one still connecting), else the
    /// longest-untouched one not connected at all. Only when every peer is a
    /// connected member does the table grow past the bound.
    fn evict_one(&mut self) {
        let stranger =
            |s: &PeerStatus| s.last_sync_ms.is_none() && !matches!(s.state, PeerState::Connected);
        let idle =
            |s: &PeerStatus| !matches!(s.state, PeerState::Connected | PeerState::Connecting);
        let oldest = |keep: &dyn Fn(&PeerStatus) -> bool| {
            self.peers
                .values()
                .filter(|(_, s)| keep(s))
                .min_by_key(|(touched, _)| *touched)
                .map(|(_, s)| s.peer)
        };
        if let Some(peer) = oldest(&stranger).or_else(|| oldest(&idle)) {
            self.peers.remove(&peer);
        }
    }
}

/// The shared peer table.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerTable {
    peers: Arc<Mutex<Entries>>,
    /// Signalled whenever a peer's session authenticates; one waiter (the
    /// blob fetcher), which keeps the signal if it is busy at the time.
    connected: Arc<Notify>,
    /// The node's counters beyond the table (rejections, durations, blobs).
    counters: Counters,
}

impl PeerTable {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Changes one peer's entry (creating it, within [`MAX_PEERS`]).
    pub(crate) fn update(&self, peer: PeerId, f: impl FnOnce(&mut PeerStatus)) {
        f(self.entries().entry(peer));
    }

    /// Records what is held back for its clock from each peer in `held`
    /// (and nothing from the others).
    pub(crate) fn set_held(&self, held: &[(PeerId, HeldChanges)]) {
        let mut entries = self.entries();
        for (_, (_, status)) in entries.peers.iter_mut() {
            status.held = HeldChanges::default();
        }
        for (peer, changes) in held {
            entries.entry(*peer).held = *changes;
        }
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
        self.entries()
            .peers
            .values()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// One peer's status.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<PeerStatus> {
        self.entries().peers.get(peer).map(|(_, s)| s.clone())
    }
}

/// The wall clock in milliseconds since the Unix epoch, as peer status and
/// sessions stamp times (0 if the clock reads before the epoch).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_opening_keeps_a_sessions_verdict() {
        let table = PeerTable::default();
        let peer = PeerId::random();
        let rejected = PeerState::Rejected {
            reason: Rejection::WrongSecret,
            by_peer: true,
        };
        // A session on the first connection was rejected; the driver then
        // sees a second connection to the same peer open.
        table.update(peer, |s| s.state = rejected.clone());
        table.update(peer, PeerStatus::connection_opened);
        assert_eq!(table.get(&peer).map(|s| s.state), Some(rejected));
        for (before, after) in [
            (PeerState::Disconnected, PeerState::Connecting),
            (
                PeerState::Unreachable {
                    error: "refused".into(),
                },
                PeerState::Connecting,
            ),
            (PeerState::Connected, PeerState::Connected),
        ] {
            table.update(peer, |s| s.state = before.clone());
            table.update(peer, PeerStatus::connection_opened);
            assert_eq!(
                table.get(&peer).map(|s| s.state),
                Some(after),
                "from {before:?}"
            );
        }
    }

    #[test]
    fn strangers_past_the_bound_are_forgotten_members_and_connections_kept() {
        let table = PeerTable::default();
        let member = PeerId::random();
        table.update(member, |s| s.last_sync_ms = Some(1));
        let connected = PeerId::random();
        table.mark_connected(connected);
        let strangers: Vec<PeerId> = (0..MAX_PEERS + 100).map(|_| PeerId::random()).collect();
        for (i, stranger) in strangers.iter().enumerate() {
            table.update(*stranger, |s| {
                // Half of them hang at the connecting stage.
                s.state = match i % 2 {
                    0 => PeerState::Connecting,
                    _ => PeerState::Rejected {
                        reason: Rejection::WrongSecret,
                        by_peer: false,
                    },
                }
            });
        }
        assert_eq!(table.snapshot().len(), MAX_PEERS);
        assert!(table.get(&member).is_some(), "a member that synced is kept");
        assert!(table.get(&connected).is_some(), "a connected peer is kept");
        let last = strangers.last().copied().expect("strangers");
        assert!(table.get(&last).is_some(), "the newest stranger is there");
        assert!(
            table.get(&strangers[0]).is_none(),
            "the oldest is forgotten"
        );
    }
}
