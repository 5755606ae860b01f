//! The `reconnect` scenario: B was in sync with A (N records), goes offline,
//! A writes M more, B comes back: how long until B has them, and how many
//! bytes crossed. The bytes must grow with M, not with N — B resumes from the
//! cursor it persisted.
//!
//! Both nodes run in this process; B's node is stopped and started again on
//! the same store, as a restarted daemon would be. Seconds: until B holds
//! everything; bytes: both directions of B's session once A has also pulled
//! back what B applied (each change crosses twice: to B, and back to A, which
//! finds it already known).

use crate::peers::{fill, filled_store, scratch_dir, start_node, wait_in_sync};
use crate::report::{print_json_last, round_to};
use anyhow::{Context, Result};
use serde::Serialize;
use shoal::Store;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `shoal-bench reconnect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records both hold before B goes offline.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Records A writes while B is offline.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    missed: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Longest wait for a catch-up.
const LIMIT: Duration = Duration::from_secs(600);

#[derive(Serialize)]
struct ReconnectResult {
    scenario: &'static str,
    records: u64,
    missed: u64,
    seconds: f64,
    bytes_on_wire: u64,
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let temp = scratch_dir(args.dir.as_deref())?;
    let (n, m) = (args.records, args.missed);
    println!(
        "reconnect: A and B share {n} records, B goes offline, A writes {m}, B comes back; loopback, auth and MACs on"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let (seconds, bytes, first_bytes, changes) = runtime.block_on(async {
        let a = filled_store(&temp.path().join("a.db"), n)?;
        let b = Store::open(temp.path().join("b.db"))?;
        let (node_a, address) = start_node(&a, vec![]).await?;
        let (node_b, _) = start_node(&b, vec![address.clone()]).await?;
        wait_in_sync((&node_b, &b), (&node_a, &a), LIMIT).await?;
        let first = node_b
            .peer(&node_a.peer_id())
            .context("A missing from B's peers")?;
        node_b.shutdown().await;
        // Through A's own store, so A's node sees the commits as a daemon would.
        fill(&a, m, n)?;
        let start = Instant::now();
        let (node_b, _) = start_node(&b, vec![address]).await?;
        // Seconds: until B holds A's log. Bytes are read once A has pulled back
        // what B applied too, so the figure does not depend on timing.
        let caught_up = wait_in_sync((&node_b, &b), (&node_a, &a), LIMIT).await?;
        let seconds = (caught_up - start).as_secs_f64();
        let status = node_b
            .peer(&node_a.peer_id())
            .context("A missing from B's peers")?;
        node_b.shutdown().await;
        node_a.shutdown().await;
        let last = format!("rec-{:08}", n + m - 1);
        anyhow::ensure!(
            b.collection("items")?.get(&last)?.is_some(),
            "B does not hold {last}"
        );
        Ok::<_, anyhow::Error>((
            seconds,
            status.bytes_in + status.bytes_out,
            first.bytes_in + first.bytes_out,
            status.changes_in,
        ))
    })?;
    println!(
        "first full catch-up moved {first_bytes} bytes; the reconnect moved {bytes} bytes ({changes} changes) in {seconds:.3}s"
    );
    print_json_last(&ReconnectResult {
        scenario: "reconnect",
        records: n,
        missed: m,
        seconds: round_to(seconds, 3),
        bytes_on_wire: bytes,
    })
}
