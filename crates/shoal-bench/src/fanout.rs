//! The `fanout` scenario: one writer and P connected peers (each dialing the
//! writer, in this process), W sequential writes on the writer, each timed
//! from the write call until every peer's subscription has yielded it;
//! loopback, authentication and frame MACs on. Reports p50/p99/max of that
//! time and the writer's CPU per write.
//!
//! The writer's node runs on a tokio runtime of its own (one worker, threads
//! named `fanout-writer`), the peers on another; the writes are made on the
//! main thread. So the writer's CPU is measured as the user + system time
//! of the main thread and of every `fanout-writer` thread (its worker and
//! its blocking pool, which reads the log for each push), from Linux's
//! `/proc/self/task/*/stat`, over the timed writes — the peers' work is not
//! in it. (Not counted: the store's commit-watch thread, shared by name
//! with the peers' stores, which does one `PRAGMA data_version` per
//! wake-up; and its checkpoint thread, also named alike for every store,
//! which copies the log into the database file once per 2,000 pages of
//! log — about once per run here.)

use crate::peers::{record_id, scratch_dir, start_node, wait_caught_up};
use crate::report::{print_json_last, round_to, verdict};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use shoal::{Node, Store};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Target p99 for 16 peers (milliseconds).
const TARGET_P99_MS: f64 = 5.0;
/// Name of the writer's runtime threads (their CPU is the writer's).
const WRITER_THREADS: &str = "fanout-writer";
/// Longest wait for one write to reach every peer.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(10);

/// Options of `shoal-bench fanout`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Peers connected to the writer.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=64))]
    peers: u64,
    /// Sequential writes timed.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    writes: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct FanoutResult {
    scenario: &'static str,
    peers: u64,
    writes: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    writer_cpu_us_per_write: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// CPU seconds (user + system) of this thread and of every thread whose
/// name starts with `prefix`, from `/proc/self/task/*/stat`.
fn cpu_seconds_of(prefix: &str) -> Result<f64> {
    let me = std::fs::read_to_string("/proc/thread-self/stat")
        .context("no /proc/thread-self/stat (Linux only)")?;
    let mut total = stat_cpu(&me).context("unreadable /proc/thread-self/stat")?;
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended
        };
        if comm.trim_end().starts_with(prefix)
            && let Some(cpu) = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|s| stat_cpu(&s))
        {
            total += cpu;
        }
    }
    Ok(total)
}

/// utime + stime of a `stat` line, in seconds (USER_HZ is 100 on Linux).
fn stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let (p, w) = (args.peers, args.writes);
    let temp = scratch_dir(args.dir.as_deref())?;
    println!(
        "fanout: {w} sequential writes on one writer with {p} connected peers, each until every peer's subscription yields it; loopback, auth and MACs on"
    );
    let writer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(WRITER_THREADS)
        .enable_all()
        .build()?;
    let peers_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("fanout-peer")
        .enable_all()
        .build()?;

    let writer = Store::open(temp.path().join("writer.db"))?;
    let items = writer.collection("items")?;
    items.put("warmup", json!({"title": "warm up"}))?;
    let (writer_node, address) = writer_rt.block_on(start_node(&writer, vec![]))?;
    let (arrivals, arrived) = mpsc::channel::<(usize, String, Instant)>();
    let peers: Vec<(Store, Node)> = peers_rt.block_on(async {
        let mut peers = Vec::new();
        for i in 0..p {
            let store = Store::open(temp.path().join(format!("peer-{i}.db")))?;
            let (node, _) = start_node(&store, vec![address.clone()]).await?;
            peers.push((store, node));
        }
        for (i, (store, node)) in peers.iter().enumerate() {
            wait_caught_up(
                node,
                writer_node.peer_id(),
                writer.db_version(),
                Duration::from_secs(60),
            )
            .await
            .with_context(|| format!("peer {i} did not catch up"))?;
            let mut changes = store.collection("items")?.subscribe();
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                while let Ok(event) = changes.next().await {
                    let at = Instant::now();
                    if arrivals.send((i, event.id.to_string(), at)).is_err() {
                        return;
                    }
                }
            });
        }
        Ok::<_, anyhow::Error>(peers)
    })?;
    println!("{p} peers connected and caught up (not measured)");

    let cpu_before = cpu_seconds_of(WRITER_THREADS)?;
    let mut samples = Vec::with_capacity(w as usize);
    for i in 0..w {
        let id = record_id(i);
        let start = Instant::now();
        items.put(
            &id,
            json!({"title": format!("record {i}"), "owner": "bench", "done": i % 2 == 0}),
        )?;
        let mut have = vec![false; p as usize];
        let mut missing = p;
        let mut last = start;
        while missing > 0 {
            let (peer, got, at) = arrived
                .recv_timeout(ARRIVAL_LIMIT)
                .with_context(|| format!("write {i} reached only {} of {p} peers", p - missing))?;
            if got == id && !have[peer] {
                have[peer] = true;
                missing -= 1;
                last = last.max(at);
            }
        }
        samples.push(last.duration_since(start).as_secs_f64() * 1000.0);
    }
    let cpu = cpu_seconds_of(WRITER_THREADS)? - cpu_before;

    peers_rt.block_on(async {
        for (_, node) in &peers {
            node.shutdown().await;
        }
    });
    writer_rt.block_on(writer_node.shutdown());
    samples.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples[samples.len() - 1],
    );
    let cpu_us = cpu * 1e6 / w as f64;
    println!("until all {p} peers have it: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms");
    println!(
        "writer CPU (main thread + its node's runtime threads): {cpu_us:.1} µs per write ({cpu:.2} s in all; 10 ms tick resolution)"
    );
    if p == 16 {
        println!(
            "target p99 < {TARGET_P99_MS} ms: {}",
            verdict(p99 < TARGET_P99_MS)
        );
    }
    print_json_last(&FanoutResult {
        scenario: "fanout",
        peers: p,
        writes: w,
        p50_ms: round_to(p50, 3),
        p99_ms: round_to(p99, 3),
        max_ms: round_to(max, 3),
        writer_cpu_us_per_write: round_to(cpu_us, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::stat_cpu;

    #[test]
    fn stat_cpu_reads_utime_and_stime_after_the_name() {
        // pid (comm with spaces) state, then 10 fields, utime=250, stime=50.
        let line = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(stat_cpu(line), Some(3.0));
    }
}
