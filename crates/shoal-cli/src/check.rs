//! `shoal check`: the full integrity check of the database file — every page
//! and index (SQLite's `integrity_check`), then Shoal's own invariants on
//! every record — with progress on stderr, ending in "ok" or exit code 3
//! naming what is damaged.
//!
//! It only reads; it never repairs or rewrites the file. (Every command
//! already runs a quick, bounded check when it opens the database.)

use crate::datadir::DataDir;
use crate::output::{Output, hint};
use anyhow::{Context, Result};
use serde_json::json;
use shoal::{CheckProgress, CheckStage};
use std::time::Instant;

/// `shoal check`.
pub fn run(data: &DataDir, out: &mut Output) -> Result<()> {
    let store = data.open()?;
    let started = Instant::now();
    let mut shown: Option<(CheckStage, u64)> = None;
    let report = store
        .check(move |p: CheckProgress| {
            let percent = (p.done * 100).checked_div(p.total).unwrap_or(100);
            // A line per 10 % of each stage.
            let step = percent / 10;
            if shown != Some((p.stage, step)) {
                shown = Some((p.stage, step));
                let what = match p.stage {
                    CheckStage::Pages => "pages",
                    CheckStage::Records => "records",
                };
                hint(format_args!(
                    "checking {what}: {percent:>3}% ({} of {})",
                    p.done, p.total
                ));
            }
        })
        .with_context(|| format!("check of {} failed", data.db_path().display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if out.is_json() {
        out.json(&json!({
            "database": data.db_path(),
            "ok": true,
            "pages": report.pages,
            "records": report.records,
            "seconds": seconds,
        }))?;
    } else {
        out.line(format_args!(
            "ok: {} pages and {} records of {} checked in {seconds:.1} s",
            report.pages,
            report.records,
            data.db_path().display()
        ))?;
    }
    Ok(())
}
