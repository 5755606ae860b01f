//! Blobs through the library: adding a file's bytes as a stream (hashed and
//! outlined on the way, never held whole in memory), reading one back as a
//! stream, listing what is here and what is missing, and garbage collection.
//!
//! File work runs without the database lock; only the index update takes
//! it. Fetching missing blobs from peers is the node's job (`shoal-net`).

use crate::error::Error;
use crate::store::Store;
use shoal_core::blob::{BlobHash, BlobRef, MissingBlob};
use shoal_store::{Arrival, BlobCheck, BlobInfo, Scrubbed, StoreError};
use std::fs::File;
use std::io::Read;

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
    pub fn open_blob(&self, hash: &BlobHash) -> Result<Option<File>, Error> {
        Ok(self.inner.blob_files.open(hash)?)
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
