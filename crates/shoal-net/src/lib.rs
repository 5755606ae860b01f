//! Shoal's network layer: a libp2p node (TCP + Noise + Yamux and QUIC,
//! identify, ping, mDNS, explicit peers) that carries the bytes of the sans-IO
//! sync sessions of `shoal-core` between replicas, proves group membership
//! before any data flows, keeps a table of every peer's state, and fetches
//! the blobs records reference from peers that may send them, verified piece
//! by piece. Across NAT it holds reservations on members-only relays, learns
//! by AutoNAT v2 whether it is reachable, and remembers where it last
//! reached each member.
//!
//! The store is reached only through the [`Replica`] trait, so this crate
//! knows nothing of SQLite; `shoal` implements it and starts the node.
#![deny(missing_docs)]

mod address_book;
mod admission;
mod age_out;
mod behaviour;
mod blind_lookup;
mod blob_demand;
mod blob_fetch;
mod blob_scrub;
mod blob_serve;
mod blob_table;
mod config;
mod conn_paths;
mod driver;
mod federate;
mod filtered_report;
mod finder;
mod invite;
mod levelling;
mod listen;
mod liveness;
mod metrics;
mod node;
mod punch;
mod punch_delay;
mod reachability;
mod relay_client;
mod replica;
mod rule_watch;
mod session_task;
mod status;
mod transfer;

pub use address_book::ADDRESS_BOOK_FILE;
pub use admission::DeviceCheck;
pub use blob_demand::DemandError;
pub use blob_table::{BlobState, BlobTotals, BlobTransfer};
pub use config::{AGE_OUT_INTERVAL, BlobConfig, ConnectionCaps, NodeConfig};
pub use federate::{FedError, Levelled, Reconciliation};
pub use invite::{Invite, InviteError, MAX_INVITE_RELAYS};
pub use libp2p::{Multiaddr, PeerId};
pub use metrics::{
    DURATION_BUCKETS, DurationHistogram, HistogramSnapshot, NetMetrics, RejectionCount,
};
pub use node::{NetError, Node};
pub use reachability::Reachability;
pub use replica::{BlobSink, Replica, ReplicaError};
pub use shoal_core::sync::{
    GroupKey, GroupKeyError, GroupSalt, Rejection, RelayToken, RelayTokenError, SyncConfig,
};
pub use status::{HeldChanges, PeerPath, PeerProtocol, PeerState, PeerStatus, PunchStats, Traffic};
pub use transfer::Transfer;

/// The libp2p protocol the sync sessions speak.
pub const SYNC_PROTOCOL: libp2p::StreamProtocol =
    libp2p::StreamProtocol::new(shoal_core::sync::SYNC_PROTOCOL_NAME);

/// The libp2p protocol blobs are fetched over.
pub const BLOB_PROTOCOL: libp2p::StreamProtocol = libp2p::StreamProtocol::new("/shoal/blob/1");
