//! The arguments of `shoal relay` and `shoal relay-token`.

use clap::Args;
use shoal::Multiaddr;
use std::path::PathBuf;

/// Arguments of `relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The relay's directory (its identity key, stats.json)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The group's relay token (64 hex digits, from `shoal relay-token`);
    /// SHOAL_RELAY_TOKEN works too
    #[arg(
        long,
        env = "SHOAL_RELAY_TOKEN",
        value_name = "HEX",
        hide_env_values = true
    )]
    pub token: String,
    /// Listen here (repeatable): TCP, QUIC, or WebSocket for browser tabs
    /// (/ip4/0.0.0.0/tcp/4002/ws) [default: /ip4/0.0.0.0/tcp/4001 and
    /// /ip4/0.0.0.0/udp/4001/quic-v1]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// An address the relay is reachable at from the internet (repeatable);
    /// without one the relay grants no reservations
    #[arg(long, value_name = "MULTIADDR")]
    pub external_address: Vec<Multiaddr>,
    /// Longest life of one circuit, in seconds
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub circuit_secs: u64,
    /// Most mebibytes one circuit carries
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub circuit_mib: u64,
    /// Most circuits at once
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub circuits: u64,
    /// Most circuits at once per peer
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub circuits_per_peer: u64,
    /// Reservation and circuit requests one peer may make in a burst
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,
    /// Seconds after which a peer may make one more request past its burst
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_refill_secs: u64,
}

/// Arguments of `relay-token`.
#[derive(Debug, Args)]
pub struct RelayTokenArgs {
    /// Read the group secret from this file (as `serve` does)
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
}
