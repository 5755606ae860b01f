//! Persisting the sharing rules (`sharing` and `local_only` tables) and
//! reading them back as the core's [`SharingRules`], which alone decides.
//!
//! Rules are read from the file on every use — two small tables — so a rule
//! set by another process (the CLI beside the daemon) applies at once.

use crate::Store;
use crate::error::StoreError;
use rusqlite::params;
use shoal_core::{CollectionName, ShareMode, SharingRules};

impl Store {
    /// The sharing rules as stored.
    pub fn sharing(&self) -> Result<SharingRules, StoreError> {
        let mut rules = SharingRules::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT peer, collection, mode FROM sharing")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mode: String = row.get(2)?;
            let mode = mode
                .parse::<ShareMode>()
                .map_err(|detail| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail,
                })?;
            rules.set(
                row.get::<_, String>(0)?,
                CollectionName::new(row.get::<_, String>(1)?)?,
                mode,
            );
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT collection FROM local_only")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            rules.set_local_only(CollectionName::new(row.get::<_, String>(0)?)?, true);
        }
        rules.set_devices(self.device_registry()?);
        Ok(rules)
    }

    /// Sets how `collection` flows with `peer` (its peer id text).
    pub fn set_sharing(
        &mut self,
        peer: &str,
        collection: &CollectionName,
        mode: ShareMode,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sharing (peer, collection, mode) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer, collection) DO UPDATE SET mode = excluded.mode",
            )?
            .execute(params![peer, collection.as_str(), mode.as_str()])?;
        Ok(())
    }

    /// Removes the rule for `peer` and `collection`: the pair goes back to
    /// the default (the `*` rule for the collection, else both ways).
    pub fn clear_sharing(
        &mut self,
        peer: &str,
        collection: &CollectionName,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM sharing WHERE peer = ?1 AND collection = ?2")?
            .execute(params![peer, collection.as_str()])?;
        Ok(())
    }

    /// Marks `collection` as never leaving this node (or lifts the mark).
    pub fn set_local_only(
        &mut self,
        collection: &CollectionName,
        local_only: bool,
    ) -> Result<(), StoreError> {
        let sql = match local_only {
            true => "INSERT OR IGNORE INTO local_only (collection) VALUES (?1)",
            false => "DELETE FROM local_only WHERE collection = ?1",
        };
        self.conn
            .prepare_cached(sql)?
            .execute([collection.as_str()])?;
        Ok(())
    }
}
