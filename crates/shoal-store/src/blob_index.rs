//! The blob index in SQLite: which live records reference which blobs
//! (`blob_refs`, kept in the same transaction as the record by
//! `blob_refs.rs`), which blobs are complete here (`blobs`), each record's
//! count of referenced blobs absent (`records.missing`, which sets its
//! `assets-missing` reconciliation flag), and garbage collection of blobs
//! nothing references any more.
//!
//! It owns these tables and the flag; the files themselves are
//! `blob_files.rs`'s. It never reads a blob's bytes.

use crate::error::StoreError;
use crate::rows::{self, TreeDelta, Unhashed};
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::blob::{BlobHash, MissingBlob, Outline, refs_in};
use shoal_core::recon::StateDigest;
use shoal_core::{CollectionName, Direction, Life, RecordId, RecordState, SiteId, Slot};

pub(crate) fn hash_of(blob: &[u8]) -> Result<BlobHash, StoreError> {
    <[u8; 32]>::try_from(blob)
        .map(BlobHash::from_bytes)
        .map_err(|_| StoreError::Corrupt {
            path: Default::default(),
            detail: format!("blob hash of {} bytes in the index", blob.len()),
        })
}

/// What [`Store::blob_arrived`] did.
#[must_use = "a blob whose file is gone must be placed again"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The blob is in the index (now or already).
    Indexed,
    /// Its file is no longer in the directory (a garbage collection removed
    /// it after it was placed): nothing was recorded.
    FileGone,
}

/// A blob held here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob.
    pub hash: BlobHash,
    /// Its size in bytes.
    pub size: u64,
    /// How many live records reference it.
    pub references: u64,
    /// When it arrived here (Unix milliseconds).
    pub added_ms: u64,
}

impl Store {
    /// The blob directory beside this database.
    pub fn blob_files(&self) -> crate::BlobFiles {
        crate::BlobFiles::for_database(&self.path)
    }

    /// Records that a complete, verified blob is now in the blob directory:
    /// the records referencing it lose their `assets-missing` flag. One
    /// transaction; idempotent.
    ///
    /// The blob's file is looked for inside the write transaction: if a
    /// garbage collection (in this or another process) removed it after it
    /// was placed, nothing is recorded and the answer is
    /// [`Arrival::FileGone`] — place it again, then call this again.
    pub fn blob_arrived(&mut self, outline: &Outline) -> Result<Arrival, StoreError> {
        let files = self.blob_files();
        let tx = WriteTxn::begin(&mut self.db)?;
        if !files.has(&outline.hash) {
            return Ok(Arrival::FileGone);
        }
        if self
            .head_memo
            .refresh(&tx, tx.kept(), &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let hash = &outline.hash.as_bytes()[..];
        let inserted = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO blobs (hash, size, added_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![hash, outline.size as i64, now_ms() as i64])?;
        let mut deltas = Vec::new();
        if inserted == 1 {
            let referencing: Vec<(i64, String)> = tx
                .prepare_cached("SELECT cid, rid FROM blob_refs WHERE hash = ?1")?
                .query_map([hash], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (cid, rid) in referencing {
                deltas.extend(adjust_missing(&tx, cid, &rid, -1)?);
            }
        } else {
            tx.prepare_cached("UPDATE blobs SET orphan_ms = NULL WHERE hash = ?1")?
                .execute([hash])?;
        }
        tx.commit()?;
        self.recon.apply(&deltas);
        Ok(Arrival::Indexed)
    }

    /// Whether the complete blob is registered here.
    pub fn has_blob(&self, hash: &BlobHash) -> Result<bool, StoreError> {
        indexed(&self.db.conn, hash)
    }

    /// Up to `limit` blobs live records reference that are not here, in
    /// hash order after `after`.
    pub fn missing_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<MissingBlob>, StoreError> {
        let after = after.map_or(Vec::new(), |h| h.as_bytes().to_vec());
        let rows: Vec<(Vec<u8>, i64)> = self
            .db
            .conn
            .prepare_cached(
                "SELECT hash, MAX(size) FROM blob_refs r WHERE hash > ?1
                   AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = r.hash)
                 GROUP BY hash ORDER BY hash LIMIT ?2",
            )?
            .query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(hash, size)| {
                let hash = hash_of(&hash)?;
                Ok(MissingBlob {
                    collections: self.blob_collections(&hash)?,
                    hash,
                    size: size as u64,
                })
            })
            .collect()
    }

    /// The collections of the live records referencing `hash`.
    pub fn blob_collections(&self, hash: &BlobHash) -> Result<Vec<CollectionName>, StoreError> {
        let names: Vec<String> = self
            .db
            .conn
            .prepare_cached(
                "SELECT DISTINCT c.name FROM blob_refs r JOIN collections c ON c.cid = r.cid
                 WHERE r.hash = ?1 ORDER BY c.name",
            )?
            .query_map([&hash.as_bytes()[..]], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names
            .into_iter()
            .map(CollectionName::new)
            .collect::<Result<_, _>>()?)
    }

    /// Whether `peer` may read `hash`: some live record referencing it is in
    /// a collection this node sends to that peer, and in that record the
    /// reference was written by someone else — a field (or map entry) of the
    /// record's current life whose value holds the reference carries a clock
    /// whose site is not the requester's. A reference the requester wrote
    /// itself proves nothing (it may have learnt the hash anywhere), so it
    /// is answered exactly as a blob nobody references: no. The index rows
    /// checked exist at the time of the request, so a reference arriving
    /// after it is not counted. (`peer` is a peer id; a string that is not
    /// one has no site and only the sharing rules apply.) For a partial
    /// peer, only referencing records its filters admit count.
    pub fn blob_readable_by(&self, peer: &str, hash: &BlobHash) -> Result<bool, StoreError> {
        let rules = self.sharing()?;
        let requester = peer
            .parse::<libp2p_identity::PeerId>()
            .ok()
            .map(|p| SiteId::from_identity(&p.to_bytes()));
        let referencing: Vec<(i64, String, String)> = self
            .db
            .conn
            .prepare_cached(
                "SELECT r.cid, r.rid, c.name FROM blob_refs r JOIN collections c ON c.cid = r.cid
                 WHERE r.hash = ?1 ORDER BY r.cid, r.rid",
            )?
            .query_map([&hash.as_bytes()[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        // A partial peer: only records its filters admit count.
        let filter = crate::partial::PeerFilter::load(&self.db.conn, peer)?;
        for (cid, rid, name) in referencing {
            let collection = CollectionName::new(name)?;
            if !rules.allows(peer, &collection, Direction::ToPeer) {
                continue;
            }
            if filter.filters(&collection) {
                let id = RecordId::new(rid.clone())?;
                let data = crate::partial::record_data(&self.db.conn, &collection, &id)?;
                if !filter.admits(&collection, data.as_deref()) {
                    continue;
                }
            }
            let Some(site) = requester else {
                return Ok(true);
            };
            let state = rows::load(&self.db.kept, cid, &RecordId::new(rid)?)?.state;
            if written_by_another(&state, hash, site) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Blobs held here, in hash order after `after`, at most `limit`.
    pub fn list_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<BlobInfo>, StoreError> {
        let after = after.map_or(Vec::new(), |h| h.as_bytes().to_vec());
        let rows: Vec<(Vec<u8>, i64, i64, i64)> = self
            .db
            .conn
            .prepare_cached(
                "SELECT b.hash, b.size, b.added_ms,
                        (SELECT count(*) FROM blob_refs r WHERE r.hash = b.hash)
                 FROM blobs b WHERE b.hash > ?1 ORDER BY b.hash LIMIT ?2",
            )?
            .query_map(params![after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(hash, size, added, references)| {
                Ok(BlobInfo {
                    hash: hash_of(&hash)?,
                    size: size as u64,
                    references: references as u64,
                    added_ms: added as u64,
                })
            })
            .collect()
    }

    /// Garbage collection: a blob no live record references is marked; one
    /// that stayed unreferenced for `grace_ms` is removed from the index
    /// ([`Store::unindex_orphans`]) and then from the directory
    /// ([`Store::remove_unindexed`]). Returns the blobs removed.
    pub fn collect_garbage(&mut self, grace_ms: u64) -> Result<Vec<BlobHash>, StoreError> {
        let doomed = self.unindex_orphans(grace_ms)?;
        self.remove_unindexed(&doomed)
    }

    /// The first half of [`Store::collect_garbage`]: marks unreferenced
    /// blobs, and drops from the index those unreferenced for `grace_ms`
    /// (their files stay). Returns the blobs dropped.
    pub fn unindex_orphans(&mut self, grace_ms: u64) -> Result<Vec<BlobHash>, StoreError> {
        let now = now_ms() as i64;
        let tx = WriteTxn::begin(&mut self.db)?;
        tx.execute(
            "UPDATE blobs SET orphan_ms = NULL WHERE orphan_ms IS NOT NULL
               AND EXISTS (SELECT 1 FROM blob_refs r WHERE r.hash = blobs.hash)",
            [],
        )?;
        tx.execute(
            "UPDATE blobs SET orphan_ms = ?1 WHERE orphan_ms IS NULL
               AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.hash = blobs.hash)",
            [now],
        )?;
        let doomed: Vec<Vec<u8>> = tx
            .prepare("SELECT hash FROM blobs WHERE orphan_ms IS NOT NULL AND orphan_ms <= ?1")?
            // A grace past i64::MAX ms must not wrap into the future (or overflow).
            .query_map(
                [now.saturating_sub(i64::try_from(grace_ms).unwrap_or(i64::MAX))],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        for hash in &doomed {
            tx.execute("DELETE FROM blobs WHERE hash = ?1", [hash])?;
        }
        tx.commit()?;
        doomed.iter().map(|hash| hash_of(hash)).collect()
    }

    /// The second half of [`Store::collect_garbage`]: removes the files of
    /// `hashes` that are still not in the index, holding the write lock so
    /// that no process can index one meanwhile (one that places the file
    /// again sees it gone in [`Store::blob_arrived`] and places it anew).
    /// Returns the blobs whose files were removed.
    pub fn remove_unindexed(&mut self, hashes: &[BlobHash]) -> Result<Vec<BlobHash>, StoreError> {
        let files = self.blob_files();
        let tx = WriteTxn::begin(&mut self.db)?;
        let mut removed = Vec::new();
        for hash in hashes {
            if !indexed(&tx, hash)? {
                files.remove(hash)?;
                removed.push(*hash);
            }
        }
        tx.commit()?;
        Ok(removed)
    }
}

/// Whether some field or map entry of `state`'s current life holds a
/// reference to `hash` and was written by a site other than `site`.
fn written_by_another(state: &RecordState, hash: &BlobHash, site: SiteId) -> bool {
    let hex = hash.to_hex();
    state.is_alive()
        && state.slots().any(|(slot, version)| {
            let Some(value) = version.value.as_ref() else {
                return false;
            };
            !matches!(slot, Slot::Life)
                && version.life == state.life()
                && version.clock.site != site
                && value.as_str().contains(&hex)
                && refs_in(&value.to_value()).is_ok_and(|refs| refs.iter().any(|r| r.hash == *hash))
        })
}

/// Whether `hash` is in the index of complete blobs.
pub(crate) fn indexed(conn: &Connection, hash: &BlobHash) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)")?
        .query_row([&hash.as_bytes()[..]], |r| r.get(0))?)
}

/// Takes held blob `hash` out of the index of complete blobs, if it is
/// there: the records referencing it count it as missing again. Returns
/// how their reconciliation elements moved. The caller removes or moves
/// the file under the same write transaction.
pub(crate) fn unindex(tx: &Connection, hash: &BlobHash) -> Result<Vec<TreeDelta>, StoreError> {
    let mut deltas = Vec::new();
    if !indexed(tx, hash)? {
        return Ok(deltas);
    }
    let key = &hash.as_bytes()[..];
    tx.prepare_cached("DELETE FROM blobs WHERE hash = ?1")?
        .execute([key])?;
    let referencing: Vec<(i64, String)> = tx
        .prepare_cached("SELECT cid, rid FROM blob_refs WHERE hash = ?1")?
        .query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (cid, rid) in referencing {
        deltas.extend(adjust_missing(tx, cid, &rid, 1)?);
    }
    Ok(deltas)
}

/// Moves record `(cid, rid)`'s missing count by `by`, and returns how its
/// reconciliation element moved if its flag changed.
pub(crate) fn adjust_missing(
    tx: &Connection,
    cid: i64,
    rid: &str,
    by: i64,
) -> Result<Option<TreeDelta>, StoreError> {
    let row: Option<(i64, Vec<u8>, i64)> = tx
        .prepare_cached(
            "UPDATE records SET missing = max(0, missing + ?3) WHERE cid = ?1 AND rid = ?2
             RETURNING life, digest, missing",
        )?
        .query_row(params![cid, rid, by], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((life, digest, missing)) = row else {
        return Ok(None);
    };
    crate::recon_index::set_missing(tx, cid, rid, missing)?;
    let before = (missing - by).max(0);
    if (before > 0) == (missing > 0) {
        return Ok(None);
    }
    // The element moves without the log head moving: a saved tree would
    // still look true.
    crate::recon_saved::forget(tx, cid)?;
    let digest =
        StateDigest(
            <[u8; 16]>::try_from(digest.as_slice()).map_err(|_| StoreError::Corrupt {
                path: Default::default(),
                detail: "record digest of the wrong length".into(),
            })?,
        );
    let life = Life(life as u64);
    let id = RecordId::new(rid)?;
    Ok(Some(TreeDelta {
        cid,
        id,
        old: Some(Unhashed {
            digest,
            flags: rows::flags_of(life, before > 0),
        }),
        new: Unhashed {
            digest,
            flags: rows::flags_of(life, missing > 0),
        },
    }))
}
