//! The backup directory `shoal backup` writes and `shoal restore` reads:
//!
//! ```text
//! DEST/backup.json    the manifest (this module's BackupManifest)
//! DEST/shoal.db       the database copy (one file, no write-ahead log)
//! DEST/shoal.blobs/   the held blobs it indexes, same layout as a data dir's
//! DEST/group.salt     the group's salt (not secret), if the node had one
//! DEST/peers.txt      the peers the node dialled, if any
//! DEST/group.key      ONLY with --include-secrets: the group key (mode 0600)
//! ```
//!
//! A backup without `--include-secrets` holds no secret: no group key, no
//! API token, and no node key (it is removed from the copy), so it can never
//! be started as the node it came from. This module owns the layout, the
//! manifest, the whole-file digest and copying the small files with their
//! modes; it does not copy the database or blobs (the store's `backup`
//! module does) and decides nothing about identity.

use crate::datadir::DataDir;
use crate::exit::usage;
use crate::peer_file::PEERS_FILE;
use crate::secrets::{self, GROUP_KEY_FILE, GROUP_SALT_FILE};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "backup.json";
/// The manifest's format tag.
pub const FORMAT: &str = "shoal-backup-1";

/// What a backup holds, written last (a directory without it is no backup).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// When the backup was made (unix ms).
    pub created_ms: u64,
    /// The peer id of the node backed up.
    pub peer_id: String,
    /// Its site id (the tie-break in its clocks).
    pub site_id: String,
    /// The version of the last transaction in the copy.
    pub db_version: u64,
    /// Live records in the copy.
    pub records: u64,
    /// Deleted records (tombstones) in the copy.
    pub tombstones: u64,
    /// The database file: size and BLAKE3 of its bytes.
    pub database: FileDigest,
    /// Blobs copied.
    pub blobs: u64,
    /// Bytes of blobs copied.
    pub blob_bytes: u64,
    /// Whether the copy keeps the node key (only with secrets).
    pub node_key: bool,
    /// Whether the backup holds the group key (`--include-secrets`).
    pub secrets: bool,
}

/// A file's size and BLAKE3 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 of the bytes, hex.
    pub blake3: String,
}

/// A backup directory.
#[derive(Debug, Clone)]
pub struct BackupDir {
    dir: PathBuf,
}

impl BackupDir {
    /// The backup directory at `dir` (nothing is checked yet).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database copy.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(crate::datadir::DB_FILE)
    }

    /// Reads the manifest, refusing a directory that is no backup.
    pub fn manifest(&self) -> Result<BackupManifest> {
        let path = self.dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(usage(format!(
                    "{} is not a Shoal backup: it has no {MANIFEST_FILE} (make one with `shoal \
                     backup DEST`)",
                    self.dir.display()
                )));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let manifest: BackupManifest = serde_json::from_slice(&bytes)
            .map_err(|e| usage(format!("{} is damaged: {e}", path.display())))?;
        if manifest.format != FORMAT {
            return Err(usage(format!(
                "{} is a backup of format {:?}; this Shoal reads {FORMAT:?}",
                self.dir.display(),
                manifest.format
            )));
        }
        Ok(manifest)
    }

    /// Writes the manifest (mode 0600, whole or not at all).
    pub fn write_manifest(&self, manifest: &BackupManifest) -> Result<()> {
        let path = self.dir.join(MANIFEST_FILE);
        let text = serde_json::to_vec_pretty(manifest)?;
        secrets::write_private(&path, &text)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The small files of a data directory a backup carries, and whether each
/// is secret.
pub fn carried_files(secrets: bool) -> Vec<&'static str> {
    let mut files = vec![GROUP_SALT_FILE, PEERS_FILE];
    if secrets {
        files.push(GROUP_KEY_FILE);
    }
    files
}

/// Copies the files `names` that exist from `from` to `to`, each written
/// whole with mode 0600; returns those copied.
pub fn copy_small_files(from: &Path, to: &Path, names: &[&'static str]) -> Result<Vec<String>> {
    let mut copied = Vec::new();
    for name in names {
        let source = from.join(name);
        let bytes = match std::fs::read(&source) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", source.display())),
        };
        let target = to.join(name);
        secrets::write_private(&target, &bytes)
            .with_context(|| format!("cannot write {}", target.display()))?;
        copied.push((*name).to_string());
    }
    Ok(copied)
}

/// The size and BLAKE3 of the file at `path`, streamed.
pub fn digest(path: &Path) -> Result<FileDigest> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok(FileDigest {
        bytes,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// Whether `dir` is absent or an empty directory (a place a backup or a
/// restore may be written).
pub fn is_absent_or_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// A directory being filled beside `target` (`.NAME.partial-PID`), renamed
/// to `target` when [`Staging::commit`]ted and removed if dropped before.
pub struct Staging {
    path: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Staging {
    /// Creates the staging directory (mode 0700) beside `target`.
    pub fn new(target: &Path) -> Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| usage(format!("{} has no directory name", target.display())))?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let path = parent.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        crate::datadir::create_private_dir(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            path,
            target: target.to_path_buf(),
            done: false,
        })
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The staging directory as a data directory.
    pub fn data_dir(&self) -> DataDir {
        DataDir::at(self.path.clone())
    }

    /// Moves the staging directory to the target (an empty target directory
    /// is replaced).
    pub fn commit(mut self) -> Result<()> {
        if self.target.is_dir() {
            std::fs::remove_dir(&self.target)
                .with_context(|| format!("cannot replace {}", self.target.display()))?;
        }
        std::fs::rename(&self.path, &self.target).with_context(|| {
            format!(
                "cannot move {} to {}",
                self.path.display(),
                self.target.display()
            )
        })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
