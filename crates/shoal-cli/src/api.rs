//! The daemon's JSON shapes — `daemon.json` and every body of the control
//! API — shared by the server (`control.rs`, `serve.rs`) and its client
//! (`daemon_client.rs`), so the two cannot drift apart.
//!
//! This module also owns how a library [`PeerStatus`] is shown: the state
//! names (`connected`, `connecting`, `disconnected`, `rejected`,
//! `unreachable`) and the `applied` progress measure.

use serde::{Deserialize, Serialize};
use shoal::{PeerState, PeerStatus};

/// `DATA/daemon.json`: written by a running `shoal serve`, removed when it stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonFile {
    /// The daemon's process id.
    pub pid: u32,
    /// The control API's address (`127.0.0.1:PORT`).
    pub http: String,
    /// The node's peer id.
    pub peer_id: String,
    /// Where the node listens, each ending in `/p2p/<peer id>`.
    pub listen: Vec<String>,
    /// Fingerprint of the group key the daemon runs with (see `secrets::fingerprint`).
    pub group: String,
}

/// `GET /api/node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's peer id.
    pub peer_id: String,
    /// Where the node listens now, each ending in `/p2p/<peer id>`.
    pub listen: Vec<String>,
    /// The store's db_version as this process last saw it.
    pub db_version: u64,
    /// Fingerprint of the group key.
    pub group: String,
}

/// `GET /api/peers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeersReply {
    /// Every peer the node knows.
    pub peers: Vec<PeerInfo>,
}

/// One row of the peer table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer id.
    pub peer: String,
    /// `connected`, `connecting`, `disconnected`, `rejected` or `unreachable`.
    pub state: String,
    /// Why it is rejected or unreachable.
    pub reason: Option<String>,
    /// For a rejected peer: whether it refused us (true) or we refused it (false).
    pub by_peer: Option<bool>,
    /// Addresses it was reached or announced at (most recent last).
    pub addresses: Vec<String>,
    /// When a catch-up with it last completed (ms since the Unix epoch).
    pub last_sync_ms: Option<u64>,
    /// How far its log is applied here (`BASE`, or `BASE+VERSION.SEQ` mid-catch-up).
    pub cursor: String,
    /// The end of its log as last heard (a db_version of the peer's).
    pub remote_head: u64,
    /// Versions of its log applied here, at most `remote_head` (for progress).
    pub applied: u64,
    /// Versions of its log not yet applied here.
    pub lag: u64,
    /// Changes received from it in the current session.
    pub changes_in: u64,
    /// Application bytes exchanged in the current session.
    pub bytes: Bytes,
}

/// Bytes in each direction.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Bytes {
    /// Received.
    #[serde(rename = "in")]
    pub received: u64,
    /// Sent.
    #[serde(rename = "out")]
    pub sent: u64,
}

impl From<&PeerStatus> for PeerInfo {
    fn from(status: &PeerStatus) -> Self {
        let (state, reason, by_peer) = match &status.state {
            PeerState::Connected => ("connected", None, None),
            PeerState::Connecting => ("connecting", None, None),
            PeerState::Disconnected => ("disconnected", None, None),
            PeerState::Rejected { reason, by_peer } => {
                ("rejected", Some(reason.to_string()), Some(*by_peer))
            }
            PeerState::Unreachable { error } => ("unreachable", Some(error.clone()), None),
        };
        let remote_head = status.remote_head.0;
        let lag = status.lag();
        // Mid-catch-up the base stays put while the position moves through the
        // peer's log (ordered by version), so the position measures progress.
        let applied = if lag == 0 {
            remote_head
        } else {
            status
                .cursor
                .base
                .0
                .max(status.cursor.position.version.0)
                .min(remote_head)
        };
        PeerInfo {
            peer: status.peer.to_string(),
            state: state.to_string(),
            reason,
            by_peer,
            addresses: status.addresses.iter().map(|a| a.to_string()).collect(),
            last_sync_ms: status.last_sync_ms,
            cursor: status.cursor.to_string(),
            remote_head,
            applied,
            lag,
            changes_in: status.changes_in,
            bytes: Bytes {
                received: status.bytes_in,
                sent: status.bytes_out,
            },
        }
    }
}

impl PeerInfo {
    /// Whether the peer is connected and proven a member.
    pub fn is_connected(&self) -> bool {
        self.state == "connected"
    }
}

/// `POST /api/sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncReply {
    /// How many sessions were asked to catch up.
    pub sessions: usize,
    /// When they were asked (ms since the Unix epoch, the daemon's clock):
    /// a catch-up that completed at or after this includes everything the
    /// peers had at the request.
    pub requested_ms: u64,
}

/// `POST /api/peers` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddPeer {
    /// A multiaddr to dial (best ending in `/p2p/<peer id>`).
    pub address: String,
}

/// `POST /api/peers` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddPeerReply {
    /// The address, as parsed.
    pub address: String,
    /// Whether it was new to `peers.txt` (false: already there).
    pub remembered: bool,
}

/// Every error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code (`unauthorized`, `bad_request`, ...).
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
