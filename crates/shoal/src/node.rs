//! Starting a sync node for a [`Store`]: the store is the network layer's
//! [`Replica`](shoal_net::Replica) — its key, cursors, log reads and atomic
//! apply-with-cursor — and [`Store::start_node`] runs a [`Node`] for it.
//!
//! This file is only the seam; the protocol is `shoal-core`'s and the
//! transport `shoal-net`'s.

use crate::error::Error;
use crate::store::Store;
use shoal_core::{Change, DbVersion, LogPosition, SyncCursor};
use shoal_net::{Node, NodeConfig, PeerId, Replica, ReplicaError};
use std::sync::Arc;
use tokio::sync::watch;

impl Replica for Store {
    fn keypair(&self) -> libp2p_identity::Keypair {
        self.db().identity().keypair().clone()
    }

    fn peer_cursor(&self, peer: &PeerId) -> Result<SyncCursor, ReplicaError> {
        Ok(Store::peer_cursor(self, &peer.to_string())?)
    }

    fn read_for_peer(
        &self,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<(Vec<Change>, LogPosition, bool), ReplicaError> {
        Ok(Store::read_for_peer(self, cursor, max_changes, max_bytes)?)
    }

    fn apply_from(
        &self,
        peer: &PeerId,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<(), ReplicaError> {
        Store::apply_from(self, &peer.to_string(), changes, cursor)?;
        Ok(())
    }

    fn watch_head(&self) -> watch::Receiver<DbVersion> {
        Store::watch_head(self)
    }

    fn refresh_head(&self) -> Result<(), ReplicaError> {
        Ok(Store::refresh_head(self)?)
    }
}

impl Store {
    /// Starts a background sync node for this store on the current tokio
    /// runtime: it listens, dials the configured peers, discovers others by
    /// mDNS if enabled, proves membership, and keeps the replicas converged.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use shoal::{GroupKey, NodeConfig, Store};
    /// let store = Store::open("notes.db")?;
    /// let key = GroupKey::from_passphrase("correct horse battery staple")?;
    /// let node = store.start_node(NodeConfig::loopback(key)).await?;
    /// println!("listening on {:?}", node.listen_addrs(std::time::Duration::from_secs(5)).await?);
    /// # Ok(()) }
    /// ```
    pub async fn start_node(&self, config: NodeConfig) -> Result<Node, Error> {
        Ok(Node::start(Arc::new(self.clone()), config).await?)
    }
}
