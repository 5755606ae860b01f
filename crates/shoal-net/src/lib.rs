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
mod applier;
mod backoff;
mod behaviour;
mod blind_lookup;
mod blob_demand;
mod blob_fetch;
mod blob_scrub;
mod blob_serve;
mod blob_table;
mod command;
mod config;
mod conn_paths;
mod driver;
mod federate;
mod filtered_report;
mod finder;
mod frame_reader;
mod invite;
mod levelling;
mod listen;
mod liveness;
mod metrics;
mod node;
mod node_federation;
mod pull;
mod punch;
mod punch_delay;
mod quick_call;
mod reachability;
mod reconciliation;
mod relay_client;
mod replica;
mod rule_watch;
mod session_link;
mod session_task;
mod status;
mod transfer;

pub use address_book::ADDRESS_BOOK_FILE;
pub use blob_demand::DemandError;
pub use blob_table::{BlobState, BlobTotals, BlobTransfer};
pub use command::NetError;
pub use config::{AGE_OUT_INTERVAL, BlobConfig, ConnectionCaps, NodeConfig};
pub use federate::Levelled;
pub use invite::{Invite, InviteError, MAX_INVITE_RELAYS};
pub use libp2p::{Multiaddr, PeerId};
pub use metrics::{
    DURATION_BUCKETS, DurationHistogram, HistogramSnapshot, NetMetrics, RejectionCount,
};
pub use node::Node;
pub use reachability::Reachability;
pub use reconciliation::Reconciliation;
pub use replica::{ApplyError, Attempt, BlobSink, DeviceCheck, Replica, ReplicaError};
pub use session_link::FedError;
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
