//! The `latency` scenario: sequential writes on node A, each timed from the
//! write call until node B's change subscription yields it, over loopback with
//! authentication and frame MACs on.
//!
//! Both nodes run in this process on one tokio runtime; the write is issued
//! only after the previous one arrived, so each sample is one full trip:
//! commit on A, live push, MAC check and apply on B, B's notification.
//!
//! With `--from-cli`, each write is instead made by a second process on A's
//! database file while A's node runs: the `shoal` binary, `shoal --data
//! DIR put ...`, as a user would beside a daemon. A sample runs from
//! spawning the CLI until B's subscription yields the record, so it counts
//! the CLI's own start, open and commit (reported apart as `cli_p50_ms`:
//! spawn to exit), then A noticing the other process's commit, the push and
//! B's apply.

use crate::peers::{scratch_dir, start_node, wait_caught_up};
use crate::report::{print_json_last, round_to, verdict};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;
use shoal::Store;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Targets of the in-process write (milliseconds).
const TARGET_P50_MS: f64 = 0.3;
const TARGET_P99_MS: f64 = 0.6;
/// Targets of a write by the CLI beside the node (milliseconds).
const CLI_TARGET_P50_MS: f64 = 20.0;
const CLI_TARGET_P99_MS: f64 = 50.0;

/// Options of `shoal-bench latency`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sequential writes timed.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    writes: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write with the `shoal` CLI, a second process, on A's database file.
    #[arg(long)]
    from_cli: bool,
    /// The `shoal` binary for `--from-cli` (default: `shoal` beside this binary,
    /// as `cargo build -p shoal-cli` leaves it).
    #[arg(long)]
    shoal_bin: Option<PathBuf>,
}

#[derive(Serialize)]
struct LatencyResult {
    scenario: &'static str,
    from_cli: bool,
    writes: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// `--from-cli` only: the CLI's own run, spawn to exit.
    #[serde(skip_serializing_if = "Option::is_none")]
    cli_p50_ms: Option<f64>,
}

/// One timed write: until B has it, and (from the CLI) the CLI's own run.
struct Sample {
    arrived_ms: f64,
    cli_ms: Option<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let temp = scratch_dir(args.dir.as_deref())?;
    let cli = match args.from_cli {
        true => Some(shoal_binary(args.shoal_bin.as_deref())?),
        false => None,
    };
    match &cli {
        None => println!(
            "latency: {} sequential writes on A, each until B's subscription yields it; loopback, auth and MACs on",
            args.writes
        ),
        Some(bin) => println!(
            "latency --from-cli: {} sequential writes by `{} put` on A's database while A's node runs, each from spawning the CLI until B's subscription yields it; loopback, auth and MACs on",
            args.writes,
            bin.display()
        ),
    }
    // The CLI's data directory layout: DIR/shoal.db.
    let a_dir = temp.path().join("a");
    std::fs::create_dir_all(&a_dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let samples = runtime.block_on(async {
        let a = Store::open(a_dir.join("shoal.db"))?;
        let b = Store::open(temp.path().join("b.db"))?;
        let items = a.collection("items")?;
        items.put(
            "warmup",
            json!({"title": "warm up", "owner": "bench", "done": false}),
        )?;
        let (node_a, address) = start_node(&a, vec![]).await?;
        let (node_b, _) = start_node(&b, vec![address]).await?;
        wait_caught_up(
            &node_b,
            node_a.peer_id(),
            a.db_version(),
            Duration::from_secs(30),
        )
        .await?;
        let mut changes = b.collection("items")?.subscribe();
        let mut samples = Vec::with_capacity(args.writes as usize);
        for i in 0..args.writes {
            let id = format!("rec-{i:08}");
            let value =
                json!({"title": format!("record {i}"), "owner": "bench", "done": i % 2 == 0});
            let start = Instant::now();
            let cli_run = match &cli {
                None => {
                    items.put(&id, value)?;
                    None
                }
                Some(bin) => Some(spawn_cli_put(bin, &a_dir, &id, &value)?),
            };
            loop {
                let event = tokio::time::timeout(Duration::from_secs(10), changes.next())
                    .await
                    .with_context(|| format!("write {i} did not arrive within 10 s"))?;
                match event {
                    Ok(event) if event.id.as_str() == id => break,
                    Ok(_) => continue,
                    Err(e) => bail!("subscription failed: {e}"),
                }
            }
            let arrived_ms = start.elapsed().as_secs_f64() * 1000.0;
            let cli_ms = match cli_run {
                None => None,
                Some(run) => Some(run.await??.duration_since(start).as_secs_f64() * 1000.0),
            };
            samples.push(Sample { arrived_ms, cli_ms });
        }
        node_b.shutdown().await;
        node_a.shutdown().await;
        Ok::<_, anyhow::Error>(samples)
    })?;
    let mut arrived: Vec<f64> = samples.iter().map(|s| s.arrived_ms).collect();
    arrived.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&arrived, 50.0),
        percentile(&arrived, 99.0),
        arrived[arrived.len() - 1],
    );
    let mut cli_runs: Vec<f64> = samples.iter().filter_map(|s| s.cli_ms).collect();
    cli_runs.sort_by(f64::total_cmp);
    let cli_p50 = (!cli_runs.is_empty()).then(|| percentile(&cli_runs, 50.0));
    println!("p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms");
    let (target_p50, target_p99) = match cli_p50 {
        None => (TARGET_P50_MS, TARGET_P99_MS),
        Some(cli_p50) => {
            println!("the CLI's own run (spawn to exit): p50 {cli_p50:.3} ms");
            (CLI_TARGET_P50_MS, CLI_TARGET_P99_MS)
        }
    };
    println!(
        "target p50 < {target_p50} ms: {}",
        verdict(p50 < target_p50)
    );
    println!(
        "target p99 < {target_p99} ms: {}",
        verdict(p99 < target_p99)
    );
    print_json_last(&LatencyResult {
        scenario: "latency",
        from_cli: cli.is_some(),
        writes: args.writes,
        p50_ms: round_to(p50, 3),
        p99_ms: round_to(p99, 3),
        max_ms: round_to(max, 3),
        cli_p50_ms: cli_p50.map(|v| round_to(v, 3)),
    })
}

/// The `shoal` binary: `given`, else `shoal` beside this executable.
pub(crate) fn shoal_binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("this executable has no directory")?
            .join("shoal"),
    };
    if !path.is_file() {
        bail!(
            "no `shoal` binary at {} (build it with `cargo build -p shoal-cli`, in the same profile, or pass --shoal-bin)",
            path.display()
        );
    }
    Ok(path)
}

/// Starts `shoal --data DIR put items ID VALUE`; the task ends when the CLI
/// exits, with the instant it did, or fails if the CLI failed.
fn spawn_cli_put(
    bin: &Path,
    data: &Path,
    id: &str,
    value: &serde_json::Value,
) -> Result<tokio::task::JoinHandle<Result<Instant>>> {
    let child = tokio::process::Command::new(bin)
        .arg("--data")
        .arg(data)
        .args(["put", "items", id, &value.to_string()])
        .env_remove("SHOAL_DATA")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    Ok(tokio::spawn(async move {
        let output = child.wait_with_output().await?;
        let exited = Instant::now();
        if !output.status.success() {
            bail!(
                "the CLI failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(exited)
    }))
}
