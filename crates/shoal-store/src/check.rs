//! Integrity checks of the database file: the quick ones every open runs (an
//! empty file, and a page-bounded SQLite `quick_check`) and the full one
//! behind `shoal check` (SQLite's `integrity_check` over every page and
//! index, then Shoal's own invariants over every record row), with progress.
//!
//! It only reads and reports; it never repairs, moves or rewrites the file.

use crate::Store;
use crate::error::StoreError;
use crate::packed_slots::unpack_slots;
use rusqlite::Connection;
use shoal_core::recon::StateDigest;
use shoal_core::{CollectionName, RecordId, RecordState};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How many pages the check at open reads at most (16 MiB of 4 KiB pages,
/// some tens of milliseconds): a file up to that size is checked whole at
/// every open, a larger one up to this bound (`Store::check` reads it all).
pub const OPEN_CHECK_PAGES: u64 = 4 * 1024;

/// The problems a check lists at most (it stops at the first at open).
const MAX_PROBLEMS: usize = 20;

/// How many pages SQLite checks between two progress reports.
const PAGES_PER_REPORT: u64 = 256;

/// Which part of [`Store::check`] is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStage {
    /// SQLite's `integrity_check`: every page, every index against its table.
    Pages,
    /// Shoal's invariants, record row by record row.
    Records,
}

/// How far [`Store::check`] has come in its current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckProgress {
    /// The stage.
    pub stage: CheckStage,
    /// Pages or record rows checked so far.
    pub done: u64,
    /// Pages in the file, or record rows in the database.
    pub total: u64,
}

/// What a passing [`Store::check`] covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    /// Pages of the database file checked.
    pub pages: u64,
    /// Record rows whose invariants were checked.
    pub records: u64,
}

/// Refuses an existing file of 0 bytes: SQLite would take it for a new
/// database, and opening it would give the node a new identity over the
/// user's data path (a truncated copy, a failed restore). Only a missing file
/// is a new database.
pub(crate) fn refuse_empty(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "the file is empty (0 bytes), so it holds no Shoal database; restore it \
                     from a backup, or move it aside to create a new database"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// SQLite's `quick_check` at open, stopping at the first problem and after
/// [`OPEN_CHECK_PAGES`] pages (a larger file is checked up to there).
pub(crate) fn quick_check_at_open(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let mut seen = 0;
    conn.progress_handler(
        PAGES_PER_REPORT as i32,
        Some(move || {
            seen += PAGES_PER_REPORT;
            seen >= OPEN_CHECK_PAGES
        }),
    )
    .map_err(|e| StoreError::from_sqlite(path, e))?;
    let outcome = run_check(conn, "PRAGMA quick_check(1)");
    conn.progress_handler(0, None::<fn() -> bool>)
        .map_err(|e| StoreError::from_sqlite(path, e))?;
    match outcome {
        Ok(problems) => corrupt_if_any(path, "quick check", problems),
        // Stopped at the bound with nothing found so far.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
            Ok(())
        }
        Err(e) => Err(StoreError::from_sqlite(path, e)),
    }
}

/// Runs a check pragma; its rows, `["ok"]` when it found nothing.
fn run_check(conn: &Connection, pragma: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare(pragma)?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// `Corrupt` naming `check` and what it found, unless it found nothing.
fn corrupt_if_any(path: &Path, check: &str, problems: Vec<String>) -> Result<(), StoreError> {
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!(
            "SQLite's {check} found damaged pages: {}",
            problems.join("; ")
        ),
    })
}

impl Store {
    /// Checks the whole file: SQLite's `integrity_check` (every page, and
    /// every index against its table), then Shoal's invariants on every
    /// record row (its slots decode, and its life, rendered JSON, state
    /// digest and log position agree with them). Reports progress as it
    /// goes; reads everything, so it takes a while on a large file. Any
    /// problem is [`StoreError::Corrupt`], listing up to 20.
    pub fn check(
        &mut self,
        mut progress: impl FnMut(CheckProgress) + Send,
    ) -> Result<CheckReport, StoreError> {
        let sqlite = |e| StoreError::from_sqlite(&self.path, e);
        let total_pages: u64 = self
            .db
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .map_err(sqlite)? as u64;
        let pages = Arc::new(AtomicU64::new(0));
        let counted = pages.clone();
        self.db
            .conn
            .progress_handler(
                PAGES_PER_REPORT as i32,
                Some(move || {
                    counted.fetch_add(PAGES_PER_REPORT, Ordering::Relaxed);
                    false
                }),
            )
            .map_err(sqlite)?;
        // SQLite counts the pages; a thread beside it reports them.
        let finished = AtomicBool::new(false);
        let (outcome, cleared, mut progress) = std::thread::scope(|scope| {
            let relay = scope.spawn(|| {
                let mut last = None;
                loop {
                    let end = finished.load(Ordering::Acquire);
                    let done = pages.load(Ordering::Relaxed).min(total_pages);
                    if last != Some(done) {
                        last = Some(done);
                        progress(CheckProgress {
                            stage: CheckStage::Pages,
                            done,
                            total: total_pages,
                        });
                    }
                    if end {
                        return progress;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
            let outcome = run_check(
                &self.db.conn,
                &format!("PRAGMA integrity_check({MAX_PROBLEMS})"),
            );
            let cleared = self.db.conn.progress_handler(0, None::<fn() -> bool>);
            finished.store(true, Ordering::Release);
            let progress = relay
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (outcome, cleared, progress)
        });
        cleared.map_err(sqlite)?;
        corrupt_if_any(&self.path, "integrity check", outcome.map_err(sqlite)?)?;
        progress(CheckProgress {
            stage: CheckStage::Pages,
            done: total_pages,
            total: total_pages,
        });
        let records = self.check_records(&mut progress)?;
        Ok(CheckReport {
            pages: total_pages,
            records,
        })
    }

    /// Shoal's invariants over every record row, in one read transaction.
    fn check_records(&self, progress: &mut impl FnMut(CheckProgress)) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let mut inner = || -> Result<(u64, Vec<String>), StoreError> {
            let tx = self.db.conn.unchecked_transaction()?;
            let total: i64 = tx.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?;
            let total = total as u64;
            let mut stmt = tx.prepare(
                "SELECT c.name, r.rid, r.life, r.data, r.slots, r.dbv, r.digest
                 FROM records r JOIN collections c ON c.cid = r.cid",
            )?;
            let mut rows = stmt.query([])?;
            let mut problems = Vec::new();
            let mut done = 0u64;
            while let Some(row) = rows.next()? {
                let collection: String = row.get(0)?;
                let rid: String = row.get(1)?;
                let found = check_row(
                    &collection,
                    &rid,
                    row.get(2)?,
                    row.get(3)?,
                    row.get_ref(4)?.as_blob().map_err(rusqlite::Error::from)?,
                    row.get(5)?,
                    row.get_ref(6)?.as_blob().map_err(rusqlite::Error::from)?,
                );
                if let Err(problem) = found {
                    problems.push(format!("record {collection}/{rid}: {problem}"));
                    if problems.len() == MAX_PROBLEMS {
                        break;
                    }
                }
                done += 1;
                if done.is_multiple_of(1024) {
                    progress(CheckProgress {
                        stage: CheckStage::Records,
                        done,
                        total,
                    });
                }
            }
            progress(CheckProgress {
                stage: CheckStage::Records,
                done,
                total,
            });
            Ok((done, problems))
        };
        let (done, problems) = inner().map_err(|e| e.with_path(&path))?;
        if problems.is_empty() {
            Ok(done)
        } else {
            Err(StoreError::Corrupt {
                path,
                detail: problems.join("; "),
            })
        }
    }
}

/// One record row against its slots: what is wrong, if anything.
fn check_row(
    collection: &str,
    rid: &str,
    life: i64,
    data: Option<String>,
    slots: &[u8],
    dbv: i64,
    digest: &[u8],
) -> Result<(), String> {
    CollectionName::new(collection).map_err(|e| format!("bad collection name: {e}"))?;
    let id = RecordId::new(rid).map_err(|e| format!("bad record id: {e}"))?;
    let unpacked = unpack_slots(slots).map_err(|e| e.to_string())?;
    if let Some((slot, _, written)) = unpacked.iter().find(|(_, _, at)| at.0 as i64 > dbv) {
        return Err(format!(
            "slot {slot:?} written at db_version {} after the record's last change at {dbv}",
            written.0
        ));
    }
    let state = RecordState::from_slots(unpacked.into_iter().map(|(s, v, _)| (s, v)));
    if state.life().0 as i64 != life {
        return Err(format!("life column {life}, slots say {}", state.life().0));
    }
    if state.render_json() != data {
        return Err("stored JSON differs from the one its slots render".into());
    }
    if digest != StateDigest::of(&id, &state).0 {
        return Err("state digest differs from its slots'".into());
    }
    Ok(())
}
