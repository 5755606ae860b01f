//! The `gc` scenario: storage before and after collecting deleted records.
//! One store is filled with N records, every one is deleted, and one
//! collection pass (`Store::collect_tombstones`) runs; the figures are the
//! tombstone rows it reclaimed, the bytes of the file it freed for reuse
//! (pages off SQLite's free list; the file itself shrinks only with
//! `VACUUM`) and the seconds the pass took.
//!
//! The store has never met a peer, so nothing waits for an acknowledgement:
//! the pass runs with a horizon of 0 (every delete is past it), which
//! collects exactly what acknowledged deletes would. The scenario fails if
//! a tombstone is left or a deleted record can be read back.

use crate::peers::{COLLECTION, filled_store, record_id, scratch_dir};
use crate::report::{print_json_last, round_to};
use anyhow::{Result, ensure};
use serde::Serialize;
use shoal::GcPolicy;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `shoal-bench gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records written and then deleted.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Directory for the temporary database (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct GcResult {
    scenario: &'static str,
    deleted: u64,
    rows_reclaimed: u64,
    bytes_reclaimed: u64,
    seconds: f64,
}

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let dir = scratch_dir(args.dir.as_deref())?;
    let store = filled_store(&dir.path().join("gc.db"), args.records)?;
    let items = store.collection(COLLECTION)?;
    for i in 0..args.records {
        items.delete(&record_id(i))?;
    }
    let held = store.tombstones()?.held;
    ensure!(
        held == args.records,
        "{held} tombstones after {} deletes",
        args.records
    );
    // Every delete is now older than a horizon of 0 ms.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let started = Instant::now();
    let report = store.collect_tombstones(GcPolicy { horizon_ms: 0 }, |_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    let after = store.tombstones()?;
    ensure!(
        after.held == 0,
        "{} tombstones left after the pass",
        after.held
    );
    ensure!(
        items.get(&record_id(0))?.is_none(),
        "a collected record reads back"
    );
    println!(
        "gc: {} deleted records, {} rows reclaimed, {} bytes freed, in {seconds:.2} s",
        args.records, report.rows_reclaimed, report.bytes_reclaimed
    );
    print_json_last(&GcResult {
        scenario: "gc",
        deleted: args.records,
        rows_reclaimed: report.rows_reclaimed,
        bytes_reclaimed: report.bytes_reclaimed,
        seconds: round_to(seconds, 4),
    })
}
