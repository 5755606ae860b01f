//! `shoal relay`'s engine: a self-hostable libp2p node that relays
//! connections (circuit relay v2) between members of one Shoal group that
//! cannot reach each other directly, and answers identify (so peers behind
//! NAT learn their public address, the first step of hole punching), ping
//! and AutoNAT v2 (dialing a member back, so it learns whether it is
//! reachable from the internet).
//!
//! It serves only members: a peer must first prove, on
//! [`RELAY_AUTH_PROTOCOL`](shoal_core::sync::RELAY_AUTH_PROTOCOL), that it
//! holds the group key (the relay holds only the [`RelayToken`] derived from
//! it), or it gets no reservation, no circuit and no dial-back. The relay never sees the
//! group's data: the relayed connection is encrypted end to end between the
//! two peers.
//!
//! This crate owns the relay's swarm and its admission; the command line is
//! `shoal-cli`'s.
#![deny(missing_docs)]

mod admission;
mod behaviour;
mod config;
mod gate;
mod identity;
mod members_only;
mod server;
mod stats;

pub use config::{RelayConfig, RelayLimits};
pub use identity::load_or_create_identity;
pub use server::{Relay, RelayError};
pub use shoal_core::sync::RelayToken;
pub use stats::RelayStats;
