//! Blobs on demand, as stored: the node's setting (fetch referenced blobs
//! only when opened, and an optional byte budget for those fetched so), the
//! book of blobs fetched on demand (size, the peer each came from, last
//! open), and eviction: a blob chosen by `shoal_core::blob::pick_evictions`
//! leaves the index of held blobs and its file is removed, so it is remote
//! again — fetched anew on its next open, never reported as corrupt. A
//! blob open right now (a shared OS lock taken by `BlobFiles::open`) is
//! never evicted.
//!
//! It never fetches (the node does) and never decides which blob to evict
//! (the core's pure choice does).

use crate::blob_files::BlobFiles;
use crate::blob_index::{hash_of, indexed, unindex};
use crate::error::StoreError;
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use rusqlite::{OptionalExtension, params};
use shoal_core::blob::{BlobHash, MissingBlob, OnDemandBlob, pick_evictions};
use std::fs;
use std::io;

/// The node's blobs-on-demand setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnDemand {
    /// Fetch referenced blobs only when opened (off: as soon as their
    /// records arrive).
    pub enabled: bool,
    /// Most bytes of blobs fetched on demand to keep; past it the least
    /// recently opened ones another peer holds are evicted. `None`: no limit.
    pub budget: Option<u64>,
}

/// Whether a blob may be evicted as far as its open handles go.
enum EvictLock {
    /// Nobody has it open: the exclusive lock (held through the removal),
    /// or `None` if its file is gone or locks are not supported.
    Free(Option<fs::File>),
    /// Someone holds it open (a shared lock from [`BlobFiles::open`]).
    InUse,
}

impl BlobFiles {
    /// Takes the exclusive lock on held blob `hash` unless it is open.
    fn evict_lock(&self, hash: &BlobHash) -> EvictLock {
        let Ok(file) = fs::File::open(self.final_path(hash)) else {
            return EvictLock::Free(None);
        };
        match file.try_lock() {
            Ok(()) => EvictLock::Free(Some(file)),
            Err(fs::TryLockError::WouldBlock) => EvictLock::InUse,
            Err(fs::TryLockError::Error(_)) => EvictLock::Free(None),
        }
    }

    /// Removes the complete blob `hash`'s file and outline (if here). An
    /// open handle keeps reading the removed file on Unix.
    fn remove_blob(&self, hash: &BlobHash) -> Result<(), StoreError> {
        let _ = fs::remove_file(self.outline_path(hash));
        let path = self.final_path(hash);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::blob_files::io_error(
                &path,
                "cannot remove an evicted blob",
                e,
            )),
        }
    }
}

impl Store {
    /// The blobs-on-demand setting (off, no budget, until set).
    pub fn blobs_on_demand(&self) -> Result<OnDemand, StoreError> {
        let get = |key: &str| -> Result<Option<i64>, StoreError> {
            Ok(self
                .db
                .conn
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| r.get::<_, i64>(0))
                .optional()?)
        };
        Ok(OnDemand {
            enabled: get("blobs_on_demand")?.is_some_and(|v| v != 0),
            budget: get("blob_budget")?.map(|v| v.max(0) as u64),
        })
    }

    /// Sets the blobs-on-demand setting (kept across restarts).
    pub fn set_blobs_on_demand(&mut self, setting: OnDemand) -> Result<(), StoreError> {
        let tx = WriteTxn::begin(&mut self.db)?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('blobs_on_demand', ?1)",
            [i64::from(setting.enabled)],
        )?;
        match setting.budget {
            Some(bytes) => tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('blob_budget', ?1)",
                [i64::try_from(bytes).unwrap_or(i64::MAX)],
            )?,
            None => tx.execute("DELETE FROM meta WHERE key = 'blob_budget'", [])?,
        };
        tx.commit()?;
        Ok(())
    }

    /// The blob `hash` if live records reference it and it is not here.
    pub fn missing_blob(&self, hash: &BlobHash) -> Result<Option<MissingBlob>, StoreError> {
        if indexed(&self.db.conn, hash)? {
            return Ok(None);
        }
        let size: Option<i64> = self
            .db
            .conn
            .prepare_cached("SELECT MAX(size) FROM blob_refs WHERE hash = ?1")?
            .query_row([&hash.as_bytes()[..]], |r| r.get(0))?;
        let Some(size) = size else {
            return Ok(None);
        };
        Ok(Some(MissingBlob {
            hash: *hash,
            size: size as u64,
            collections: self.blob_collections(hash)?,
        }))
    }

    /// Notes that `hash` (`size` bytes) was fetched on demand from peer
    /// `source`, opened now.
    pub fn note_fetched_on_demand(
        &mut self,
        hash: &BlobHash,
        size: u64,
        source: &str,
    ) -> Result<(), StoreError> {
        self.db
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO blob_demand (hash, size, source, last_open_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                &hash.as_bytes()[..],
                size as i64,
                source,
                now_ms() as i64
            ])?;
        Ok(())
    }

    /// Notes an open of `hash` (only blobs fetched on demand are tracked).
    pub fn note_blob_opened(&mut self, hash: &BlobHash) -> Result<(), StoreError> {
        self.db
            .conn
            .prepare_cached("UPDATE blob_demand SET last_open_ms = ?2 WHERE hash = ?1")?
            .execute(params![&hash.as_bytes()[..], now_ms() as i64])?;
        Ok(())
    }

    /// Forgets that `hash` was fetched on demand: it was added here (written
    /// by this node), so it is never evicted.
    pub fn forget_on_demand(&mut self, hash: &BlobHash) -> Result<(), StoreError> {
        self.db
            .conn
            .prepare_cached("DELETE FROM blob_demand WHERE hash = ?1")?
            .execute([&hash.as_bytes()[..]])?;
        Ok(())
    }

    /// The blobs fetched on demand and held here, with `in_use` marked.
    pub fn on_demand_blobs(&self, in_use: &[BlobHash]) -> Result<Vec<OnDemandBlob>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, String, i64)> = self
            .db
            .conn
            .prepare_cached(
                "SELECT d.hash, d.size, d.source, d.last_open_ms FROM blob_demand d
                 JOIN blobs b ON b.hash = d.hash ORDER BY d.hash",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(hash, size, source, last)| {
                let hash = hash_of(&hash)?;
                Ok(OnDemandBlob {
                    in_use: in_use.contains(&hash),
                    hash,
                    size: size.max(0) as u64,
                    last_open_ms: last.max(0) as u64,
                    other_holders: usize::from(!source.is_empty()),
                })
            })
            .collect()
    }

    /// Evicts blobs fetched on demand past `budget` bytes (least recently
    /// opened first, only those another peer holds, never those in
    /// `in_use` nor any open through [`BlobFiles::open`] right now, in any
    /// process); returns those evicted. Each leaves the index of held
    /// blobs (its records count it as not here, so it is fetched again when
    /// opened) and its file is removed, under the write lock.
    pub fn evict_on_demand(
        &mut self,
        budget: u64,
        in_use: &[BlobHash],
    ) -> Result<Vec<BlobHash>, StoreError> {
        let mut held = self.on_demand_blobs(in_use)?;
        if held.iter().map(|b| b.size).sum::<u64>() <= budget {
            return Ok(Vec::new());
        }
        let files = self.blob_files();
        // Exclusive locks on those nobody has open, held until removed.
        let mut locks = Vec::new();
        for blob in held.iter_mut().filter(|b| !b.in_use) {
            match files.evict_lock(&blob.hash) {
                EvictLock::Free(lock) => locks.push(lock),
                EvictLock::InUse => blob.in_use = true,
            }
        }
        let victims = pick_evictions(&held, budget);
        if victims.is_empty() {
            return Ok(victims);
        }
        let tx = WriteTxn::begin(&mut self.db)?;
        if self
            .head_memo
            .refresh(&tx, tx.kept(), &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let mut deltas = Vec::new();
        for hash in &victims {
            deltas.extend(unindex(&tx, hash)?);
            tx.prepare_cached("DELETE FROM blob_demand WHERE hash = ?1")?
                .execute([&hash.as_bytes()[..]])?;
            // Removed under the write lock, so no process indexes it meanwhile.
            files.remove_blob(hash)?;
        }
        tx.commit()?;
        drop(locks);
        self.recon.apply(&deltas);
        Ok(victims)
    }
}
