//! The tab's node metadata, persisted beside its records: its identity seed
//! and site id, the highest clock reading it used, and its change-log
//! position (`db_version`). On IndexedDB read and written inside every
//! write transaction, so all three move together with the data; the SQLite
//! store keeps the clock and position of local writes in their rows and
//! the metadata in memory between transactions (`sql/head.rs`).
//!
//! The seed is the tab's identity: it is the secret key of the tab's
//! ed25519 libp2p keypair ([`NodeMeta::keypair`]), so the tab's peer id is
//! stable across reloads (daemons keep a catch-up cursor per peer id), and
//! the site id of a new store is derived from that peer id exactly as a
//! native node derives its own (`SiteId::from_identity` of the peer id's
//! bytes).
//!
//! It owns the metadata's shape and encoding; it does not generate
//! randomness or read clocks (the caller passes both in).

use crate::error::WebError;
use libp2p_identity::{Keypair, PeerId};
use serde::{Deserialize, Serialize};
use shoal_core::{DbVersion, Hlc, SiteId};

/// The persisted metadata of one browser store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// 32 random bytes chosen at creation (hex): the node's identity seed,
    /// the secret key of its libp2p (ed25519) keypair.
    pub seed: String,
    /// The site id: the tie-break in clock order. For a store made since
    /// the tab had a network, `SiteId::from_identity` of its peer id's bytes
    /// (as native nodes); older stores keep the one they were made with.
    pub site: SiteId,
    /// The highest clock reading used or seen.
    pub hlc: Hlc,
    /// The change-log position of the last committed write.
    pub version: DbVersion,
}

impl NodeMeta {
    /// Metadata for a new store from 32 random bytes.
    pub fn new(seed: [u8; 32]) -> Self {
        let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        NodeMeta {
            site: SiteId::from_identity(&keypair_from_seed(seed).public().to_peer_id().to_bytes()),
            seed: seed_hex,
            hlc: Hlc::default(),
            version: DbVersion(0),
        }
    }

    /// The node's libp2p keypair (ed25519, its secret key the seed).
    pub fn keypair(&self) -> Result<Keypair, WebError> {
        let bad = || WebError::Corrupt("node metadata: the seed is not 64 hex digits".into());
        if self.seed.len() != 64 || !self.seed.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(keypair_from_seed(bytes))
    }

    /// The node's peer id (of [`NodeMeta::keypair`]).
    pub fn peer_id(&self) -> Result<PeerId, WebError> {
        Ok(self.keypair()?.public().to_peer_id())
    }

    /// As stored text.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("metadata always encodes")
    }

    /// Back from stored text.
    pub fn decode(text: &str) -> Result<Self, WebError> {
        serde_json::from_str(text).map_err(|e| WebError::Corrupt(format!("node metadata: {e}")))
    }
}

/// The ed25519 keypair whose secret key is `seed`.
fn keypair_from_seed(seed: [u8; 32]) -> Keypair {
    Keypair::ed25519_from_bytes(seed).expect("any 32 bytes are an ed25519 secret key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_the_site_follows_the_seed() {
        let a = NodeMeta::new([1; 32]);
        let b = NodeMeta::new([2; 32]);
        assert_ne!(a.site, b.site);
        assert_eq!(a.site, NodeMeta::new([1; 32]).site);
        assert_eq!(NodeMeta::decode(&a.encode()).unwrap(), a);
        assert!(matches!(NodeMeta::decode("{}"), Err(WebError::Corrupt(_))));
    }

    #[test]
    fn the_peer_id_follows_the_seed_and_names_the_site() {
        let a = NodeMeta::new([7; 32]);
        let again = NodeMeta::decode(&a.encode()).unwrap();
        let peer = a.peer_id().unwrap();
        assert_eq!(again.peer_id().unwrap(), peer);
        assert_ne!(NodeMeta::new([8; 32]).peer_id().unwrap(), peer);
        // As a native node derives its site from its peer id.
        assert_eq!(a.site, SiteId::from_identity(&peer.to_bytes()));
        let mut damaged = a.clone();
        damaged.seed = "zz".repeat(32);
        assert!(matches!(damaged.keypair(), Err(WebError::Corrupt(_))));
        damaged.seed = "ab".into();
        assert!(matches!(damaged.peer_id(), Err(WebError::Corrupt(_))));
    }
}
