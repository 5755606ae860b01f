//! The data directory: where it is (`--data`, `$SHOAL_DATA`, XDG default), and
//! opening the database in it.
//!
//! This module owns the rule that only `shoal init` creates a database: every
//! other command opens an existing one or fails with exit code 2 and a hint.

use crate::exit::usage;
use anyhow::{Context, Result};
use shoal::{Store, StoreConfig, StoreError, StoreOptions};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "shoal.db";

/// A resolved data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
    /// Given by `--data` / `$SHOAL_DATA` rather than defaulted.
    given: bool,
}

impl DataDir {
    /// The directory given (`--data` / `$SHOAL_DATA`), else
    /// `$XDG_DATA_HOME/shoal`, else `$HOME/.local/share/shoal`.
    /// An empty `given` counts as not given.
    pub fn resolve(given: Option<OsString>) -> Result<Self> {
        match given.filter(|p| !p.is_empty()) {
            Some(dir) => Ok(Self {
                dir: PathBuf::from(dir),
                given: true,
            }),
            None => Ok(Self {
                dir: default_dir().ok_or_else(|| {
                    usage("cannot find a data directory: $HOME is not set; pass --data DIR or set SHOAL_DATA")
                })?,
                given: false,
            }),
        }
    }

    /// The data directory `dir`, as if given by `--data`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir, given: true }
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file in the directory (`group.key`, `token`, `peers.txt`, ...).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// Whether the database file exists.
    pub fn has_database(&self) -> Result<bool> {
        let path = self.db_path();
        path.try_exists()
            .with_context(|| format!("cannot check for database {}", path.display()))
    }

    /// Opens the existing database; never creates one.
    pub fn open(&self) -> Result<Store> {
        let options = StoreOptions {
            config: StoreConfig {
                create_if_missing: false,
                ..Default::default()
            },
            ..Default::default()
        };
        match self.upgrading(|| Store::open_with(self.db_path(), options)) {
            Err(shoal::Error::Store(StoreError::Missing { .. })) => {}
            other => return self.named(other),
        }
        let same = if self.given {
            " with the same --data / SHOAL_DATA"
        } else {
            ""
        };
        Err(usage(format!(
            "no Shoal database in {}: {} does not exist; run `shoal init`{same} to create one",
            self.dir.display(),
            self.db_path().display(),
        )))
    }

    /// Creates the directory (mode 0700 for the parts it creates) and opens
    /// or creates the database in it.
    pub fn create(&self) -> Result<Store> {
        create_private_dir(&self.dir)
            .with_context(|| format!("cannot create data directory {}", self.dir.display()))?;
        self.open_or_create()
    }

    fn open_or_create(&self) -> Result<Store> {
        self.named(self.upgrading(|| Store::open(self.db_path())))
    }

    /// Runs `open`, saying on stderr first when it will upgrade the file's
    /// schema (a long open for a big file: the step that keys records by
    /// log position rewrites every one), and how long that took.
    fn upgrading<T>(
        &self,
        open: impl FnOnce() -> Result<T, shoal::Error>,
    ) -> Result<T, shoal::Error> {
        let path = self.db_path();
        // A file the check cannot read is the open's to report.
        let Ok(Some(upgrade)) = shoal::pending_upgrade(&path) else {
            return open();
        };
        eprintln!(
            "upgrading {} from schema version {} to {} ({} records; about 4 s per million, once)",
            path.display(),
            upgrade.from,
            upgrade.to,
            upgrade.records
        );
        let started = std::time::Instant::now();
        let opened = open()?;
        eprintln!("upgraded in {:.1} s", started.elapsed().as_secs_f64());
        Ok(opened)
    }

    /// Adds the database path to an open error that does not name it already.
    fn named(&self, opened: Result<Store, shoal::Error>) -> Result<Store> {
        let path = self.db_path();
        opened.map_err(|e| {
            // Corrupt/foreign-file errors name the file already; others do not.
            let names_path = e.to_string().contains(&*path.to_string_lossy());
            let e = anyhow::Error::new(e);
            if names_path {
                e
            } else {
                e.context(format!("cannot open database {}", path.display()))
            }
        })
    }
}

/// `$XDG_DATA_HOME/shoal` if that is set to an absolute path (the XDG spec
/// says to ignore relative ones), else `$HOME/.local/share/shoal`.
fn default_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    if let Some(xdg) = xdg {
        return Some(xdg.join("shoal"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    if home.as_os_str().is_empty() {
        return None;
    }
    Some(home.join(".local").join("share").join("shoal"))
}

/// Creates `dir` and its missing parents (mode 0700 for those it creates).
#[cfg(unix)]
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` and its missing parents.
#[cfg(not(unix))]
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
