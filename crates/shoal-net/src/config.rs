//! [`NodeConfig`]: everything a node needs to start — where to listen, whom to
//! dial, which relays to use, where to keep learned addresses, whether to discover peers by mDNS, the group key, the sync bounds and
//! the connection limits.
//!
//! Plain data with defaults; validation happens when the node starts.

use libp2p::Multiaddr;
use shoal_core::recon::ReconLimits;
use shoal_core::sync::{GroupKey, SyncConfig};
use std::path::PathBuf;
use std::time::Duration;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4040` and
    /// `/ip4/0.0.0.0/udp/4040/quic-v1`. Port 0 picks a free port.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and to redial while disconnected.
    pub peers: Vec<Multiaddr>,
    /// Relays to hold a reservation on, each ending in `/p2p/<relay id>`:
    /// the node proves membership to each (with the relay token derived
    /// from the group key), then listens through it, so peers that cannot
    /// dial it directly reach it at `<relay>/p2p-circuit/p2p/<this node>`.
    pub relays: Vec<Multiaddr>,
    /// Where the node keeps the addresses it last reached each member at
    /// (and their relayed addresses), so it redials them on start and after
    /// disconnects; `None`: remembered only while the node runs. See
    /// [`ADDRESS_BOOK_FILE`](crate::ADDRESS_BOOK_FILE).
    pub address_book: Option<PathBuf>,
    /// Discover peers on the local network by mDNS.
    pub mdns: bool,
    /// The secret that defines the group.
    pub group_key: GroupKey,
    /// Bounds and timeouts of the sync protocol.
    pub sync: SyncConfig,
    /// How long to wait before redialing a configured peer that is unreachable.
    pub redial_interval: Duration,
    /// How long a peer that failed membership is left alone before it may try again.
    pub rejected_backoff: Duration,
    /// How often each session levels with its peer by reconciliation
    /// (anti-entropy: finds what cursors cannot see); `None` turns it off.
    pub anti_entropy: Option<Duration>,
    /// Bounds of reconciliation walks.
    pub recon: ReconLimits,
    /// Replicate automatically (catch-up, live pushes, anti-entropy; the
    /// default). When false, sessions only authenticate and answer
    /// federation requests: records move only by explicit pull and push.
    pub auto_sync: bool,
    /// How blobs are fetched and served.
    pub blobs: BlobConfig,
    /// How often each connection is pinged (and how long one ping may take);
    /// a connection with no answer for three periods is closed (and a
    /// configured peer redialed), so a peer that vanished without closing (a
    /// laptop asleep, a changed network) is noticed in under a minute rather
    /// than at the kernel's TCP timeout. Must be longer than zero.
    pub liveness: Duration,
    /// Bounds on connections: any peer, member or not, can open them before
    /// proving membership, and fresh identities cost nothing.
    pub connections: ConnectionCaps,
    /// How long after a relayed connection opens hole punching starts
    /// (default zero: at once). For tests and benchmarks: it lets one see
    /// sync start over the relay before the connection goes direct.
    pub punch_delay: Duration,
    /// How often a partial replica re-evaluates, locally, its own filters
    /// that mention `now` and drops the records that aged out of them
    /// (once at start, then every period; `None`: never). Default
    /// [`AGE_OUT_INTERVAL`]. See `docs/partial.md`.
    pub age_out: Option<Duration>,
}

/// How often a running node sweeps its time-relative partial filters
/// (`date >= now-30d`) by default: every five minutes.
pub const AGE_OUT_INTERVAL: Duration = Duration::from_secs(300);

/// Connection limits, enforced by the swarm before any protocol runs: past
/// one, a new connection is refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Most established connections in all (default 512).
    pub total: u32,
    /// Most incoming connections still in their transport handshake (Noise,
    /// Yamux) at once (default 64).
    pub pending: u32,
    /// Most established connections with one peer (default 4: a TCP and a
    /// QUIC connection each way).
    pub per_peer: u32,
}

impl Default for ConnectionCaps {
    fn default() -> Self {
        Self {
            total: 512,
            pending: 64,
            per_peer: 4,
        }
    }
}

/// How a node fetches and serves blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobConfig {
    /// Blobs fetched at once (each from one peer at a time; default 4).
    pub concurrency: usize,
    /// Blob streams served at once; more are refused as busy (default 16).
    pub serving: usize,
    /// How often to look for blobs records reference but this node lacks
    /// (default 2 s).
    pub scan_interval: Duration,
    /// Longest wait for any one answer or piece (default 30 s).
    pub timeout: Duration,
    /// Pause before a failed blob is tried again (default 10 s).
    pub retry_after: Duration,
    /// How long the background scrub waits before each pass over the held
    /// blobs (re-hashing each; a bad one is set aside and fetched again);
    /// `None`: no background scrub (default 24 h).
    pub scrub_interval: Option<Duration>,
    /// Most bytes per second the background scrub reads (default 8 MiB/s).
    pub scrub_bytes_per_sec: u64,
    /// The largest blob fetched through a relay (default 4 MiB; 0: none).
    /// A larger one is fetched only over a direct connection: while every
    /// peer that may send it is reached through a relay, it waits
    /// ([`crate::BlobState::AwaitingDirect`]). Relays are someone's
    /// bandwidth, and their circuits have a byte cap that records share.
    pub relay_max: u64,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            serving: 16,
            scan_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(30),
            retry_after: Duration::from_secs(10),
            scrub_interval: Some(Duration::from_secs(24 * 3600)),
            scrub_bytes_per_sec: 8 << 20,
            relay_max: 4 << 20,
        }
    }
}

impl NodeConfig {
    /// A node listening on loopback TCP and QUIC (random ports), mDNS off.
    pub fn loopback(group_key: GroupKey) -> Self {
        Self {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
                "/ip4/127.0.0.1/udp/0/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            peers: Vec::new(),
            relays: Vec::new(),
            address_book: None,
            mdns: false,
            group_key,
            sync: SyncConfig::default(),
            redial_interval: Duration::from_secs(5),
            rejected_backoff: Duration::from_secs(60),
            anti_entropy: Some(Duration::from_secs(300)),
            recon: ReconLimits::default(),
            auto_sync: true,
            blobs: BlobConfig::default(),
            liveness: Duration::from_secs(15),
            connections: ConnectionCaps::default(),
            punch_delay: Duration::ZERO,
            age_out: Some(AGE_OUT_INTERVAL),
        }
    }
}
