//! The tab's node metadata, persisted beside its records: its identity seed
//! and site id, the highest clock reading it used, and its change-log
//! position (`db_version`). Read and written inside every write transaction,
//! so all three move together with the data.
//!
//! It owns the metadata's shape and encoding; it does not generate
//! randomness or read clocks (the caller passes both in).

use crate::error::WebError;
use serde::{Deserialize, Serialize};
use shoal_core::{DbVersion, Hlc, SiteId};

/// The persisted metadata of one browser store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// 32 random bytes chosen at creation (hex): the node's identity seed.
    /// The site id is derived from it; the transport slice will derive the
    /// node's libp2p key from it.
    pub seed: String,
    /// The site id: the tie-break in clock order.
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
            site: SiteId::from_identity(&seed),
            seed: seed_hex,
            hlc: Hlc::default(),
            version: DbVersion(0),
        }
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
}
