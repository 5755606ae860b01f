//! The one writer of a blob's partial file: a [`BlobClaim`] is the only way
//! to resume, append to or finish a fetch into `partial/<hash>`, and at most
//! one claim per blob exists at a time across every thread and process that
//! shares the blob directory.
//!
//! The claim is an OS lock (`flock`-style, through [`File::try_lock`]) on
//! `partial/<hash>.lock`. Such a lock belongs to one open file description,
//! so a second claimant is refused whether it is another thread of this
//! process or another process ([`StoreError::BlobBusy`]). A released claim
//! removes its lock file while still holding it; a claimant that locked a
//! file just unlinked sees that its file is no longer the one at the path and
//! tries again, so two claimants can never each hold "the" lock.
//!
//! Appends are checked against the claim (the right blob, the next piece,
//! the file holding exactly the pieces before it), and finishing re-hashes
//! the whole partial file and compares it with the outline before the rename:
//! bytes that do not hash to the blob's name are never placed.
//!
//! It does not decide which blobs to fetch or from whom (the node does), and
//! it does not index the placed blob (`blob_index.rs` does).

use crate::blob_files::{BlobFiles, io_error, read_range};
use crate::error::StoreError;
use shoal_core::blob::{BlobHash, Outline, OutlineBuilder, PIECE_LEN, resume_point};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A partial fetch is synced to disk every this many pieces.
const PIECES_PER_SYNC: u64 = 16;
/// Attempts at locking a lock file that keeps being replaced under us.
const LOCK_ATTEMPTS: usize = 16;
/// Bytes read per IO call when re-hashing.
const HASH_BUFFER: usize = 256 * 1024;

/// The exclusive right to write the partial file of one blob. Dropping it
/// releases the claim (what was written stays, for a later resume).
#[derive(Debug)]
pub struct BlobClaim {
    files: BlobFiles,
    hash: BlobHash,
    lock: File,
    lock_path: PathBuf,
    /// Pieces the partial file holds, as this claim knows it (set by
    /// [`BlobClaim::resume_point`], advanced by each append).
    next: u64,
    /// The partial file, opened for appending at the first append.
    partial: Option<File>,
}

impl BlobFiles {
    /// Claims the partial file of `hash` for one fetch. Refused with
    /// [`StoreError::BlobBusy`] while another claim on it exists anywhere
    /// (this process or another using the same directory).
    pub fn claim(&self, hash: &BlobHash) -> Result<BlobClaim, StoreError> {
        let dir = self.root().join("partial");
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "cannot create directory", e))?;
        let lock_path = dir.join(format!("{}.lock", hash.to_hex()));
        for _ in 0..LOCK_ATTEMPTS {
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io_error(&lock_path, "cannot open blob lock", e))?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::BlobBusy {
                        hash: hash.to_hex(),
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(io_error(&lock_path, "cannot lock blob", e));
                }
            }
            if same_file(&lock, &lock_path) {
                return Ok(BlobClaim {
                    files: self.clone(),
                    hash: *hash,
                    lock,
                    lock_path,
                    next: 0,
                    partial: None,
                });
            }
            // The claim we waited on was released and its lock file removed
            // between our open and our lock: ours is a stale file. Again.
        }
        Err(StoreError::BlobBusy {
            hash: hash.to_hex(),
        })
    }
}

impl BlobClaim {
    /// The blob claimed.
    pub fn hash(&self) -> &BlobHash {
        &self.hash
    }

    /// How many leading pieces of the partial file are here and verify
    /// against the outline saved with them; the file is cut back to them (a
    /// crash may have left an unsynced or torn tail). 0 when nothing usable
    /// is here. Appends continue from there.
    pub fn resume_point(&mut self) -> Result<u64, StoreError> {
        self.partial = None;
        let path = self.files.partial_path(&self.hash);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.next = 0;
                return Ok(0);
            }
            Err(e) => return Err(io_error(&path, "cannot open partial blob", e)),
        };
        let good = match self.files.partial_outline(&self.hash)? {
            Some(outline) => verified_prefix(&mut file, &path, &outline)?,
            None => 0,
        };
        let keep = good * PIECE_LEN;
        let len = file
            .metadata()
            .map_err(|e| io_error(&path, "cannot stat", e))?
            .len();
        if keep < len {
            file.set_len(keep)
                .map_err(|e| io_error(&path, "cannot truncate partial blob", e))?;
        }
        self.next = good;
        Ok(good)
    }

    /// Appends verified piece `index` to the partial file. It must be this
    /// claim's blob and the next piece, and the file must hold exactly the
    /// pieces before it; anything else is refused and nothing is written.
    pub fn append_piece(
        &mut self,
        outline: &Outline,
        index: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let path = self.files.partial_path(&self.hash);
        let refuse = |detail: String| StoreError::Io {
            path: path.clone(),
            detail,
        };
        if outline.hash != self.hash {
            return Err(refuse(format!(
                "the claim is for blob {}, not {}",
                self.hash, outline.hash
            )));
        }
        if index != self.next {
            return Err(refuse(format!(
                "piece {index} appended where piece {} is next",
                self.next
            )));
        }
        if index == 0 {
            self.files.save_partial_outline(outline)?;
            // A new fetch starts from an empty file whatever was there.
            self.partial = None;
            let file = File::create(&path).map_err(|e| io_error(&path, "cannot create", e))?;
            self.partial = Some(file);
        }
        if self.partial.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| io_error(&path, "cannot open partial blob", e))?;
            self.partial = Some(file);
        }
        let Some(file) = self.partial.as_mut() else {
            return Err(refuse("partial blob not open".into()));
        };
        let len = file
            .metadata()
            .map_err(|e| io_error(&path, "cannot stat", e))?
            .len();
        let expected = outline.piece_range(index).start;
        if len != expected {
            return Err(refuse(format!(
                "partial blob holds {len} bytes; piece {index} starts at {expected}"
            )));
        }
        file.write_all(bytes)
            .map_err(|e| io_error(&path, "cannot write partial blob", e))?;
        self.next += 1;
        // Flushed as it grows, so that placing the finished blob has little
        // left to sync (and a resume after a crash keeps most of it).
        if self.next.is_multiple_of(PIECES_PER_SYNC) {
            file.sync_data()
                .map_err(|e| io_error(&path, "cannot fsync partial blob", e))?;
        }
        Ok(())
    }

    /// Places the fully fetched blob. The whole partial file is hashed again
    /// first; if it is not exactly the blob (size, pieces and hash of
    /// `outline`, which must be this claim's), the partial fetch is removed
    /// and [`StoreError::BlobMismatch`] returned: nothing is placed.
    pub fn finish(mut self, outline: &Outline) -> Result<(), StoreError> {
        self.partial = None;
        if outline.hash != self.hash {
            return Err(StoreError::BlobMismatch {
                hash: self.hash.to_hex(),
                detail: format!("finished with the outline of blob {}", outline.hash),
            });
        }
        let path = self.files.partial_path(&self.hash);
        let mut file =
            File::open(&path).map_err(|e| io_error(&path, "cannot open partial blob", e))?;
        let found = hash_file(&mut file, &path, None)?;
        if found != *outline {
            self.discard_partial();
            return Err(StoreError::BlobMismatch {
                hash: self.hash.to_hex(),
                detail: format!(
                    "the fetched file holds {} bytes hashing to {} (expected {} bytes)",
                    found.size, found.hash, outline.size
                ),
            });
        }
        self.files.place(&path, file, outline)?;
        let _ = fs::remove_file(self.files.partial_outline_path(&self.hash));
        Ok(())
    }

    /// Removes the partial file and its outline (bad bytes, not to resume).
    fn discard_partial(&self) {
        let _ = fs::remove_file(self.files.partial_path(&self.hash));
        let _ = fs::remove_file(self.files.partial_outline_path(&self.hash));
    }
}

impl Drop for BlobClaim {
    fn drop(&mut self) {
        // Removed while still locked: the next claimant either opens a new
        // file or sees that the one it locked is no longer at the path.
        let _ = fs::remove_file(&self.lock_path);
        let _ = self.lock.unlock();
    }
}

/// Whether the open `file` is the file now at `path`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether the open `file` is the file now at `path` (elsewhere an open file
/// cannot be removed, so the one at the path is ours).
#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.is_file()
}

/// The outline of everything `file` holds, read from its start in
/// [`HASH_BUFFER`] reads; `on_read` (if any) is told each read's length.
pub(crate) fn hash_file(
    file: &mut File,
    path: &Path,
    mut on_read: Option<&mut dyn FnMut(u64)>,
) -> Result<Outline, StoreError> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_error(path, "cannot seek", e))?;
    let mut builder = OutlineBuilder::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(path, "cannot read", e)),
        };
        builder.update(&buffer[..n]);
        if let Some(f) = on_read.as_mut() {
            f(n as u64);
        }
    }
    Ok(builder.finish())
}

/// How many leading pieces of `file` verify against `outline` (the core's
/// [`resume_point`] over pieces read from disk); a read error is returned.
fn verified_prefix(file: &mut File, path: &Path, outline: &Outline) -> Result<u64, StoreError> {
    let len = file
        .metadata()
        .map_err(|e| io_error(path, "cannot stat", e))?
        .len();
    let (mut failure, mut piece) = (None, Vec::new());
    let good = resume_point(outline, |index, range| {
        if range.end > len {
            return false;
        }
        piece.clear();
        match read_range(file, path, range, &mut piece) {
            Ok(()) => outline.verify_piece(index, &piece).is_ok(),
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    });
    failure.map_or(Ok(good), Err)
}
