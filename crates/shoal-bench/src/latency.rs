//! The `latency` scenario: sequential writes on node A, each timed from the
//! write call until node B's change subscription yields it, over loopback with
//! authentication and frame MACs on.
//!
//! Both nodes run in this process on one tokio runtime; the write is issued
//! only after the previous one arrived, so each sample is one full trip:
//! commit on A, live push, MAC check and apply on B, B's notification.

use crate::peers::{scratch_dir, start_node, wait_caught_up};
use crate::report::{print_json_last, round_to, verdict};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;
use shoal::Store;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `shoal-bench latency`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sequential writes timed.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    writes: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct LatencyResult {
    scenario: &'static str,
    writes: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let temp = scratch_dir(args.dir.as_deref())?;
    println!(
        "latency: {} sequential writes on A, each until B's subscription yields it; loopback, auth and MACs on",
        args.writes
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let mut samples = runtime.block_on(async {
        let a = Store::open(temp.path().join("a.db"))?;
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
            let start = Instant::now();
            items.put(
                &id,
                json!({"title": format!("record {i}"), "owner": "bench", "done": i % 2 == 0}),
            )?;
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
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        node_b.shutdown().await;
        node_a.shutdown().await;
        Ok::<_, anyhow::Error>(samples)
    })?;
    samples.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples[samples.len() - 1],
    );
    println!("p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms");
    println!("target p50 < 1 ms: {}", verdict(p50 < 1.0));
    println!("target p99 < 3 ms: {}", verdict(p99 < 3.0));
    print_json_last(&LatencyResult {
        scenario: "latency",
        writes: args.writes,
        p50_ms: round_to(p50, 3),
        p99_ms: round_to(p99, 3),
        max_ms: round_to(max, 3),
    })
}
