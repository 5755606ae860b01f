//! Blobs through the library: adding a file's bytes as a stream (hashed and
//! outlined on the way, never held whole in memory), reading one back as a
//! stream, listing what is here and what is missing, and garbage collection.
//!
//! File work runs without the database lock; only the index update takes
//! it. Fetching missing blobs from peers is the node's job (`shoal-net`);
//! [`Store::open_blob_from`] asks the node for one on open (blobs on
//! demand), keeps the book of those fetched so and evicts past the budget.

use crate::error::Error;
use crate::store::Store;
use shoal_core::blob::{BlobHash, BlobRef, MissingBlob};
use shoal_store::{Arrival, BlobCheck, BlobInfo, OnDemand, Scrubbed, StoreError};
use std::fs::File;
use std::io::Read;
use std::time::Duration;

impl Store {
    /// Adds the bytes `reader` yields as a blob and returns the reference to
    /// put in a record field (`{"$blob": hash, "size": n}`; set `mime` for a
    /// `"type"`). Streams: memory stays bounded whatever the size. Refused
    /// past the store's `max_blob_bytes`, keeping nothing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let photo = store.add_blob(&b"not really a png"[..])?;
    /// let notes = store.collection("notes")?;
    /// notes.put("n1", serde_json::json!({"title": "cat", "photo": photo.to_json()}))?;
    /// let mut back = String::new();
    /// std::io::Read::read_to_string(&mut store.open_blob(&photo.hash)?.unwrap(), &mut back).unwrap();
    /// assert_eq!(back, "not really a png");
    /// # Ok::<(), shoal::Error>(())
    /// ```
    pub fn add_blob(&self, mut reader: impl Read) -> Result<BlobRef, Error> {
        let outline = self
            .inner
            .blob_files
            .add(&mut reader, self.inner.blob_cap)?;
        if self.with_db(|db| db.blob_arrived(&outline))? == Arrival::FileGone {
            // A garbage collection (another process's) removed the same
            // content just as it was placed; the reader is spent, so the
            // caller adds it again.
            return Err(Error::Store(StoreError::Io {
                path: self.inner.blob_files.root().to_path_buf(),
                detail: format!(
                    "blob {} was garbage-collected by another process as it was added; add it again",
                    outline.hash
                ),
            }));
        }
        // Written here: never evicted as a blob fetched on demand.
        self.with_db(|db| db.forget_on_demand(&outline.hash))?;
        Ok(BlobRef {
            hash: outline.hash,
            size: outline.size,
            mime: None,
        })
    }

    /// The largest blob this store adds or fetches, in bytes
    /// ([`StoreConfig::max_blob_bytes`](crate::StoreConfig::max_blob_bytes)).
    pub fn max_blob_bytes(&self) -> u64 {
        self.inner.blob_cap
    }

    /// Opens a blob held here for streaming reads; `None` if it is not here
    /// (yet: a node fetches the blobs its records reference).
    /// (With blobs on demand, the open is noted for the eviction order.)
    pub fn open_blob(&self, hash: &BlobHash) -> Result<Option<File>, Error> {
        let file = self.inner.blob_files.open(hash)?;
        if file.is_some() {
            // Best effort: a busy database must not stop a read.
            let noted = self.with_db(|db| match db.blobs_on_demand()?.enabled {
                true => db.note_blob_opened(hash),
                false => Ok(()),
            });
            if let Err(e) = noted {
                tracing::warn!(%hash, "cannot note the blob's open: {e}");
            }
        }
        Ok(file)
    }

    /// Opens a blob, fetching it first through `node` if it is not here
    /// (blobs on demand), waiting at most `wait`. `Ok(None)` if no live
    /// record references it and it is not here. With blobs on demand on, a
    /// blob fetched so is noted (with the peer it came from, which holds
    /// it) and, past the budget, the least recently opened such blobs that
    /// are not this one nor open right now (a handle from `open_blob` or
    /// this function holds a shared OS lock until closed) are evicted: they
    /// are remote again and fetched anew when next opened. Errors: [`Error::BlobUnavailable`] when no connected peer
    /// sent it, or it is still fetching when the wait runs out.
    pub async fn open_blob_from(
        &self,
        node: &shoal_net::Node,
        hash: &BlobHash,
        wait: Duration,
    ) -> Result<Option<File>, Error> {
        if let Some(file) = self.open_blob(hash)? {
            return Ok(Some(file));
        }
        // The node books it (`book_on_demand`) as it arrives.
        node.fetch_blob(hash, wait).await?;
        Ok(self.inner.blob_files.open(hash)?)
    }

    /// Books blob `hash` (`size` bytes) as fetched on demand from `peer`
    /// when blobs on demand are on, then evicts past the budget (never
    /// `hash` itself). Called by the node when such a fetch completes.
    pub(crate) fn book_on_demand(
        &self,
        hash: &BlobHash,
        size: u64,
        peer: &shoal_net::PeerId,
    ) -> Result<(), Error> {
        let setting = self.blobs_on_demand()?;
        if !setting.enabled {
            return Ok(());
        }
        self.with_db(|db| db.note_fetched_on_demand(hash, size, &peer.to_string()))?;
        if let Some(budget) = setting.budget {
            let evicted = self.with_db(|db| db.evict_on_demand(budget, &[*hash]))?;
            for gone in evicted {
                tracing::info!(hash = %gone, "blob evicted under the on-demand budget");
            }
        }
        Ok(())
    }

    /// The blobs-on-demand setting: off (blobs are fetched as soon as their
    /// records arrive) until [`Store::set_blobs_on_demand`].
    pub fn blobs_on_demand(&self) -> Result<OnDemand, Error> {
        self.with_db(|db| db.blobs_on_demand())
    }

    /// Sets blobs on demand (kept in the database across restarts): with
    /// `enabled`, a running node fetches referenced blobs only when opened
    /// through [`Store::open_blob_from`] (or the HTTP API); `budget` caps
    /// the bytes of blobs fetched so, evicting the least recently opened
    /// ones another peer holds (0 keeps only the one last opened). Blobs
    /// added here are never evicted. A budget below what is held now
    /// evicts at once; returns the blobs evicted.
    pub fn set_blobs_on_demand(&self, setting: OnDemand) -> Result<Vec<BlobHash>, Error> {
        self.with_db(|db| db.set_blobs_on_demand(setting))?;
        match (setting.enabled, setting.budget) {
            (true, Some(budget)) => self.with_db(|db| db.evict_on_demand(budget, &[])),
            _ => Ok(Vec::new()),
        }
    }

    /// The blobs fetched on demand and held here (size, last open, known
    /// holders), least recently opened first.
    pub fn on_demand_blobs(&self) -> Result<Vec<shoal_core::blob::OnDemandBlob>, Error> {
        let mut blobs = self.with_db(|db| db.on_demand_blobs(&[]))?;
        blobs.sort_by_key(|b| (b.last_open_ms, b.hash));
        Ok(blobs)
    }

    /// Whether the complete blob is here.
    pub fn has_blob(&self, hash: &BlobHash) -> Result<bool, Error> {
        self.with_db(|db| db.has_blob(hash))
    }

    /// Blobs held here, in hash order after `after`, at most `limit`.
    pub fn list_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<BlobInfo>, Error> {
        self.with_db(|db| db.list_blobs(after, limit))
    }

    /// Blobs live records reference that are not here, after `after`, at
    /// most `limit`.
    pub fn missing_blobs(
        &self,
        after: Option<&BlobHash>,
        limit: usize,
    ) -> Result<Vec<MissingBlob>, Error> {
        self.with_db(|db| db.missing_blobs(after, limit))
    }

    /// Removes blobs no live record has referenced for `grace_ms`; returns
    /// those removed.
    pub fn collect_garbage(&self, grace_ms: u64) -> Result<Vec<BlobHash>, Error> {
        self.with_db(|db| db.collect_garbage(grace_ms))
    }

    /// Re-hashes the held blob `hash` (streaming, without the database
    /// lock; `on_read` is told each read's length, for progress or pacing).
    /// A bad one — bytes that do not hash to its name, a damaged outline, a
    /// vanished file — is set aside: moved to the blob directory's
    /// `corrupt/` folder, no longer held (its records are `assets-missing`)
    /// and so fetched again by a running node.
    pub fn verify_blob(
        &self,
        hash: &BlobHash,
        on_read: &mut dyn FnMut(u64),
    ) -> Result<Scrubbed, Error> {
        match self.inner.blob_files.check_blob(hash, on_read)? {
            BlobCheck::Good => Ok(Scrubbed::Good),
            BlobCheck::Bad { detail } => {
                let moved_to = self.with_db(|db| db.set_blob_aside(hash))?;
                tracing::warn!(%hash, "blob set aside: {detail}");
                Ok(Scrubbed::SetAside { detail, moved_to })
            }
        }
    }
}
