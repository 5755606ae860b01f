//! The node's persistent identity: its keypair (stored in the database, created
//! on first open) and the site id derived from it.
//!
//! It owns key creation and decoding; it does not sign or authenticate anything.

use crate::error::StoreError;
use libp2p_identity::{Keypair, PeerId};
use rusqlite::{Connection, OptionalExtension};
use shoal_core::SiteId;

/// A node's keypair and the ids derived from it.
#[derive(Clone)]
pub struct NodeIdentity {
    keypair: Keypair,
    peer_id: PeerId,
    site: SiteId,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("peer_id", &self.peer_id)
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    fn from_keypair(keypair: Keypair) -> Self {
        let peer_id = keypair.public().to_peer_id();
        let site = SiteId::from_identity(&peer_id.to_bytes());
        Self {
            keypair,
            peer_id,
            site,
        }
    }

    /// The stored keypair, if there is one (a backup may have none).
    pub(crate) fn stored(conn: &Connection) -> Result<Option<Self>, StoreError> {
        let stored: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = 'node_key'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(bytes) = stored else {
            return Ok(None);
        };
        let keypair = Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| StoreError::BadNodeKey(e.to_string()))?;
        Ok(Some(Self::from_keypair(keypair)))
    }

    /// Loads the stored keypair, creating and storing one on first open.
    pub(crate) fn load_or_create(conn: &Connection) -> Result<Self, StoreError> {
        if let Some(identity) = Self::stored(conn)? {
            return Ok(identity);
        }
        let keypair = Keypair::generate_ed25519();
        let bytes = keypair
            .to_protobuf_encoding()
            .map_err(|e| StoreError::BadNodeKey(e.to_string()))?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('node_key', ?1)",
            [bytes],
        )?;
        Ok(Self::from_keypair(keypair))
    }

    /// The node's keypair (for the network layer).
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's site id, the tie-break in clock order.
    pub fn site(&self) -> SiteId {
        self.site
    }
}
