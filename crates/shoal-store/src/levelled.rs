//! The rules last levelled with each peer: per peer, the flows (collection
//! and direction) the sharing rules held back when this node last levelled
//! with it, in the `levelled_rules` table. A sync session compares the rules
//! with this baseline as it starts, so a rule widened while the peer was away
//! (or the node stopped) still levels what it held back.
//!
//! This module only stores and loads the baseline; what to level, and when
//! the baseline moves, is decided by the core's [`HeldFlows`] and the
//! network's session.

use crate::Store;
use crate::error::StoreError;
use rusqlite::{OptionalExtension, params};
use shoal_core::HeldFlows;

impl Store {
    /// What the sharing rules held back with `peer` (its peer id text) when
    /// this node last levelled with it; `None` if never recorded (a peer not
    /// met yet, or met before this was kept).
    pub fn levelled_rules(&self, peer: &str) -> Result<Option<HeldFlows>, StoreError> {
        let held: Option<String> = self
            .db
            .conn
            .prepare_cached("SELECT held FROM levelled_rules WHERE peer = ?1")?
            .query_row([peer], |r| r.get(0))
            .optional()?;
        held.map(|text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("levelled rules of peer {peer}: {e}"),
            })
        })
        .transpose()
    }

    /// Records `held` as what the rules hold back with `peer`, levelled.
    pub fn set_levelled_rules(&mut self, peer: &str, held: &HeldFlows) -> Result<(), StoreError> {
        let text = serde_json::to_string(held).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("levelled rules of peer {peer}: {e}"),
        })?;
        self.db
            .conn
            .prepare_cached(
                "INSERT INTO levelled_rules (peer, held) VALUES (?1, ?2)
                 ON CONFLICT (peer) DO UPDATE SET held = excluded.held",
            )?
            .execute(params![peer, text])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use shoal_core::{CollectionName, ShareMode, SharingRules};

    #[test]
    fn levelled_rules_round_trip_per_peer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path, Default::default()).unwrap();
        assert_eq!(store.levelled_rules("p").unwrap(), None);
        let mut rules = SharingRules::default();
        rules.set("p", CollectionName::new("diary").unwrap(), ShareMode::Send);
        let held = rules.held_flows("p");
        store.set_levelled_rules("p", &held).unwrap();
        store.set_levelled_rules("q", &Default::default()).unwrap();
        drop(store);
        let store = Store::open(&path, Default::default()).unwrap();
        assert_eq!(store.levelled_rules("p").unwrap(), Some(held));
        assert_eq!(store.levelled_rules("q").unwrap(), Some(Default::default()));
        assert_eq!(store.levelled_rules("r").unwrap(), None);
    }
}
