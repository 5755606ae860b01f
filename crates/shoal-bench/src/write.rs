//! The `write` scenario: how fast Shoal commits local writes next to raw SQLite.
//!
//! Single puts: `--records` puts of a small record (two short strings and a
//! bool), each its own transaction, through [`shoal::Collection::put`]; against
//! raw rusqlite inserting the same JSON into `t (id TEXT PRIMARY KEY, data TEXT)`
//! with a cached prepared statement, one transaction per row. Both sides run
//! in WAL mode with the same `synchronous` setting, on fresh databases every
//! round. Rounds alternate the sides (shoal 1, sqlite 1, shoal 2, ...) so that
//! machine noise hits both alike, and the medians over rounds are reported.
//!
//! Batch: `--batch` records in one [`shoal::Collection::put_many`] transaction
//! per round. Two raw SQLite rates are shown beside it: the same inserts
//! into `t` in one transaction, and, in `sqlite_layout_batch_per_s`, raw
//! SQLite running Shoal's own per-record statements on Shoal's layout
//! (`raw_layout.rs`) — what a batch could reach if nothing but SQLite cost.
//!
//! Only the write loop is timed: opening the store, creating tables and
//! closing are not. Building each record's JSON is timed on both sides, as an
//! application pays for it either way.

use crate::progress::Progress;
use crate::raw_layout;
use crate::report::{median, micros_per_op, per_second, print_json_last, rate, round_to, verdict};
use anyhow::{Context, ensure};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::{Value, json};
use shoal::{Durability, Store, StoreConfig, StoreOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Single-put throughput relative to raw SQLite that the write path must reach.
const TARGET_RATIO: f64 = 0.85;
/// Records per second that one large `put_many` must reach.
const TARGET_BATCH_PER_S: f64 = 300_000.0;

/// Options of `shoal-bench write`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Single-record puts per round and side.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Commit durability, for both sides: WAL with synchronous=NORMAL or FULL.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Normal)]
    durability: DurabilityArg,
    /// Rounds; medians over rounds are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Records in the one-transaction batch measured each round.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DurabilityArg {
    Normal,
    Full,
}

impl DurabilityArg {
    fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Full => "full",
        }
    }

    fn shoal(self) -> Durability {
        match self {
            Self::Normal => Durability::Normal,
            Self::Full => Durability::Full,
        }
    }

    /// The `synchronous` pragma value Shoal uses for this durability.
    fn synchronous(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// The JSON line; field order is the documented one.
#[derive(Debug, Serialize)]
struct WriteReport {
    scenario: &'static str,
    records: u64,
    durability: &'static str,
    shoal_per_s: u64,
    sqlite_per_s: u64,
    ratio: f64,
    batch_per_s: u64,
    sqlite_batch_per_s: u64,
    sqlite_layout_batch_per_s: u64,
}

/// The id of record `i`: `rec-00000001`.
fn record_id(i: u64) -> String {
    format!("rec-{i:08}")
}

/// The body of record `i`: two short strings and a bool.
fn record(i: u64) -> Value {
    json!({"title": format!("task {i}"), "owner": "alice", "done": i.is_multiple_of(2)})
}

/// One round's measurements, in operations per second.
#[derive(Debug, Clone, Copy)]
struct Round {
    shoal: f64,
    sqlite: f64,
    shoal_batch: f64,
    sqlite_batch: f64,
    sqlite_layout_batch: f64,
}

/// Runs the scenario and prints its report.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    println!(
        "write: {} single-record puts per side (one transaction each) and a {}-record batch, \
         WAL + synchronous={}, {} rounds, databases under {}",
        args.records,
        args.batch,
        args.durability.synchronous(),
        args.rounds,
        base.display()
    );
    let progress = Progress::new(args.rounds * (2 * args.records + 3 * args.batch));
    let mut rounds = Vec::new();
    for r in 1..=args.rounds {
        let round = Round {
            shoal: measured(
                &progress,
                format!("round {r}: shoal puts"),
                args.records,
                || shoal_puts(&base, args.records, args.durability, &progress),
            )?,
            sqlite: measured(
                &progress,
                format!("round {r}: sqlite puts"),
                args.records,
                || sqlite_puts(&base, args.records, args.durability, &progress),
            )?,
            shoal_batch: measured(
                &progress,
                format!("round {r}: shoal batch"),
                args.batch,
                || shoal_batch(&base, args.batch, args.durability),
            )?,
            sqlite_batch: measured(
                &progress,
                format!("round {r}: sqlite batch"),
                args.batch,
                || sqlite_batch(&base, args.batch, args.durability),
            )?,
            sqlite_layout_batch: measured(
                &progress,
                format!("round {r}: sqlite batch, shoal's layout"),
                args.batch,
                || sqlite_layout_batch(&base, args.batch, args.durability),
            )?,
        };
        progress.suspend(|| {
            println!(
                "round {r}: single puts shoal {} ({:.1} us/put), sqlite {} ({:.1} us/put), \
                 ratio {:.3}; batch shoal {}, sqlite {}, sqlite with shoal's layout {}",
                rate(round.shoal),
                micros_per_op(round.shoal),
                rate(round.sqlite),
                micros_per_op(round.sqlite),
                round.shoal / round.sqlite,
                rate(round.shoal_batch),
                rate(round.sqlite_batch),
                rate(round.sqlite_layout_batch),
            )
        });
        rounds.push(round);
    }
    progress.clear();

    let pick = |f: fn(&Round) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let shoal = pick(|r| r.shoal);
    let sqlite = pick(|r| r.sqlite);
    let shoal_batch = pick(|r| r.shoal_batch);
    let sqlite_batch = pick(|r| r.sqlite_batch);
    let sqlite_layout_batch = pick(|r| r.sqlite_layout_batch);
    let ratio = shoal / sqlite;
    println!(
        "median of {} rounds: single puts shoal {} ({:.1} us/put), sqlite {} ({:.1} us/put), \
         ratio {:.3} (median of per-round ratios {:.3}); batch shoal {}, sqlite {}, \
         sqlite with shoal's layout {}",
        rounds.len(),
        rate(shoal),
        micros_per_op(shoal),
        rate(sqlite),
        micros_per_op(sqlite),
        ratio,
        pick(|r| r.shoal / r.sqlite),
        rate(shoal_batch),
        rate(sqlite_batch),
        rate(sqlite_layout_batch),
    );
    println!(
        "target single-put ratio >= {TARGET_RATIO}: {} ({ratio:.3})",
        verdict(ratio >= TARGET_RATIO)
    );
    println!(
        "target batch >= {}: {} ({})",
        rate(TARGET_BATCH_PER_S),
        verdict(shoal_batch >= TARGET_BATCH_PER_S),
        rate(shoal_batch)
    );
    print_json_last(&WriteReport {
        scenario: "write",
        records: args.records,
        durability: args.durability.name(),
        shoal_per_s: shoal.round() as u64,
        sqlite_per_s: sqlite.round() as u64,
        ratio: round_to(ratio, 3),
        batch_per_s: shoal_batch.round() as u64,
        sqlite_batch_per_s: sqlite_batch.round() as u64,
        sqlite_layout_batch_per_s: sqlite_layout_batch.round() as u64,
    })
}

/// Runs one timed phase of `ops` operations and returns its rate.
fn measured(
    progress: &Progress,
    name: String,
    ops: u64,
    phase: impl FnOnce() -> anyhow::Result<Duration>,
) -> anyhow::Result<f64> {
    progress.phase(name);
    let elapsed = phase()?;
    progress.finish_phase(ops);
    Ok(per_second(ops, elapsed))
}

fn fresh_dir(base: &Path) -> anyhow::Result<TempDir> {
    tempfile::Builder::new()
        .prefix("shoal-bench-")
        .tempdir_in(base)
        .with_context(|| format!("cannot create a temporary directory in {}", base.display()))
}

fn open_shoal(dir: &TempDir, durability: DurabilityArg) -> anyhow::Result<Store> {
    let options = StoreOptions {
        config: StoreConfig {
            durability: durability.shoal(),
            ..StoreConfig::default()
        },
        ..StoreOptions::default()
    };
    Ok(Store::open_with(dir.path().join("shoal.db"), options)?)
}

/// A raw SQLite database set up like Shoal's: WAL, the same `synchronous`.
fn open_sqlite(dir: &TempDir, durability: DurabilityArg) -> anyhow::Result<Connection> {
    let conn = Connection::open(dir.path().join("raw.db"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "raw SQLite refused WAL mode: {mode}"
    );
    conn.pragma_update(None, "synchronous", durability.synchronous())?;
    conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, data TEXT NOT NULL)")?;
    Ok(conn)
}

const INSERT: &str = "INSERT INTO t (id, data) VALUES (?1, ?2)";

fn shoal_puts(
    base: &Path,
    n: u64,
    durability: DurabilityArg,
    progress: &Progress,
) -> anyhow::Result<Duration> {
    let dir = fresh_dir(base)?;
    let store = open_shoal(&dir, durability)?;
    let records = store.collection("bench")?;
    let start = Instant::now();
    for i in 1..=n {
        records.put(&record_id(i), record(i))?;
        progress.tick(i);
    }
    let elapsed = start.elapsed();
    ensure!(
        records.get(&record_id(n))?.is_some(),
        "shoal lost the last record"
    );
    Ok(elapsed)
}

fn sqlite_puts(
    base: &Path,
    n: u64,
    durability: DurabilityArg,
    progress: &Progress,
) -> anyhow::Result<Duration> {
    let dir = fresh_dir(base)?;
    let mut conn = open_sqlite(&dir, durability)?;
    let start = Instant::now();
    for i in 1..=n {
        let tx = conn.transaction()?;
        tx.prepare_cached(INSERT)?
            .execute(params![record_id(i), record(i).to_string()])?;
        tx.commit()?;
        progress.tick(i);
    }
    let elapsed = start.elapsed();
    let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    ensure!(
        rows as u64 == n,
        "raw SQLite holds {rows} rows, expected {n}"
    );
    Ok(elapsed)
}

fn shoal_batch(base: &Path, n: u64, durability: DurabilityArg) -> anyhow::Result<Duration> {
    let dir = fresh_dir(base)?;
    let store = open_shoal(&dir, durability)?;
    let records = store.collection("bench")?;
    let start = Instant::now();
    let version = records.put_many((1..=n).map(|i| (record_id(i), record(i))))?;
    let elapsed = start.elapsed();
    ensure!(version.is_some(), "shoal's batch changed nothing");
    ensure!(
        records.get(&record_id(n))?.is_some(),
        "shoal lost the last batch record"
    );
    Ok(elapsed)
}

fn sqlite_batch(base: &Path, n: u64, durability: DurabilityArg) -> anyhow::Result<Duration> {
    let dir = fresh_dir(base)?;
    let mut conn = open_sqlite(&dir, durability)?;
    let start = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for i in 1..=n {
            insert.execute(params![record_id(i), record(i).to_string()])?;
        }
    }
    tx.commit()?;
    let elapsed = start.elapsed();
    let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    ensure!(
        rows as u64 == n,
        "raw SQLite holds {rows} rows, expected {n}"
    );
    Ok(elapsed)
}

/// Raw SQLite running Shoal's per-record statements on Shoal's layout, one
/// transaction (`raw_layout.rs`).
fn sqlite_layout_batch(base: &Path, n: u64, durability: DurabilityArg) -> anyhow::Result<Duration> {
    let dir = fresh_dir(base)?;
    let mut conn = open_sqlite(&dir, durability)?;
    raw_layout::batch(&mut conn, n, record_id, |i| record(i).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::ValueRef;

    #[test]
    fn ids_are_zero_padded() {
        assert_eq!(record_id(1), "rec-00000001");
        assert_eq!(record_id(20_000), "rec-00020000");
    }

    #[test]
    fn record_has_two_strings_and_a_bool() {
        let body = record(3);
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 3);
        assert_eq!(object.values().filter(|v| v.is_string()).count(), 2);
        assert_eq!(object.values().filter(|v| v.is_boolean()).count(), 1);
    }

    #[test]
    fn a_tiny_run_measures_both_sides() {
        let base = tempfile::tempdir().unwrap();
        let durability = DurabilityArg::Normal;
        let progress = Progress::new(0);
        assert!(shoal_puts(base.path(), 20, durability, &progress).is_ok());
        assert!(sqlite_puts(base.path(), 20, durability, &progress).is_ok());
        assert!(shoal_batch(base.path(), 20, durability).is_ok());
        assert!(sqlite_batch(base.path(), 20, durability).is_ok());
        assert!(sqlite_layout_batch(base.path(), 20, durability).is_ok());
    }

    /// The raw layout is a hand copy of Shoal's: this fails when the store's
    /// `records` table, its indexes or the size of the `write` record's
    /// packed slots move away from it.
    #[test]
    fn the_raw_layout_is_the_stores() {
        let base = tempfile::tempdir().unwrap();
        let dir = fresh_dir(base.path()).unwrap();
        {
            let store = open_shoal(&dir, DurabilityArg::Normal).unwrap();
            store
                .collection("bench")
                .unwrap()
                .put(&record_id(7), record(7))
                .unwrap();
        }
        let shoal = Connection::open(dir.path().join("shoal.db")).unwrap();
        let raw = Connection::open_in_memory().unwrap();
        raw.execute_batch(raw_layout::RECORDS_LAYOUT).unwrap();
        let shape = |conn: &Connection, pragma: &str| -> Vec<String> {
            let mut statement = conn.prepare(pragma).unwrap();
            let rows = statement
                .query_map([], |r| {
                    let mut cells = Vec::new();
                    for i in 0..r.as_ref().column_count() {
                        cells.push(match r.get_ref(i)? {
                            ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                            other => format!("{other:?}"),
                        });
                    }
                    Ok(cells.join(" "))
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        };
        for pragma in [
            "PRAGMA table_xinfo(records)",
            "PRAGMA index_list(records)",
            "PRAGMA index_xinfo(records_key)",
            "PRAGMA index_xinfo(records_dead)",
        ] {
            assert_eq!(shape(&shoal, pragma), shape(&raw, pragma), "{pragma}");
        }
        let (slots, digest): (i64, i64) = shoal
            .query_row(
                "SELECT length(slots), length(digest) FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        // Clocks and site ids are varints: a few bytes either way.
        assert!(
            (slots as usize).abs_diff(raw_layout::SLOTS_BYTES) <= 8,
            "shoal packed {slots} bytes of slots, the raw layout writes {}",
            raw_layout::SLOTS_BYTES
        );
        assert_eq!(digest as usize, raw_layout::DIGEST_BYTES);
    }
}
