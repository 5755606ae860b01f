//! The `reconcile` scenario: what the integrity report costs between two
//! replicas that are equal except for D records — round trips, application
//! payload bytes (both directions) and seconds — with the reconciliation index
//! built, over loopback TCP with Noise, group auth and frame MACs on.
//!
//! Setup (not measured): A is filled with N records; its database file is
//! copied to B, whose node key is deleted so B gets an identity of its own.
//! Then D records are made to differ on B, deterministically, cycling
//! through three kinds: difference number k (0-based) is, for k mod 3 =
//! 0: an existing record rewritten with a new title (diverged),
//! 1: an existing record deleted (alive only on A: local-only),
//! 2: a new record `new-<k>` created (alive only on B: peer-only).
//! The existing records touched are spread evenly over the ids
//! (`rec-<k × N / D>`). So D = 1 is one modified record.
//!
//! Both nodes run in this process with `auto_sync` off and anti-entropy off:
//! sessions only authenticate and answer federation requests, so nothing
//! repairs the difference before it is measured. A runs
//! [`shoal::Node::reconcile`] against B. The first run builds the in-memory
//! reconciliation index on both sides and is reported separately as the
//! index build; the following runs are measured and their median reported.
//! Every run must find exactly the D planted differences with the expected
//! statuses, or the scenario fails.
//!
//! With `--after-restart`, both nodes then stop, their stores close and
//! reopen, the nodes start again, and the first report after that is timed
//! on its own (`after_restart_seconds`): the index is taken back from the
//! file, not rebuilt — `after_restart_builds` counts the trees A and B
//! rebuilt from every record, and must be 0.

use crate::peers::{
    COLLECTION, fill, loopback_config, record_id, scratch_dir, start_node_with, wait_connected,
};
use crate::progress::Progress;
use crate::report::{median, print_json_last, round_to, verdict};
use anyhow::{Context, Result, bail, ensure};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;
use shoal::{Node, PeerId, Reconciliation, Status, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Targets, set for N = 1,000,000 with the index built.
const TARGET_ROUND_TRIPS_D1: u32 = 4;
const TARGET_BYTES_D1: u64 = 4 * 1024;
const TARGET_BYTES_D100: u64 = 64 * 1024;
const TARGET_SECONDS: f64 = 1.0;
/// Targets at D = 10,000 (N = 1,000,000).
const TARGET_BYTES_D10000: u64 = 2_300_000;
const TARGET_SECONDS_D10000: f64 = 0.25;
/// Target of the first report after a restart (N = 1,000,000, D = 1).
const TARGET_AFTER_RESTART_SECONDS: f64 = 0.1;

/// Records written per progress update while filling A.
const FILL_CHUNK: u64 = 50_000;
/// Longest wait for the two nodes to connect.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// Options of `shoal-bench reconcile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records A holds (B holds the same, but for `--diff`).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Records that differ between A and B (at most `--records`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    diff: u64,
    /// Measured runs after the index-building one; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Then restart both nodes (stores closed and reopened) and time the
    /// first report after it.
    #[arg(long)]
    after_restart: bool,
}

#[derive(Serialize)]
struct ReconcileResult {
    scenario: &'static str,
    records: u64,
    diff: u64,
    round_trips: u32,
    bytes: u64,
    seconds: f64,
    index_build_seconds: f64,
    diverged: u64,
    local_only: u64,
    peer_only: u64,
    runs: u64,
    /// `--after-restart` only: the first report after both nodes restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    after_restart_seconds: Option<f64>,
    /// `--after-restart` only: trees A and B rebuilt from every record for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    after_restart_builds: Option<u64>,
}

/// How one planted difference was made on B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An existing record rewritten with a new title.
    Modified,
    /// An existing record deleted.
    Deleted,
    /// A record only B holds.
    Created,
}

impl Kind {
    /// What A's report must call it (A is "local", B the peer).
    fn status(self) -> Status {
        match self {
            Kind::Modified => Status::Diverged,
            Kind::Deleted => Status::LocalOnly,
            Kind::Created => Status::PeerOnly,
        }
    }
}

/// The D differences, by record id (see the module docs).
fn plan(records: u64, diff: u64) -> BTreeMap<String, Kind> {
    (0..diff)
        .map(|k| {
            // Distinct for k < diff <= records, spread over 0..records.
            let existing =
                || record_id((u128::from(k) * u128::from(records) / u128::from(diff)) as u64);
            match k % 3 {
                0 => (existing(), Kind::Modified),
                1 => (existing(), Kind::Deleted),
                _ => (format!("new-{k:08}"), Kind::Created),
            }
        })
        .collect()
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let (n, d) = (args.records, args.diff);
    ensure!(d <= n, "--diff ({d}) cannot exceed --records ({n})");
    let temp = scratch_dir(args.dir.as_deref())?;
    let (a_path, b_path) = (temp.path().join("a.db"), temp.path().join("b.db"));
    println!(
        "reconcile: A and B hold the same {n} 3-field records but for {d}; A's integrity report against B over loopback TCP, Noise, group auth and frame MACs on"
    );
    println!("machine: {} cores, {}", cores(), cpu_model());

    let filled = Instant::now();
    {
        let a =
            Store::open(&a_path).with_context(|| format!("cannot open {}", a_path.display()))?;
        fill_with_progress(&a, n)?;
    }
    println!(
        "A filled in {:.1}s (not measured)",
        filled.elapsed().as_secs_f64()
    );

    let copied = Instant::now();
    copy_as_new_node(&a_path, &b_path)?;
    let a = Store::open(&a_path)?;
    let b = Store::open(&b_path)?;
    ensure!(
        a.peer_id() != b.peer_id(),
        "B kept A's identity after the copy"
    );
    let planted = plan(n, d);
    plant(&b, &planted)?;
    let count = |kind| planted.values().filter(|k| **k == kind).count() as u64;
    let (modified, deleted, created) = (
        count(Kind::Modified),
        count(Kind::Deleted),
        count(Kind::Created),
    );
    println!(
        "B copied from A and {d} records made to differ in {:.1}s (not measured): {modified} modified, {deleted} deleted, {created} created on B",
        copied.elapsed().as_secs_f64()
    );

    let collection = a.collection(COLLECTION)?.name().clone();
    let runtime = tokio::runtime::Runtime::new()?;
    let (first, runs) = runtime.block_on(async {
        let (node_a, node_b) = connected_pair(&a, &b).await?;
        let b_id = node_b.peer_id();
        let result = async {
            let first = timed_reconcile(&node_a, b_id, &collection, &planted).await?;
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                runs.push(timed_reconcile(&node_a, b_id, &collection, &planted).await?);
            }
            Ok::<_, anyhow::Error>((first, runs))
        }
        .await;
        node_b.shutdown().await;
        node_a.shutdown().await;
        result
    })?;
    // Every task holding a store ends with the runtime; the stores close
    // (saving their reconciliation index) when the last handle goes.
    drop(runtime);
    drop((a, b));
    let restarted = match args.after_restart {
        true => Some(after_restart(&a_path, &b_path, &collection, &planted)?),
        false => None,
    };

    let (first_seconds, _) = &first;
    println!(
        "index build: first report (builds both sides' reconciliation index) took {first_seconds:.3}s"
    );
    for (i, (seconds, found)) in runs.iter().enumerate() {
        println!(
            "run {}: {:.2} ms, {} round trips, {} bytes",
            i + 1,
            seconds * 1e3,
            found.outcome.round_trips,
            found.bytes
        );
    }
    let seconds = median(&runs.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    let round_trips = runs
        .iter()
        .map(|(_, f)| f.outcome.round_trips)
        .max()
        .unwrap_or(0);
    let bytes = runs.iter().map(|(_, f)| f.bytes).max().unwrap_or(0);
    let counts = runs
        .last()
        .map(|(_, f)| f.outcome.counts)
        .unwrap_or_default();
    println!(
        "report: {} diverged, {} local-only, {} peer-only; {round_trips} round trips, {bytes} bytes both ways, median {:.2} ms",
        counts.diverged,
        counts.local_only,
        counts.peer_only,
        seconds * 1e3
    );
    let manifest = manifest_bytes(n);
    println!(
        "for scale: a full manifest of A (N × (id + 16-byte digest)) is {manifest} bytes, {:.1}× the report's",
        manifest as f64 / bytes.max(1) as f64
    );
    print_targets(d, round_trips, bytes, seconds);
    if let Some((seconds, builds)) = restarted {
        println!(
            "after a restart of both nodes: first report {:.2} ms, {builds} reconciliation trees rebuilt from every record",
            seconds * 1e3
        );
        if d == 1 {
            println!(
                "target after a restart < {TARGET_AFTER_RESTART_SECONDS} s (N = 1,000,000): {}",
                verdict(seconds < TARGET_AFTER_RESTART_SECONDS)
            );
        }
        ensure!(
            builds == 0,
            "the index was rebuilt after the restart ({builds} trees), not taken back"
        );
    }
    print_json_last(&ReconcileResult {
        scenario: "reconcile",
        records: n,
        diff: d,
        round_trips,
        bytes,
        seconds: round_to(seconds, 5),
        index_build_seconds: round_to(*first_seconds, 3),
        diverged: counts.diverged,
        local_only: counts.local_only,
        peer_only: counts.peer_only,
        runs: args.runs,
        after_restart_seconds: restarted.map(|(s, _)| round_to(s, 5)),
        after_restart_builds: restarted.map(|(_, b)| b),
    })
}

/// Starts A's and B's nodes (B dialing A) with automatic sync and
/// anti-entropy off, and waits until they are connected.
async fn connected_pair(a: &Store, b: &Store) -> Result<(Node, Node)> {
    let manual = |peers| {
        let mut config = loopback_config(peers);
        config.auto_sync = false;
        config.anti_entropy = None;
        config
    };
    let (node_a, address) = start_node_with(a, manual(vec![])).await?;
    let (node_b, _) = start_node_with(b, manual(vec![address])).await?;
    let connected = wait_connected(&node_a, &node_b, CONNECT_LIMIT).await?;
    println!(
        "B connected to A in {:.3}s (not measured)",
        connected.as_secs_f64()
    );
    Ok((node_a, node_b))
}

/// Reopens A and B, starts their nodes again, and times A's first report:
/// (seconds, trees rebuilt from every record on either side).
fn after_restart(
    a_path: &Path,
    b_path: &Path,
    collection: &shoal::CollectionName,
    planted: &BTreeMap<String, Kind>,
) -> Result<(f64, u64)> {
    let a = Store::open(a_path)?;
    let b = Store::open(b_path)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let seconds = runtime.block_on(async {
        let (node_a, node_b) = connected_pair(&a, &b).await?;
        let result = timed_reconcile(&node_a, node_b.peer_id(), collection, planted).await;
        node_b.shutdown().await;
        node_a.shutdown().await;
        result.map(|(seconds, _)| seconds)
    })?;
    Ok((seconds, a.recon_index_builds() + b.recon_index_builds()))
}

/// Fills A with `records` records, showing progress.
fn fill_with_progress(store: &Store, records: u64) -> Result<()> {
    let progress = Progress::new(records);
    progress.phase("filling A".into());
    let mut next = 0;
    while next < records {
        let chunk = (records - next).min(FILL_CHUNK);
        fill(store, chunk, next)?;
        next += chunk;
        progress.finish_phase(chunk);
    }
    progress.clear();
    Ok(())
}

/// Copies the (closed) database at `from` to `to`, and removes the copy's
/// node key so it opens as a node of its own.
fn copy_as_new_node(from: &Path, to: &Path) -> Result<()> {
    {
        let conn = Connection::open(from)?;
        let (busy, _, _): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        ensure!(busy == 0, "cannot checkpoint {}", from.display());
    }
    let wal = PathBuf::from(format!("{}-wal", from.display()));
    if wal.metadata().is_ok_and(|m| m.len() > 0) {
        bail!("{} still has a WAL after the checkpoint", from.display());
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    let conn = Connection::open(to)?;
    let deleted = conn.execute("DELETE FROM meta WHERE key = 'node_key'", [])?;
    ensure!(deleted == 1, "the copy has no node key to delete");
    Ok(())
}

/// Makes the planted differences on B.
fn plant(b: &Store, planted: &BTreeMap<String, Kind>) -> Result<()> {
    let items = b.collection(COLLECTION)?;
    let of = |kind| {
        planted
            .iter()
            .filter(move |(_, k)| **k == kind)
            .map(|(id, _)| id.clone())
    };
    let record = |id: &str, title: String| {
        (
            id.to_string(),
            json!({"title": title, "owner": "bench", "done": false}),
        )
    };
    items.put_many(of(Kind::Modified).map(|id| record(&id, format!("{id}, changed on B"))))?;
    items.put_many(of(Kind::Created).map(|id| record(&id, format!("{id}, only on B"))))?;
    for id in of(Kind::Deleted) {
        ensure!(items.delete(&id)?.is_some(), "{id} was not there to delete");
    }
    Ok(())
}

/// One integrity report from A against B, timed, checked against `planted`.
async fn timed_reconcile(
    node: &Node,
    peer: PeerId,
    collection: &shoal::CollectionName,
    planted: &BTreeMap<String, Kind>,
) -> Result<(f64, Reconciliation)> {
    let start = Instant::now();
    let found = node.reconcile(peer, collection).await?;
    let seconds = start.elapsed().as_secs_f64();
    check(&found, planted)?;
    Ok((seconds, found))
}

/// Fails unless the report found exactly the planted differences.
fn check(found: &Reconciliation, planted: &BTreeMap<String, Kind>) -> Result<()> {
    let outcome = &found.outcome;
    let expect = |kind| planted.values().filter(|k| **k == kind).count() as u64;
    let counts = outcome.counts;
    ensure!(
        counts.total() == planted.len() as u64
            && counts.diverged == expect(Kind::Modified)
            && counts.local_only == expect(Kind::Deleted)
            && counts.peer_only == expect(Kind::Created),
        "the report found {counts:?}, but {} records were made to differ",
        planted.len()
    );
    if outcome.dropped > 0 {
        // Past the kept-differences cap only the counts are exact.
        return Ok(());
    }
    ensure!(
        outcome.differences.len() == planted.len(),
        "the report lists {} differences, expected {}",
        outcome.differences.len(),
        planted.len()
    );
    for difference in &outcome.differences {
        let kind = planted.get(difference.id.as_str()).with_context(|| {
            format!("the report lists {}, which was not changed", difference.id)
        })?;
        ensure!(
            difference.status() == Some(kind.status()),
            "{} reported {:?}, expected {:?}",
            difference.id,
            difference.status(),
            kind.status()
        );
    }
    Ok(())
}

/// Bytes of a full manifest of the first `records` fill records: each id plus a
/// 16-byte digest.
fn manifest_bytes(records: u64) -> u64 {
    (0..records)
        .map(|i| {
            // "rec-" and at least 8 digits.
            let digits = u64::from(i.checked_ilog10().unwrap_or(0) + 1).max(8);
            4 + digits + 16
        })
        .sum()
}

/// Prints the target lines that apply to `diff`.
fn print_targets(diff: u64, round_trips: u32, bytes: u64, seconds: f64) {
    let note = "(targets set for N = 1,000,000, index built)";
    match diff {
        1 => {
            println!(
                "target <= {TARGET_ROUND_TRIPS_D1} round trips {note}: {}",
                verdict(round_trips <= TARGET_ROUND_TRIPS_D1)
            );
            println!(
                "target <= {} bytes: {}",
                TARGET_BYTES_D1,
                verdict(bytes <= TARGET_BYTES_D1)
            );
        }
        100 => println!(
            "target <= {} bytes {note}: {}",
            TARGET_BYTES_D100,
            verdict(bytes <= TARGET_BYTES_D100)
        ),
        10_000 => {
            println!(
                "target <= {TARGET_BYTES_D10000} bytes {note}: {}",
                verdict(bytes <= TARGET_BYTES_D10000)
            );
            println!(
                "target < {TARGET_SECONDS_D10000} s: {}",
                verdict(seconds < TARGET_SECONDS_D10000)
            );
            return;
        }
        _ => {
            println!("no target for D = {diff} (targets are set for D = 1, 100 and 10,000)");
            return;
        }
    }
    println!(
        "target < {TARGET_SECONDS} s: {}",
        verdict(seconds < TARGET_SECONDS)
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_d_distinct_records_cycling_through_the_kinds() {
        let planted = plan(10, 10);
        assert_eq!(planted.len(), 10);
        let count = |kind| planted.values().filter(|k| **k == kind).count();
        assert_eq!(
            (
                count(Kind::Modified),
                count(Kind::Deleted),
                count(Kind::Created)
            ),
            (4, 3, 3)
        );
        assert_eq!(
            plan(1_000_000, 1).into_iter().collect::<Vec<_>>(),
            vec![(record_id(0), Kind::Modified)]
        );
        assert_eq!(plan(1_000_000, 100).len(), 100);
    }

    #[test]
    fn manifest_counts_id_and_digest_bytes() {
        assert_eq!(manifest_bytes(3), 3 * (12 + 16));
    }
}
