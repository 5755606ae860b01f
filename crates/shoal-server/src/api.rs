//! The daemon's JSON shapes — `daemon.json` and every body of the HTTP API
//! (docs/http-api.md) — shared by the server (`http/`, shoal-cli's `serve.rs`)
//! and its client (shoal-cli's `daemon_client.rs`), so the two cannot drift apart. Each shape
//! derives its OpenAPI schema (`utoipa::ToSchema`) here, next to its serde
//! form, so the published description is the code's.
//!
//! This module also owns how a library [`PeerStatus`] is shown: the state
//! names (`connected`, `connecting`, `disconnected`, `rejected`,
//! `unreachable`) and the `applied` progress measure, and a group key's
//! public [`fingerprint`]. It holds shapes only: no handler logic, no store
//! access.

use serde::{Deserialize, Serialize};
use shoal::{
    DbVersion, GroupKey, LogPosition, PeerPath, PeerState, PeerStatus, PunchStats, StatusCounts,
    SyncCursor,
};
use utoipa::ToSchema;

mod conflicts;
mod data;
mod devices;
mod health;
mod sync;

pub use conflicts::*;
pub use data::*;
pub use devices::*;
pub use health::*;
pub use sync::*;

/// A short public name of a key (not the key): lets a client tell whether the
/// daemon runs with the key it holds without either side revealing it.
pub fn fingerprint(key: &GroupKey) -> String {
    let digest = blake3::derive_key(
        "shoal cli group key fingerprint v1",
        key.to_hex().as_bytes(),
    );
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

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
    /// Fingerprint of the group key the daemon runs with (see [`fingerprint`]).
    pub group: String,
}

/// `GET /api/node`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// The node's peer id.
    pub peer_id: String,
    /// A short label for people: `shoal serve --name NAME`, else `node-` and
    /// the last 6 characters of the peer id.
    #[serde(default)]
    pub name: String,
    /// Where the node listens now, each ending in `/p2p/<peer id>`.
    pub listen: Vec<String>,
    /// The listen addresses a browser tab dials (WebSocket: `/…/tcp/N/ws`,
    /// each ending in `/p2p/<peer id>`); `shoal-web`'s `store.connect(…)`
    /// takes one. Empty if the node listens for no WebSocket peers.
    #[serde(default)]
    pub websocket: Vec<String>,
    /// The store's db_version as this process last saw it.
    pub db_version: u64,
    /// Fingerprint of the group key.
    pub group: String,
    /// An invite code for this node (as `shoal invite` prints; it carries
    /// the group secret), `None` if it has no reachable address.
    #[serde(default)]
    pub invite: Option<String>,
    /// The relays the node holds (or tries to hold) reservations on, each
    /// ending in `/p2p/<relay id>`; an invite carries them.
    #[serde(default)]
    pub relays: Vec<String>,
    /// Whether the node is reachable from the internet, as AutoNAT v2
    /// probes through its relays found: `public`, `behind NAT` or
    /// `unknown` (no relay answered yet, or no relay; empty from a daemon
    /// older than this field).
    #[serde(default)]
    pub reachability: String,
}

/// `GET /api/peers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeersReply {
    /// Every peer the node knows.
    pub peers: Vec<PeerInfo>,
    /// Whether this node is reachable from the internet (see
    /// [`NodeInfo::reachability`]).
    #[serde(default)]
    pub reachability: String,
    /// Hole punches with any peer since the node started (`last_error`
    /// stays empty here; each peer has its own).
    #[serde(default)]
    pub punch: PunchInfo,
}

/// One row of the peer table.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerInfo {
    /// The peer id.
    pub peer: String,
    /// `connected`, `connecting`, `disconnected`, `rejected`,
    /// `incompatible` or `unreachable`.
    pub state: String,
    /// Why it is rejected, incompatible (e.g. "peer runs an older Shoal
    /// (protocol 2; this node needs 3 or later): upgrade it") or unreachable.
    pub reason: Option<String>,
    /// For a rejected peer: whether it refused us (true) or we refused it (false).
    pub by_peer: Option<bool>,
    /// Addresses it was reached or announced at (most recent last).
    pub addresses: Vec<String>,
    /// When a catch-up with it last completed (ms since the Unix epoch).
    pub last_sync_ms: Option<u64>,
    /// How far its log is applied here.
    pub cursor: CursorInfo,
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
    /// Changes from it held back because their clocks are further ahead
    /// of this node's time than `--max-clock-drift`: they merge once the
    /// time catches up (the rest of its changes sync meanwhile).
    #[serde(default)]
    pub held: u64,
    /// How far the furthest held clock is ahead of this node's time, in
    /// milliseconds ("clock ahead by …"); absent when nothing is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_ahead_ms: Option<u64>,
    /// How it is reached now: `direct`, `relayed`, or `none` (empty from a
    /// daemon older than this field).
    #[serde(default)]
    pub path: String,
    /// The relay it is reached through, when `path` is `relayed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// When `path` last changed (ms since the Unix epoch); absent before a
    /// first connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_since_ms: Option<u64>,
    /// Why its last connection attempt failed or its last connection
    /// ended, if one did (kept after it reconnects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Hole punches with it (relayed connections upgraded to direct ones)
    /// since the node started.
    #[serde(default)]
    pub punch: PunchInfo,
    /// The sync protocol version it speaks (from its hello; absent until a
    /// session got that far, or from a daemon older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    /// The protocol features used with it (both sides have them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// The Shoal build it says it runs (e.g. "Shoal 0.1.0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
}

/// Hole punches with one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PunchInfo {
    /// Upgrades that ended (succeeded or gave up).
    pub attempts: u64,
    /// Those that opened a direct connection.
    pub successes: u64,
    /// Why the last failed one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<&PunchStats> for PunchInfo {
    fn from(stats: &PunchStats) -> Self {
        PunchInfo {
            attempts: stats.attempts,
            successes: stats.successes,
            last_error: stats.last_error.clone(),
        }
    }
}

/// How far a peer's log is applied here, as numbers. `shoal peers` shows it
/// as `BASE`, or mid-catch-up `BASE+VERSION.SEQ` (and `/PARTIAL` inside a
/// record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PeerCursor)]
pub struct CursorInfo {
    /// Every change of the peer's log up to this db_version of the peer's
    /// is applied here (the last completed catch-up pass).
    pub base: u64,
    /// Mid-catch-up: the records up to this position of the peer's log are
    /// applied too; `null` when the pass is complete.
    pub position: Option<PositionInfo>,
    /// Mid-record: the record at `position` is applied up to its first
    /// `partial` stored slots; `null` when it is whole.
    pub partial: Option<u32>,
}

/// A position in a peer's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PeerLogPosition)]
pub struct PositionInfo {
    /// The transaction (a db_version of the peer's).
    pub version: u64,
    /// The change's place within that transaction.
    pub seq: u32,
}

impl From<SyncCursor> for CursorInfo {
    fn from(cursor: SyncCursor) -> Self {
        let complete = cursor == SyncCursor::complete(cursor.base);
        CursorInfo {
            base: cursor.base.0,
            position: (!complete).then_some(PositionInfo {
                version: cursor.position.version.0,
                seq: cursor.position.seq,
            }),
            partial: if complete { None } else { cursor.partial },
        }
    }
}

impl From<CursorInfo> for SyncCursor {
    fn from(info: CursorInfo) -> Self {
        match info.position {
            None => SyncCursor::complete(DbVersion(info.base)),
            Some(position) => SyncCursor {
                base: DbVersion(info.base),
                position: LogPosition {
                    version: DbVersion(position.version),
                    seq: position.seq,
                },
                partial: info.partial,
            },
        }
    }
}

impl std::fmt::Display for CursorInfo {
    /// The text form: `BASE`, or `BASE+VERSION.SEQ[/PARTIAL]` mid-catch-up.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SyncCursor::from(*self).fmt(f)
    }
}

/// Bytes in each direction.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[schema(as = ByteCounts)]
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
            PeerState::Incompatible { why } => ("incompatible", Some(why.to_string()), None),
            PeerState::Unreachable { error } => ("unreachable", Some(error.clone()), None),
        };
        let protocol = status.protocol.as_ref();
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
            cursor: status.cursor.into(),
            remote_head,
            applied,
            lag,
            changes_in: status.changes_in,
            bytes: Bytes {
                received: status.bytes_in,
                sent: status.bytes_out,
            },
            held: status.held.changes,
            clock_ahead_ms: (status.held.changes > 0).then(|| status.held.ahead_ms(now_ms())),
            path: match status.path {
                PeerPath::None => "none",
                PeerPath::Direct => "direct",
                PeerPath::Relayed { .. } => "relayed",
            }
            .into(),
            relay: match status.path {
                PeerPath::Relayed { relay } => Some(relay.to_string()),
                PeerPath::None | PeerPath::Direct => None,
            },
            path_since_ms: status.path_since_ms,
            last_error: status.last_error.clone(),
            punch: PunchInfo::from(&status.punch),
            protocol: protocol.map(|p| p.version),
            features: protocol.map_or(Vec::new(), |p| {
                p.features.iter().map(|f| f.name().to_string()).collect()
            }),
            software: protocol.and_then(|p| p.software.clone()),
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncReply {
    /// How many sessions were asked to catch up.
    pub sessions: usize,
    /// When they were asked (ms since the Unix epoch, the daemon's clock):
    /// a catch-up that completed at or after this includes everything the
    /// peers had at the request.
    pub requested_ms: u64,
}

/// `POST /api/peers` body: exactly one of `address` and `invite`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPeer {
    /// A multiaddr to dial (best ending in `/p2p/<peer id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// An invite code (`shoal2:KEY.SALT.CHECKSUM@ADDRESS`) of this node's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

/// `POST /api/peers` reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddPeerReply {
    /// The address, as parsed.
    pub address: String,
    /// Whether it was new to `peers.txt` (false: already there).
    pub remembered: bool,
}

/// Most differing records one diff page lists (`limit`).
pub const MAX_DIFF_PAGE: usize = 10_000;

/// `GET /api/peers/{peer}/diff` reply: the integrity report against one peer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiffReply {
    /// The peer compared with.
    pub peer: String,
    /// The collection asked for, or every collection this node has or the
    /// peer sends it (by name).
    pub collections: Vec<CollectionDiff>,
}

/// The report for one collection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectionDiff {
    /// The collection.
    pub collection: String,
    /// Records not in sync, per status; absent when `error` says why the
    /// collection could not be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<DiffCounts>,
    /// Why the collection could not be checked (e.g. `not-shared-with-you`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// When a collection was named: one page of the differing records, in id
    /// order (records deleted on both sides are not listed).
    #[serde(default)]
    pub records: Vec<DiffRow>,
    /// Pass as `after` for the next page; `None` on the last one.
    #[serde(default)]
    pub next: Option<String>,
    /// Differences beyond the reconciliation's cap: counted, not listed.
    #[serde(default)]
    pub unlisted: u64,
    /// Request–reply exchanges the check took.
    #[serde(default)]
    pub round_trips: u32,
    /// Payload bytes it cost, both directions.
    #[serde(default)]
    pub bytes: u64,
    /// For a collection a partial replica filters (this node's filter or
    /// the peer's): only the records the filter admits were compared, this
    /// many on each side. Absent: the whole collection was compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered: Option<FilteredDiff>,
}

/// How many records a filtered report compared on each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FilteredDiff {
    /// The peer's records in the filter (those it listed).
    pub peer: u64,
    /// This node's records in the filter.
    pub local: u64,
}

/// Records not in sync, per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiffCounts {
    /// Alive here; absent or deleted on the peer.
    pub local_only: u64,
    /// Alive on the peer; absent or deleted here.
    pub peer_only: u64,
    /// Alive on both, in different states.
    pub diverged: u64,
    /// The same state, but a blob it references is missing on a side.
    pub assets_missing: u64,
    /// All of them.
    pub total: u64,
}

impl From<StatusCounts> for DiffCounts {
    fn from(c: StatusCounts) -> Self {
        DiffCounts {
            local_only: c.local_only,
            peer_only: c.peer_only,
            diverged: c.diverged,
            assets_missing: c.assets_missing,
            total: c.total(),
        }
    }
}

/// One differing record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiffRow {
    /// Its id.
    pub id: String,
    /// `local-only`, `peer-only`, `diverged` or `assets-missing`.
    pub status: String,
}

/// `POST /api/peers/{peer}/pull` and `/push` body: the record to move.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferRequest {
    /// Its collection.
    pub collection: String,
    /// Its id.
    pub id: String,
}

/// `POST /api/peers/{peer}/pull` and `/push` reply (HTTP 200 whatever the
/// result: a refusal or an unreachable peer is an answer, not a failed call).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferReply {
    /// A stable code: `merged`, `already-in-sync`, `nothing-new`,
    /// `peer-does-not-have-it`, `not-found-here`, `peer-unreachable`,
    /// `timed-out`, `not-shared-with-you`, `not-shared` or `failed`.
    pub result: String,
    /// The reason, for people ("merged", "peer does not have it", ...).
    pub reason: String,
    /// Whether the transfer completed (merged, already in sync, or nothing
    /// new because the receiving side was ahead).
    pub ok: bool,
}

/// Every error body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// A stable machine-readable code (`unauthorized`, `bad-request`, ...).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_numbers_and_shows_as_before() {
        let complete = SyncCursor::complete(DbVersion(42));
        let info = CursorInfo::from(complete);
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            serde_json::json!({"base": 42, "position": null, "partial": null})
        );
        assert_eq!(info.to_string(), "42");
        let inside = SyncCursor {
            base: DbVersion(42),
            position: LogPosition {
                version: DbVersion(57),
                seq: 3,
            },
            partial: Some(2),
        };
        let info = CursorInfo::from(inside);
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            serde_json::json!({"base": 42, "position": {"version": 57, "seq": 3}, "partial": 2})
        );
        assert_eq!(info.to_string(), inside.to_string());
        assert_eq!(SyncCursor::from(info), inside);
    }

    #[test]
    fn fingerprints_differ_by_key_and_hide_it() {
        let a = GroupKey::from_random([1; 32]);
        let b = GroupKey::from_random([2; 32]);
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
        assert!(!a.to_hex().contains(&fingerprint(&a)));
    }
}
