//! [`Replica`]: what the network layer needs from a store — the node key, the
//! persisted per-peer cursors, bounded log reads, atomic apply-with-cursor,
//! and a watch on the log's head.
//!
//! It is the seam between the network and storage: this crate never touches
//! SQLite, and the store never touches a socket.

use libp2p::PeerId;
use libp2p::identity::Keypair;
use shoal_core::{Change, DbVersion, LogPosition, SyncCursor};
use tokio::sync::watch;

/// Any error a replica reports; the session turns it into a named rejection.
pub type ReplicaError = Box<dyn std::error::Error + Send + Sync>;

/// A local replica the node syncs. Calls may block briefly (SQLite); the node
/// runs them off the async executor.
pub trait Replica: Send + Sync + 'static {
    /// The node's persistent keypair (its libp2p identity).
    fn keypair(&self) -> Keypair;

    /// How far `peer`'s log has been applied here.
    fn peer_cursor(&self, peer: &PeerId) -> Result<SyncCursor, ReplicaError>;

    /// One bounded read of the local log for a peer at `cursor`: the changes,
    /// where the read stopped, and whether more remain.
    fn read_for_peer(
        &self,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<(Vec<Change>, LogPosition, bool), ReplicaError>;

    /// Merges changes from `peer` and persists `cursor` for it, atomically.
    fn apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<(), ReplicaError>;

    /// The db_version of the last local commit, watched for live pushes.
    fn watch_head(&self) -> watch::Receiver<DbVersion>;

    /// Notices commits other processes made to the same replica and moves the
    /// head watch; the node calls it periodically. Does nothing by default.
    fn refresh_head(&self) -> Result<(), ReplicaError> {
        Ok(())
    }
}
