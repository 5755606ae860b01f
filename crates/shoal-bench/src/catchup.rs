//! The `catchup` scenario: node A holds N records, node B starts empty; the
//! time from B's start until B holds all N, over loopback with authentication
//! and per-frame MACs on.
//!
//! B runs in a child process (this binary, hidden `follow` subcommand), so its
//! peak memory is its own: it reports its `VmHWM` when done. Bytes on the wire
//! are the sync protocol's frames both ways (application payload, before
//! Noise/Yamux framing).
//!
//! Then, in the same child, B's own local write rate: the same N records
//! written with `put_many` (batches of 10,000) into a fresh database beside
//! B's. `catchup_ratio` is the catch-up rate over that rate: how close
//! catching up comes to writing the same records locally, on the same
//! machine in the same run (so a loaded machine slows both).

use crate::peers::{fill, filled_store, peak_rss_mb, scratch_dir, start_node, wait_caught_up};
use crate::report::{per_second, print_json_last, rate, round_to, verdict};
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use shoal::{DbVersion, PeerId, Store};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const TARGET_PER_S: f64 = 150_000.0;
const TARGET_RSS_MB: f64 = 100.0;
const TARGET_RATIO: f64 = 0.5;

/// Options of `shoal-bench catchup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records A holds.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Options of the hidden `follow` subcommand (the B side of `catchup`).
#[derive(Debug, clap::Args)]
pub struct FollowArgs {
    /// B's database file.
    #[arg(long)]
    db: PathBuf,
    /// A's address.
    #[arg(long)]
    peer: shoal::Multiaddr,
    /// A's peer id.
    #[arg(long)]
    leader: PeerId,
    /// A's db_version: B is done when it has applied A's log up to it.
    #[arg(long)]
    version: u64,
    /// Records A holds: B then writes as many locally to time `put_many`.
    #[arg(long)]
    records: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct FollowReport {
    seconds: f64,
    bytes_on_wire: u64,
    changes: u64,
    peak_rss_mb: f64,
    put_many_per_s: f64,
}

#[derive(Serialize)]
struct CatchupResult {
    scenario: &'static str,
    records: u64,
    seconds: f64,
    records_per_s: f64,
    peak_rss_mb: f64,
    bytes_on_wire: u64,
    put_many_per_s: f64,
    catchup_ratio: f64,
}

/// B: start empty, follow A until caught up, print a JSON report.
pub fn follow(args: &FollowArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = Store::open(&args.db)?;
        let start = std::time::Instant::now();
        let (node, _) = start_node(&store, vec![args.peer.clone()]).await?;
        wait_caught_up(
            &node,
            args.leader,
            DbVersion(args.version),
            Duration::from_secs(600),
        )
        .await?;
        let seconds = start.elapsed().as_secs_f64();
        let status = node
            .peer(&args.leader)
            .context("leader missing from the peer table")?;
        let peak_rss_mb = peak_rss_mb().unwrap_or(f64::NAN);
        node.shutdown().await;
        let report = FollowReport {
            seconds,
            bytes_on_wire: status.bytes_in + status.bytes_out,
            changes: status.changes_in,
            peak_rss_mb,
            put_many_per_s: local_put_many_rate(&args.db, args.records)?,
        };
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    })
}

/// Records per second writing `records` fill records with `put_many` into a
/// fresh database beside `beside`.
fn local_put_many_rate(beside: &std::path::Path, records: u64) -> Result<f64> {
    let path = beside.with_extension("local.db");
    let store = Store::open(&path)?;
    let start = Instant::now();
    fill(&store, records, 0)?;
    Ok(per_second(records, start.elapsed()))
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let temp = scratch_dir(args.dir.as_deref())?;
    let n = args.records;
    println!(
        "catchup: A holds {n} 3-field records, B starts empty; loopback TCP, Noise, group auth and frame MACs on"
    );
    let built = Instant::now();
    let a = filled_store(&temp.path().join("a.db"), n)?;
    println!(
        "A filled in {:.1}s (not measured)",
        built.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let report: FollowReport = runtime.block_on(async {
        let (node, address) = start_node(&a, vec![]).await?;
        let exe = std::env::current_exe()?;
        let output = tokio::process::Command::from(Command::new(exe))
            .args(["follow", "--db"])
            .arg(temp.path().join("b.db"))
            .args([
                "--peer",
                &address.to_string(),
                "--leader",
                &node.peer_id().to_string(),
            ])
            .args(["--version", &a.db_version().0.to_string()])
            .args(["--records", &n.to_string()])
            .output()
            .await?;
        node.shutdown().await;
        if !output.status.success() {
            bail!(
                "follower failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if std::env::var_os("RUST_LOG").is_some() {
            // The follower's log, asked for with RUST_LOG.
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().context("follower printed nothing")?;
        Ok::<_, anyhow::Error>(serde_json::from_str(line)?)
    })?;
    let b = Store::open(temp.path().join("b.db"))?;
    let live: u64 = b.status()?.collections.iter().map(|c| c.live).sum();
    ensure!(live == n, "B holds {live} records, expected {n}");
    let per_s = n as f64 / report.seconds;
    println!(
        "B caught up in {:.2}s: {} records ({} changes), {} bytes on the wire",
        report.seconds,
        rate(per_s),
        report.changes,
        report.bytes_on_wire
    );
    println!("B peak RSS {:.1} MB", report.peak_rss_mb);
    let ratio = per_s / report.put_many_per_s;
    println!(
        "B's own put_many of the same {n} records: {}; catch-up is {ratio:.2} of it",
        rate(report.put_many_per_s)
    );
    println!(
        "target >= {}: {}",
        rate(TARGET_PER_S),
        verdict(per_s >= TARGET_PER_S)
    );
    println!(
        "target peak RSS < {TARGET_RSS_MB} MB: {}",
        verdict(report.peak_rss_mb < TARGET_RSS_MB)
    );
    println!(
        "target catch-up / put_many >= {TARGET_RATIO}: {}",
        verdict(ratio >= TARGET_RATIO)
    );
    print_json_last(&CatchupResult {
        scenario: "catchup",
        records: n,
        seconds: round_to(report.seconds, 3),
        records_per_s: round_to(per_s, 0),
        peak_rss_mb: round_to(report.peak_rss_mb, 1),
        bytes_on_wire: report.bytes_on_wire,
        put_many_per_s: round_to(report.put_many_per_s, 0),
        catchup_ratio: round_to(ratio, 3),
    })
}
