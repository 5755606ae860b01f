//! Persisting the sharing rules (`sharing` and `local_only` tables) and
//! reading them back as the core's [`SharingRules`], which alone decides.
//!
//! A rule set by another process (the CLI beside the daemon) applies at
//! once: the rules are read from the file again whenever the file may have
//! changed since they were last read — another connection committed
//! (SQLite's `data_version`) or this one changed any row (its
//! `total_changes`) — and are otherwise taken from [`SharingCache`]. They
//! are read on every push to every peer and every applied batch, where
//! reading them (with the device registry they carry) was 6–9 % of the
//! work. Inside a write transaction they are always read from the file
//! and not kept: what it wrote may yet be rolled back. A transaction of
//! this connection that wrote none of what the rules are read from (a
//! local write or an applied batch without device records: `write.rs`,
//! `apply.rs`) carries the cached rules over to the file's state after it
//! ([`SharingCache::carry_over`]), so a peer receiving one batch after
//! another does not read them again for each.

use crate::Store;
use crate::error::StoreError;
use rusqlite::params;
use rusqlite::{Connection, TransactionState};
use shoal_core::devices::DEVICES_COLLECTION;
use shoal_core::{CollectionName, ShareMode, SharingRules};
use std::sync::Mutex;

/// The sharing rules as last read, with the state of the file they were
/// read from.
#[derive(Debug, Default)]
pub(crate) struct SharingCache(Mutex<Option<(FileState, SharingRules)>>);

/// What tells whether the file may have changed: SQLite's `data_version`
/// (moves when another connection commits) and this connection's
/// `total_changes` (moves with every row it inserts, updates or deletes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileState {
    /// SQLite's `data_version` as this connection last read it.
    pub(crate) data_version: i64,
    /// This connection's `total_changes`.
    pub(crate) own_changes: u64,
}

impl FileState {
    /// The file's state now, or `None` inside a write transaction.
    fn of(conn: &Connection) -> Result<Option<Self>, StoreError> {
        if conn.transaction_state(None::<&str>)? == TransactionState::Write {
            return Ok(None);
        }
        Ok(Some(Self {
            data_version: crate::rows::data_version(conn)?,
            own_changes: conn.total_changes(),
        }))
    }
}

/// Whether writing records of `collection` can change the sharing rules:
/// the device registry they carry is read from the devices collection.
pub(crate) fn rules_read_from(collection: &CollectionName) -> bool {
    collection.as_str() == DEVICES_COLLECTION
}

impl SharingCache {
    fn get(&self, state: FileState) -> Option<SharingRules> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((at, rules)) if *at == state => Some(rules.clone()),
            _ => None,
        }
    }

    fn put(&self, state: FileState, rules: &SharingRules) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((state, rules.clone()));
    }

    /// Just after `conn` committed a transaction that began at `entering`
    /// (`data_version` as read inside it, `total_changes` before it) and
    /// wrote none of what the rules are read from (the sharing tables, the
    /// pinned owner, the devices collection): rules cached at `entering`
    /// hold after the commit too, which left `data_version` as it was. Rules
    /// cached at any other state — another connection committed before the
    /// transaction began, or this one wrote something else first — stay
    /// keyed as they are, and are read again.
    pub(crate) fn carry_over(&self, entering: FileState, conn: &Connection) {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, _)) = cached.as_mut()
            && *at == entering
        {
            at.own_changes = conn.total_changes();
        }
    }
}

impl Store {
    /// The sharing rules as stored (as committed by any process, and as
    /// written by this store's open transaction, if any).
    pub fn sharing(&self) -> Result<SharingRules, StoreError> {
        let state = FileState::of(&self.db.conn)?;
        if let Some(rules) = state.and_then(|state| self.sharing_cache.get(state)) {
            return Ok(rules);
        }
        let rules = self.read_sharing()?;
        if let Some(state) = state {
            self.sharing_cache.put(state, &rules);
        }
        Ok(rules)
    }

    fn read_sharing(&self) -> Result<SharingRules, StoreError> {
        let mut rules = SharingRules::default();
        let mut stmt = self
            .db
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
            .db
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
        self.db
            .conn
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
        self.db
            .conn
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
        self.db
            .conn
            .prepare_cached(sql)?
            .execute([collection.as_str()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn notes() -> CollectionName {
        CollectionName::new("notes").unwrap()
    }

    const PEER: &str = "12D3KooWPeer";

    /// How `store`'s rules, as it reads them now, share notes with `PEER`.
    fn mode(store: &Store) -> ShareMode {
        store.sharing().unwrap().mode(PEER, &notes())
    }

    #[test]
    fn a_rule_set_by_another_connection_applies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shoal.db");
        let daemon = Store::open(&path, StoreConfig::default()).unwrap();
        assert_eq!(mode(&daemon), ShareMode::Both);
        // The CLI beside the daemon: another connection to the same file.
        let mut cli = Store::open(&path, StoreConfig::default()).unwrap();
        cli.set_sharing(PEER, &notes(), ShareMode::Send).unwrap();
        assert_eq!(mode(&daemon), ShareMode::Send);
        cli.set_local_only(&notes(), true).unwrap();
        assert!(
            daemon
                .sharing()
                .unwrap()
                .local_only()
                .any(|c| c == &notes())
        );
    }

    #[test]
    fn a_rule_set_here_applies_at_once_and_unchanged_rules_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("shoal.db"), StoreConfig::default()).unwrap();
        let first = store.sharing().unwrap();
        // Kept: nothing changed in the file.
        assert_eq!(
            store
                .sharing_cache
                .get(FileState::of(&store.db.conn).unwrap().unwrap()),
            Some(first)
        );
        store
            .set_sharing(PEER, &notes(), ShareMode::Receive)
            .unwrap();
        assert_eq!(mode(&store), ShareMode::Receive);
        store.clear_sharing(PEER, &notes()).unwrap();
        assert_eq!(mode(&store), ShareMode::Both);
    }

    #[test]
    fn a_merged_batch_or_a_local_write_keeps_the_cached_rules_another_writers_commit_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut peer = Store::open(dir.path().join("peer.db"), StoreConfig::default()).unwrap();
        let op = |id: &str| crate::WriteOp {
            collection: notes(),
            id: shoal_core::RecordId::new(id).unwrap(),
            intent: shoal_core::Intent::Put(
                serde_json::json!({"t": id}).as_object().unwrap().clone(),
            ),
        };
        peer.write([op("n1")]).unwrap();
        let changes = peer
            .read_for_peer(PEER, shoal_core::SyncCursor::default(), 1_000, 1 << 20)
            .unwrap()
            .changes;
        let path = dir.path().join("shoal.db");
        let mut store = Store::open(&path, StoreConfig::default()).unwrap();
        let cached = |store: &Store| {
            let state = FileState::of(&store.db.conn).unwrap().unwrap();
            store.sharing_cache.get(state).is_some()
        };
        store.sharing().unwrap();
        let report = store
            .apply_from(PEER, &changes, shoal_core::SyncCursor::default())
            .unwrap();
        assert!(report.version.is_some(), "the batch was written");
        assert!(cached(&store), "carried over the batch");
        store.write([op("n2")]).unwrap();
        assert!(cached(&store), "carried over a local write");
        // A commit by another connection in between is not carried over.
        let mut cli = Store::open(&path, StoreConfig::default()).unwrap();
        cli.set_sharing(PEER, &notes(), ShareMode::Send).unwrap();
        assert!(!cached(&store));
        assert_eq!(mode(&store), ShareMode::Send);
    }

    #[test]
    fn rules_read_inside_a_write_transaction_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("shoal.db"), StoreConfig::default()).unwrap();
        store.db.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        store
            .db
            .conn
            .execute(
                "INSERT INTO sharing (peer, collection, mode) VALUES (?1, 'notes', 'none')",
                [PEER],
            )
            .unwrap();
        // The open transaction sees its own write...
        assert_eq!(mode(&store), ShareMode::None);
        store.db.conn.execute_batch("ROLLBACK").unwrap();
        // ...which, rolled back, is not what the file holds.
        assert_eq!(mode(&store), ShareMode::Both);
    }
}
