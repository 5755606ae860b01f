//! The `conflict` scenario: two connected nodes, A and B, hold the same N
//! records; then both update every one of them at the same time — A sets
//! its own field `a_side` and the shared field `shared`, B sets `b_side`
//! and `shared` — and the time is taken from the start of the writes until
//! both replicas hold every update and are identical, over loopback with
//! authentication and frame MACs on.
//!
//! Each side's N patches run on a thread of their own, concurrently, while
//! the nodes push them live. Converged means: every record on both sides
//! holds A's `a_side` and B's `b_side` (the fields merged), and the two
//! replicas list exactly the same records and values (the shared field
//! settled the same way on both) — checked by listing both every few
//! milliseconds. The scenario fails if that does not happen within a
//! minute, or if a record's `shared` is neither side's write.

use crate::peers::{
    COLLECTION, filled_store, record_id, scratch_dir, start_node, wait_caught_up, wait_connected,
};
use crate::report::{per_second, print_json_last, rate, round_to};
use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use serde_json::{Value, json};
use shoal::{ListOptions, Store};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longest wait for the replicas to converge.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

/// Options of `shoal-bench conflict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records both sides update.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct ConflictResult {
    scenario: &'static str,
    records: u64,
    updates: u64,
    seconds: f64,
    updates_per_s: f64,
    writes_seconds: f64,
    identical: bool,
    shared_won_by_a: u64,
    shared_won_by_b: u64,
}

/// Every live record of the bench collection, in id order.
fn all_records(store: &Store) -> Result<Vec<(String, serde_json::Map<String, Value>)>> {
    let items = store.collection(COLLECTION)?;
    let mut options = ListOptions {
        limit: 1000,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = items.list(&options)?;
        out.extend(
            page.records
                .into_iter()
                .map(|(id, fields)| (id.to_string(), fields)),
        );
        match page.next {
            Some(next) => options.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Whether `records` holds every update of both sides.
fn holds_every_update(records: &[(String, serde_json::Map<String, Value>)], n: u64) -> bool {
    records.len() as u64 == n
        && records.iter().enumerate().all(|(i, (_, fields))| {
            fields.get("a_side") == Some(&json!(i)) && fields.get("b_side") == Some(&json!(i))
        })
}

/// Patches every record from `side` ("a" or "b"): its own field and the shared one.
fn update_all(store: &Store, side: &'static str, n: u64) -> Result<Duration> {
    let items = store.collection(COLLECTION)?;
    let start = Instant::now();
    for i in 0..n {
        items.patch(
            &record_id(i),
            json!({ format!("{side}_side"): i, "shared": format!("{side} {i}") }),
        )?;
    }
    Ok(start.elapsed())
}

/// The scenario.
pub fn run(args: &Args) -> Result<()> {
    let n = args.records;
    let temp = scratch_dir(args.dir.as_deref())?;
    println!(
        "conflict: A and B hold the same {n} records and both update all of them at once (A: a_side + shared, B: b_side + shared); until both hold every update and are identical; loopback, auth and MACs on"
    );
    let a = filled_store(&temp.path().join("a.db"), n)?;
    let b = Store::open(temp.path().join("b.db"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (seconds, writes_seconds, a_records, b_records) = runtime.block_on(async {
        let (node_a, address) = start_node(&a, vec![]).await?;
        let (node_b, _) = start_node(&b, vec![address]).await?;
        wait_connected(&node_a, &node_b, Duration::from_secs(30)).await?;
        wait_caught_up(
            &node_b,
            node_a.peer_id(),
            a.db_version(),
            Duration::from_secs(60),
        )
        .await?;
        println!("B holds A's {n} records (not measured)");

        let start = Instant::now();
        let writers = [(a.clone(), "a"), (b.clone(), "b")]
            .map(|(store, side)| tokio::task::spawn_blocking(move || update_all(&store, side, n)));
        let mut writes = Duration::ZERO;
        for writer in writers {
            writes = writes.max(writer.await??);
        }
        let converged = loop {
            let (on_a, on_b) = (all_records(&a)?, all_records(&b)?);
            if holds_every_update(&on_a, n) && on_a == on_b {
                break Some((start.elapsed(), on_a, on_b));
            }
            if start.elapsed() > CONVERGE_LIMIT {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        node_b.shutdown().await;
        node_a.shutdown().await;
        let (took, on_a, on_b) = converged
            .with_context(|| format!("A and B did not converge within {CONVERGE_LIMIT:?}"))?;
        Ok::<_, anyhow::Error>((took, writes, on_a, on_b))
    })?;
    // Checked again, apart from the loop's exit: both identical, every
    // shared field one side's write.
    let identical = a_records == b_records;
    ensure!(identical, "the replicas differ");
    let (mut by_a, mut by_b) = (0, 0);
    for (i, (id, fields)) in a_records.iter().enumerate() {
        match fields.get("shared").and_then(Value::as_str) {
            Some(v) if v == format!("a {i}") => by_a += 1,
            Some(v) if v == format!("b {i}") => by_b += 1,
            other => bail!("{id}: shared is {other:?}, neither side's write"),
        }
    }
    let updates = 2 * n;
    let per_s = per_second(updates, seconds);
    println!(
        "both sides wrote their {n} updates in {:.3}s; converged and identical {:.3}s after the start: {} updates",
        writes_seconds.as_secs_f64(),
        seconds.as_secs_f64(),
        rate(per_s)
    );
    println!("the shared field went to A on {by_a} records, to B on {by_b} (last writer wins)");
    print_json_last(&ConflictResult {
        scenario: "conflict",
        records: n,
        updates,
        seconds: round_to(seconds.as_secs_f64(), 4),
        updates_per_s: round_to(per_s, 0),
        writes_seconds: round_to(writes_seconds.as_secs_f64(), 4),
        identical,
        shared_won_by_a: by_a,
        shared_won_by_b: by_b,
    })
}
