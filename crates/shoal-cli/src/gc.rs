//! `shoal gc`: one tombstone collection pass over the database (the daemon
//! runs the same pass every `--gc-interval`), with a progress bar on a
//! terminal and a summary: rows reclaimed, bytes freed, tombstones kept and
//! the peers that hold collection back.
//!
//! The rules are the core's and the pass the store's; this file only parses,
//! shows progress and prints.

use crate::args::GcArgs;
use crate::datadir::DataDir;
use crate::output::Output;
use crate::progress::{Meter, Unit};
use anyhow::{Context, Result};
use serde_json::json;
use shoal::GcPolicy;
use std::time::Instant;

/// `shoal gc`.
pub fn run(data: &DataDir, args: GcArgs, out: &mut Output) -> Result<()> {
    let store = data.open()?;
    let policy = GcPolicy {
        horizon_ms: u64::try_from(args.horizon.as_millis()).unwrap_or(u64::MAX),
    };
    let started = Instant::now();
    let meter = Meter::new("collecting", Unit::Tombstones);
    let report = store
        .collect_tombstones(policy, |p| meter.set(p.examined, p.total))
        .with_context(|| format!("collection in {} failed", data.db_path().display()))?;
    meter.finish();
    let seconds = started.elapsed().as_secs_f64();
    let held = store.tombstones().context("cannot count tombstones")?;
    if out.is_json() {
        let waiting: Vec<_> = report
            .waiting_for
            .iter()
            .map(|(peer, acked)| json!({"peer": peer, "acked": acked.0}))
            .collect();
        out.json(&json!({
            "database": data.db_path(),
            "examined": report.examined,
            "rows_reclaimed": report.rows_reclaimed,
            "bytes_reclaimed": report.bytes_reclaimed,
            "kept": report.kept,
            "collected_total": held.collected,
            "waiting_for": waiting,
            "horizon_ms": policy.horizon_ms,
            "seconds": seconds,
        }))?;
        return Ok(());
    }
    out.line(format_args!(
        "collected {} of {} tombstones in {seconds:.1} s: {} bytes freed for reuse",
        report.rows_reclaimed, report.examined, report.bytes_reclaimed
    ))?;
    if report.kept > 0 {
        out.line(format_args!(
            "kept {}: not yet acknowledged by every known peer, and younger than the horizon",
            report.kept
        ))?;
        for (peer, acked) in &report.waiting_for {
            out.line(format_args!(
                "  waiting for {peer} (acknowledged up to {acked})"
            ))?;
        }
    }
    Ok(())
}
