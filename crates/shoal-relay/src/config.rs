//! [`RelayConfig`] and [`RelayLimits`]: what a relay listens on, what it
//! announces, whom it admits and how much it carries. Plain data with
//! defaults; checked when the relay starts.

use libp2p::Multiaddr;
use shoal_core::sync::RelayToken;
use std::time::Duration;

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Addresses to listen on: TCP, QUIC, and WebSocket over TCP
    /// (`/ip4/…/tcp/N/ws`, for browser tabs).
    pub listen: Vec<Multiaddr>,
    /// Addresses the relay is reachable at from the internet, announced to
    /// peers and put in reservations; without one the relay grants no
    /// reservation (libp2p's relay protocol stays off until the relay has
    /// an external address).
    pub external: Vec<Multiaddr>,
    /// The group's relay token: only peers proving they hold the group key
    /// it derives from are served.
    pub token: RelayToken,
    /// Bounds on what is relayed.
    pub limits: RelayLimits,
}

/// Bounds on reservations and circuits. libp2p's defaults (2-minute
/// circuits of at most 128 KiB) would cut a sync catch-up off; these are
/// raised, and still bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Longest life of one circuit (default 1 h); the peers reconnect after.
    pub circuit_duration: Duration,
    /// Most bytes one circuit carries, both ways together (default 1 GiB).
    pub circuit_bytes: u64,
    /// Most circuits at once (default 256).
    pub circuits: usize,
    /// Most circuits at once per peer (default 16).
    pub circuits_per_peer: usize,
    /// Most reservations held at once (default 1024).
    pub reservations: usize,
    /// How long a reservation lasts before the peer renews it (default 1 h).
    pub reservation_duration: Duration,
    /// Per-peer rate limit: reservations and circuit requests one peer may
    /// make in a burst (default 30)…
    pub rate_burst: u32,
    /// …and how often one more is allowed after it (default 2 s).
    pub rate_refill: Duration,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            circuit_duration: Duration::from_secs(3600),
            circuit_bytes: 1 << 30,
            circuits: 256,
            circuits_per_peer: 16,
            reservations: 1024,
            reservation_duration: Duration::from_secs(3600),
            rate_burst: 30,
            rate_refill: Duration::from_secs(2),
        }
    }
}
