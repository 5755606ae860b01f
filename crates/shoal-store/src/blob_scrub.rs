//! The scrub of held blobs: re-hashing a complete blob's file against its
//! name, and setting a bad one aside — its file moved to
//! `corrupt/<hash>-<unix ms>` (kept for inspection, never served), its row
//! dropped from the index of held blobs and the records referencing it
//! counted as missing it again (their `assets-missing` flag set), so the
//! node fetches it anew and the integrity report says `assets-missing`
//! meanwhile.
//!
//! Hashing needs no database lock ([`BlobFiles::check_blob`]); only setting
//! aside takes the write lock ([`Store::set_blob_aside`]). It does not decide
//! when or how fast to scrub (the CLI and the node do) and never fetches.

use crate::blob_claim::hash_file;
use crate::blob_files::{BlobFiles, io_error};
use crate::blob_index::unindex;
use crate::error::StoreError;
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use shoal_core::blob::BlobHash;
use std::fs;
use std::io;
use std::path::PathBuf;

/// What re-hashing one held blob found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobCheck {
    /// The file hashes to its name, and its outline matches.
    Good,
    /// The file is not the blob (or is gone, or its outline is damaged).
    Bad {
        /// What was wrong.
        detail: String,
    },
}

/// What verifying one held blob did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scrubbed {
    /// The blob is good; nothing changed.
    Good,
    /// The blob was bad and has been set aside (see [`Store::set_blob_aside`]).
    SetAside {
        /// What was wrong.
        detail: String,
        /// Where its file went (`None` if it was gone).
        moved_to: Option<PathBuf>,
    },
}

impl BlobFiles {
    /// Re-hashes the complete blob `hash` held here, streaming; `on_read` is
    /// told the length of each read (for progress, or to pace the reads).
    pub fn check_blob(
        &self,
        hash: &BlobHash,
        on_read: &mut dyn FnMut(u64),
    ) -> Result<BlobCheck, StoreError> {
        let path = self.final_path(hash);
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(BlobCheck::Bad {
                    detail: "its file is gone".into(),
                });
            }
            Err(e) => return Err(io_error(&path, "cannot open blob", e)),
        };
        let found = hash_file(&mut file, &path, Some(on_read))?;
        if found.hash != *hash {
            return Ok(BlobCheck::Bad {
                detail: format!("its {} bytes hash to {}", found.size, found.hash),
            });
        }
        match self.outline(hash) {
            Ok(Some(stored)) if stored == found => Ok(BlobCheck::Good),
            Ok(_) | Err(StoreError::Corrupt { .. } | StoreError::Io { .. }) => Ok(BlobCheck::Bad {
                detail: "its outline file is damaged".into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Moves the blob file `hash` (if here) to `corrupt/<hash>-<unix ms>` and
    /// removes its outline; returns where it went.
    fn move_aside(&self, hash: &BlobHash) -> Result<Option<PathBuf>, StoreError> {
        let from = self.final_path(hash);
        if !from.is_file() {
            let _ = fs::remove_file(self.outline_path(hash));
            return Ok(None);
        }
        let dir = self.root().join("corrupt");
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "cannot create directory", e))?;
        let to = dir.join(format!("{}-{}", hash.to_hex(), now_ms()));
        fs::rename(&from, &to).map_err(|e| io_error(&to, "cannot move a bad blob aside", e))?;
        let _ = fs::remove_file(self.outline_path(hash));
        Ok(Some(to))
    }
}

impl Store {
    /// Sets held blob `hash` aside after a check found it bad: in one write
    /// transaction it leaves the index of held blobs, the records
    /// referencing it count it as missing again (`assets-missing`), and its
    /// file is moved to `corrupt/` (returned; `None` if the file was gone).
    /// A blob not in the index is only moved aside.
    pub fn set_blob_aside(&mut self, hash: &BlobHash) -> Result<Option<PathBuf>, StoreError> {
        let files = self.blob_files();
        let tx = WriteTxn::begin(&mut self.db)?;
        if self
            .head_memo
            .refresh(&tx, tx.kept(), &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let deltas = unindex(&tx, hash)?;
        // Moved under the write lock, so no process indexes it meanwhile.
        let moved = files.move_aside(hash)?;
        tx.commit()?;
        self.recon.apply(&deltas);
        Ok(moved)
    }
}
