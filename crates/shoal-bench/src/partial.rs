//! The `partial` scenario (issue 19 §2): A holds N records of which 1 %
//! have `owner = "bo"`; B, a partial replica taking only those, catches up
//! from empty. Timed, with bytes on the wire (the sync protocol's frames
//! both ways), against a full catch-up of as many records as B takes
//! (N / 100; 10,000 at the default N) in the same run: the filtered
//! catch-up should cost at most twice the bytes of that full one. Then the
//! session handshake and what a connection's admission checks add to it
//! (`admission_ms`: the partial-filter exchange and the device admission
//! check; `partial_handshake.rs`).
//!
//! Fails (non-zero exit) if B holds anything but exactly the matching
//! records, counted against A's own query.

use crate::peers::{COLLECTION, record_id, scratch_dir, start_node, wait_caught_up};
use crate::report::{print_json_last, round_to, verdict};
use anyhow::{Context, Result, ensure};
use serde::Serialize;
use serde_json::json;
use shoal::{Node, Query, Store};
use std::path::Path;
use std::time::{Duration, Instant};

const FILTER: &str = r#"owner = "bo""#;
const TARGET_BYTES_RATIO: f64 = 2.0;
const TARGET_ADMISSION_MS: f64 = 1.0;

/// Options of `shoal-bench partial`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records A holds (1 % match B's filter).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(100..))]
    records: u64,
    /// In-memory handshakes (and filter exchanges and device admission
    /// checks) timed for the handshake figure.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    handshakes: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct PartialResult {
    scenario: &'static str,
    records: u64,
    matching: u64,
    seconds: f64,
    bytes: u64,
    bytes_ratio_to_full_10k: f64,
    admission_ms: f64,
}

/// Whether record `i` matches B's filter (1 in 100).
fn matches(i: u64) -> bool {
    i.is_multiple_of(100)
}

/// Writes `records` records, every 100th owned by "bo" (or all of them).
fn fill(path: &Path, records: u64, all_bo: bool) -> Result<Store> {
    let store = Store::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let items = store.collection(COLLECTION)?;
    let mut next = 0;
    while next < records {
        let end = (next + 10_000).min(records);
        items.put_many((next..end).map(|i| {
            let owner = if all_bo || matches(i) { "bo" } else { "al" };
            (
                record_id(i),
                json!({"title": format!("record {i}"), "owner": owner, "done": i.is_multiple_of(2)}),
            )
        }))?;
        next = end;
    }
    Ok(store)
}

/// B (filtered or not) catches up from empty with `leader`: seconds, bytes.
async fn catch_up(b: &Store, leader: (&Store, &Node, &shoal::Multiaddr)) -> Result<(f64, u64)> {
    let (a_store, a_node, address) = leader;
    let start = Instant::now();
    let (node, _) = start_node(b, vec![address.clone()]).await?;
    wait_caught_up(
        &node,
        a_node.peer_id(),
        a_store.db_version(),
        Duration::from_secs(1200),
    )
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    let status = node
        .peer(&a_node.peer_id())
        .context("leader missing from the peer table")?;
    node.shutdown().await;
    Ok((seconds, status.bytes_in + status.bytes_out))
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let temp = scratch_dir(args.dir.as_deref())?;
    let n = args.records;
    let matching = (0..n).filter(|i| matches(*i)).count() as u64;
    println!(
        "partial: A holds {n} records, B takes only {FILTER} ({matching}); against a full catch-up of {matching} records"
    );
    let built = Instant::now();
    let a = fill(&temp.path().join("a.db"), n, false)?;
    let full_a = fill(&temp.path().join("full-a.db"), matching, true)?;
    println!(
        "A and the full-catch-up leader filled in {:.1}s (not measured)",
        built.elapsed().as_secs_f64()
    );
    let expected = a
        .collection(COLLECTION)?
        .query(
            &Query::new()
                .eq("owner", json!("bo"))
                .limit(shoal::MAX_QUERY_LIMIT),
        )?
        .len() as u64;
    let runtime = tokio::runtime::Runtime::new()?;
    let (partial, full) = runtime.block_on(async {
        let (a_node, a_addr) = start_node(&a, vec![]).await?;
        let b = Store::open(temp.path().join("b.db"))?;
        b.set_partial_filter(COLLECTION, Some(FILTER))?;
        let partial = catch_up(&b, (&a, &a_node, &a_addr)).await?;
        let b_status = b.status()?;
        let live: u64 = b_status.collections.iter().map(|c| c.live).sum();
        ensure!(
            live == matching,
            "B holds {live} records, expected {matching}"
        );
        let strays = b
            .collection(COLLECTION)?
            .query(&Query::new().eq("owner", json!("al")).limit(1))?;
        ensure!(strays.is_empty(), "B holds a record outside its filter");
        a_node.shutdown().await;

        let (full_node, full_addr) = start_node(&full_a, vec![]).await?;
        let c = Store::open(temp.path().join("c.db"))?;
        let full = catch_up(&c, (&full_a, &full_node, &full_addr)).await?;
        full_node.shutdown().await;
        let live: u64 = c.status()?.collections.iter().map(|c| c.live).sum();
        ensure!(
            live == matching,
            "the full follower holds {live}, expected {matching}"
        );
        Ok::<_, anyhow::Error>((partial, full))
    })?;
    let handshake = crate::partial_handshake::measure(temp.path(), FILTER, args.handshakes)?;
    let admission_ms = handshake.admission_ms();
    // A's own query caps at MAX_QUERY_LIMIT; below it, it must agree.
    if matching < shoal::MAX_QUERY_LIMIT as u64 {
        ensure!(
            expected == matching,
            "A's own query finds {expected}, expected {matching}"
        );
    }
    let ratio = partial.1 as f64 / full.1 as f64;
    println!(
        "B (partial) caught up in {:.2}s, {} bytes on the wire; a full catch-up of {matching} records: {:.2}s, {} bytes; ratio {ratio:.2}",
        partial.0, partial.1, full.0, full.1
    );
    println!(
        "session handshake in memory (group-secret PAKE, proofs and the filters): {:.3} ms; admission checks add {admission_ms:.3} ms: the filters' exchange and persisted write {:.3} ms, the device admission check ({} devices) {:.3} ms",
        handshake.session_ms,
        handshake.filters_ms,
        crate::partial_handshake::DEVICES,
        handshake.device_ms
    );
    println!(
        "target bytes <= {TARGET_BYTES_RATIO}x the full catch-up: {}",
        verdict(ratio <= TARGET_BYTES_RATIO)
    );
    println!(
        "target < {TARGET_ADMISSION_MS} ms added per connection: {}",
        verdict(admission_ms < TARGET_ADMISSION_MS)
    );
    print_json_last(&PartialResult {
        scenario: "partial",
        records: n,
        matching,
        seconds: round_to(partial.0, 3),
        bytes: partial.1,
        bytes_ratio_to_full_10k: round_to(ratio, 3),
        admission_ms: round_to(admission_ms, 3),
    })
}
