//! The content-addressed blob directory beside a database file: complete
//! blobs under `<aa>/<hash>` with their outline (piece chaining values) under
//! `<aa>/<hash>.outline`, fetches in progress under `partial/<hash>` (only
//! verified pieces, in order, with the fetched outline beside them as
//! `partial/<hash>.outline`, written only through a claim: `blob_claim.rs`),
//! and files being added under `tmp/`.
//!
//! It owns file layout, atomic placement (write, fsync, rename, fsync the
//! directory) and streaming reads and writes — never a whole blob in memory.
//! It does not decide what is referenced or present for sync (the blob index
//! in SQLite, `blob_index.rs`, does) and never verifies a hash by itself
//! beyond what the core's [`Outline`] checks.

use crate::error::StoreError;
use shoal_core::blob::{BlobHash, Outline, OutlineBuilder, PIECE_LEN};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes read or written per IO call when streaming.
const IO_BUFFER: usize = 256 * 1024;

/// Distinguishes temporary files made by one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A blob directory. Cheap to clone; every call opens the files it needs, so
/// it is safe to use from several threads and processes at once.
#[derive(Debug, Clone)]
pub struct BlobFiles {
    root: PathBuf,
}

pub(crate) fn io_error(path: &Path, what: &str, error: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        detail: format!("{what}: {error}"),
    }
}

impl BlobFiles {
    /// The blob directory of the database at `db_path`: `<stem>.blobs` beside it.
    pub fn for_database(db_path: &Path) -> Self {
        Self {
            root: db_path.with_extension("blobs"),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn final_path(&self, hash: &BlobHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub(crate) fn outline_path(&self, hash: &BlobHash) -> PathBuf {
        let mut path = self.final_path(hash).into_os_string();
        path.push(".outline");
        PathBuf::from(path)
    }

    pub(crate) fn partial_path(&self, hash: &BlobHash) -> PathBuf {
        self.root.join("partial").join(hash.to_hex())
    }

    pub(crate) fn partial_outline_path(&self, hash: &BlobHash) -> PathBuf {
        self.root
            .join("partial")
            .join(format!("{}.outline", hash.to_hex()))
    }

    fn make_dir(&self, dir: &Path) -> Result<(), StoreError> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, "cannot create directory", e))
    }

    fn tmp_path(&self, what: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join("tmp");
        self.make_dir(&dir)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(dir.join(format!(
            "{what}-{}-{n}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )))
    }

    /// Whether the complete blob is here.
    pub fn has(&self, hash: &BlobHash) -> bool {
        self.final_path(hash).is_file()
    }

    /// Opens a complete blob for streaming reads; `None` if it is not here.
    pub fn open(&self, hash: &BlobHash) -> Result<Option<File>, StoreError> {
        let path = self.final_path(hash);
        match File::open(&path) {
            Ok(file) => {
                // A shared OS lock for as long as the handle lives: blobs on
                // demand never evict a blob open here (`blob_demand.rs`).
                // Best effort: a file system without locks, or an eviction
                // holding it this instant, leaves the handle unlocked (it
                // still reads the file, even once removed).
                let _ = file.try_lock_shared();
                Ok(Some(file))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, "cannot open blob", e)),
        }
    }

    /// Streams `reader` into the directory, computing its hash and outline on
    /// the way; at most `cap` bytes ([`StoreError::BlobTooLarge`] past that,
    /// and nothing is kept). A blob already here is not written twice.
    pub fn add(&self, reader: &mut dyn Read, cap: u64) -> Result<Outline, StoreError> {
        let tmp = self.tmp_path("add")?;
        let result = self.add_via(&tmp, reader, cap);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn add_via(&self, tmp: &Path, reader: &mut dyn Read, cap: u64) -> Result<Outline, StoreError> {
        let mut file = File::create(tmp).map_err(|e| io_error(tmp, "cannot create", e))?;
        let mut builder = OutlineBuilder::new();
        let mut buffer = vec![0u8; IO_BUFFER];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(tmp, "cannot read the input", e)),
            };
            size += n as u64;
            if size > cap {
                return Err(StoreError::BlobTooLarge { size, cap });
            }
            builder.update(&buffer[..n]);
            file.write_all(&buffer[..n])
                .map_err(|e| io_error(tmp, "cannot write", e))?;
        }
        let outline = builder.finish();
        self.place(tmp, file, &outline)?;
        Ok(outline)
    }

    /// Moves a finished, fsynced-here file into place with its outline.
    pub(crate) fn place(
        &self,
        from: &Path,
        file: File,
        outline: &Outline,
    ) -> Result<(), StoreError> {
        file.sync_all()
            .map_err(|e| io_error(from, "cannot fsync", e))?;
        drop(file);
        let target = self.final_path(&outline.hash);
        if target.is_file() {
            // Same content, already here.
            let _ = fs::remove_file(from);
            return Ok(());
        }
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        self.make_dir(&dir)?;
        if !outline.cvs.is_empty() {
            self.write_atomically(&self.outline_path(&outline.hash), &cv_bytes(&outline.cvs))?;
        }
        // The blob file last: its presence means the blob is complete.
        fs::rename(from, &target).map_err(|e| io_error(&target, "cannot place blob", e))?;
        sync_dir(&dir)
    }

    /// The outline of a complete blob here (read from its outline file, or
    /// made from the blob itself when it fits one piece); `None` if absent.
    pub fn outline(&self, hash: &BlobHash) -> Result<Option<Outline>, StoreError> {
        let Some(file) = self.open(hash)? else {
            return Ok(None);
        };
        let path = self.final_path(hash);
        let size = file
            .metadata()
            .map_err(|e| io_error(&path, "cannot stat", e))?
            .len();
        let cvs = if size <= PIECE_LEN {
            Vec::new()
        } else {
            let outline_path = self.outline_path(hash);
            let bytes = fs::read(&outline_path)
                .map_err(|e| io_error(&outline_path, "cannot read outline", e))?;
            cvs_of(&bytes)
        };
        let outline = Outline {
            hash: *hash,
            size,
            cvs,
        };
        outline.check().map_err(|e| StoreError::Corrupt {
            path: self.outline_path(hash),
            detail: format!("blob outline does not match its hash: {e}"),
        })?;
        Ok(Some(outline))
    }

    /// Appends piece `index` of a complete blob, read from disk, to `into`
    /// (not verified again: the receiver verifies every piece). A buffer
    /// reused across pieces is filled without being zeroed first.
    pub fn read_piece(
        &self,
        outline: &Outline,
        index: u64,
        into: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let path = self.final_path(&outline.hash);
        let mut file = File::open(&path).map_err(|e| io_error(&path, "cannot open blob", e))?;
        read_range(&mut file, &path, outline.piece_range(index), into)
    }

    /// The outline saved with a partial fetch, if it is there and whole.
    pub(crate) fn partial_outline(&self, hash: &BlobHash) -> Result<Option<Outline>, StoreError> {
        let path = self.partial_outline_path(hash);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, "cannot read partial outline", e)),
        };
        let Some((size, cvs)) = bytes.split_first_chunk::<8>() else {
            return Ok(None);
        };
        let outline = Outline {
            hash: *hash,
            size: u64::from_be_bytes(*size),
            cvs: cvs_of(cvs),
        };
        Ok(outline.check().is_ok().then_some(outline))
    }

    /// Saves the outline a partial fetch is verified against (before its
    /// first piece), so a later resume can verify what is here.
    pub(crate) fn save_partial_outline(&self, outline: &Outline) -> Result<(), StoreError> {
        let path = self.partial_outline_path(&outline.hash);
        if let Some(dir) = path.parent() {
            self.make_dir(dir)?;
        }
        let mut bytes = outline.size.to_be_bytes().to_vec();
        bytes.extend_from_slice(&cv_bytes(&outline.cvs));
        self.write_atomically(&path, &bytes)
    }

    /// Writes `bytes` to a temporary file, fsyncs it and renames it to `path`.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.tmp_path("outline")?;
        let mut out = File::create(&tmp).map_err(|e| io_error(&tmp, "cannot create", e))?;
        out.write_all(bytes)
            .and_then(|()| out.sync_all())
            .map_err(|e| io_error(&tmp, "cannot write", e))?;
        fs::rename(&tmp, path).map_err(|e| io_error(path, "cannot place", e))
    }

    /// Bytes of a partial fetch held (0 if none).
    pub fn partial_len(&self, hash: &BlobHash) -> u64 {
        fs::metadata(self.partial_path(hash)).map_or(0, |m| m.len())
    }

    /// Removes a complete blob (and its outline) and any partial fetch of it
    /// that no fetch has claimed (a claimed one is left to its fetch).
    pub fn remove(&self, hash: &BlobHash) -> Result<(), StoreError> {
        let claim = match self.claim(hash) {
            Ok(claim) => Some(claim),
            Err(StoreError::BlobBusy { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut paths = vec![self.final_path(hash), self.outline_path(hash)];
        if claim.is_some() {
            paths.extend([self.partial_path(hash), self.partial_outline_path(hash)]);
        }
        for path in paths {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, "cannot remove", e)),
            }
        }
        Ok(())
    }
}

/// Chaining values as stored: 32 bytes each, back to back.
fn cv_bytes(cvs: &[[u8; 32]]) -> Vec<u8> {
    cvs.concat()
}

/// Chaining values back from [`cv_bytes`] (a torn tail is dropped, and the
/// outline then fails its check).
fn cvs_of(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks_exact(32)
        .map(|c| <[u8; 32]>::try_from(c).unwrap_or_default())
        .collect()
}

/// Appends the bytes of `range` of `file` to `into`.
pub(crate) fn read_range(
    file: &mut File,
    path: &Path,
    range: std::ops::Range<u64>,
    into: &mut Vec<u8>,
) -> Result<(), StoreError> {
    file.seek(SeekFrom::Start(range.start))
        .map_err(|e| io_error(path, "cannot seek", e))?;
    let want = (range.end - range.start) as usize;
    into.reserve(want);
    let got = Read::take(&*file, want as u64)
        .read_to_end(into)
        .map_err(|e| io_error(path, "cannot read", e))?;
    if got != want {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            detail: format!("blob file ends {} bytes early", want - got),
        });
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot fsync directory", e))
}
