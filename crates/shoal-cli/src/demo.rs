//! `shoal demo`: three replicas in one process write concurrently — including
//! conflicting edits, a delete racing an edit, and map-entry adds — then
//! exchange their change logs and show that all three converge to the same
//! records and clocks.
//!
//! Until the network layer lands, the exchange is direct (each replica reads
//! the others' change logs from its cursor and merges them); it uses exactly
//! the seam sync will use: `changes_since` and `apply`. This module owns the
//! demo script and its output only.

use anyhow::{Context, Result, bail};
use serde_json::json;
use shoal::{Change, DbVersion, Store};
use std::path::Path;

struct Replica {
    name: &'static str,
    store: Store,
    /// For each other replica (by index): the last of its versions merged here.
    cursors: Vec<DbVersion>,
}

/// Runs the demo in `dir` (a fresh temporary directory when `None`).
pub fn run(dir: Option<&Path>) -> Result<()> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = dir.unwrap_or(temp.path());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let names = ["laptop", "desktop", "server"];
    let mut replicas = Vec::new();
    for name in names {
        let path = dir.join(format!("{name}.db"));
        let _ = std::fs::remove_file(&path);
        let store =
            Store::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        println!("{name:>8}: site {} — {}", store.site_id(), path.display());
        replicas.push(Replica {
            name,
            store,
            cursors: vec![DbVersion(0); names.len()],
        });
    }

    println!("\n1. Every replica writes while disconnected:");
    let [laptop, desktop, server] = [0, 1, 2].map(|i| &replicas[i].store);
    for (store, owner) in [(laptop, "laptop"), (desktop, "desktop"), (server, "server")] {
        store.collection("tasks")?.put(
            &format!("{owner}-1"),
            json!({"title": format!("written on {owner}"), "done": false}),
        )?;
    }
    laptop.collection("tasks")?.put(
        "shared",
        json!({"title": "plan trip", "done": false, "owner": "ana"}),
    )?;
    laptop
        .collection("tasks")?
        .put("old", json!({"title": "obsolete"}))?;
    println!("   laptop creates tasks 'shared' and 'old'; everyone syncs before editing them:");
    exchange(&mut replicas)?;
    let [laptop, desktop, server] = [0, 1, 2].map(|i| &replicas[i].store);
    laptop
        .collection("tasks")?
        .patch("shared", json!({"title": "plan trip to Lisbon"}))?;
    desktop
        .collection("tasks")?
        .patch("shared", json!({"done": true}))?;
    server
        .collection("tasks")?
        .patch("shared", json!({"owner": "bo"}))?;
    println!("   shared: laptop edits the title, desktop marks it done, server reassigns it");
    laptop.collection("tasks")?.delete("old")?;
    desktop
        .collection("tasks")?
        .patch("old", json!({"title": "still needed?"}))?;
    println!("   old:    laptop deletes it while desktop edits it");
    let board = shoal::derive_id("board", "team")?;
    for (store, tag) in [(laptop, "travel"), (desktop, "home"), (server, "infra")] {
        store
            .collection("notes")?
            .map_set(board.as_str(), "tags", tag, json!(true))?;
    }
    println!("   {board}: each adds a different tag to the same map field");

    println!("\n2. They exchange change logs:");
    let rounds = exchange(&mut replicas)?;
    println!("   converged after {rounds} exchange rounds");

    println!("\n3. Every replica now holds:");
    let mut digests = Vec::new();
    for replica in &replicas {
        let tasks = replica.store.collection("tasks")?;
        let shared = tasks.get("shared")?.map(serde_json::Value::Object);
        let old = tasks.get("old")?;
        let tags = replica
            .store
            .collection("notes")?
            .get(board.as_str())?
            .map(|r| r["tags"].clone());
        let digest = state_digest(&replica.store)?;
        println!(
            "   {:>8}: shared = {}",
            replica.name,
            shared.unwrap_or_default()
        );
        println!(
            "   {:>8}  old = {}, tags = {}, state digest {digest}",
            "",
            if old.is_some() { "alive" } else { "deleted" },
            tags.unwrap_or_default()
        );
        digests.push(digest);
    }
    if digests.windows(2).any(|w| w[0] != w[1]) {
        bail!("replicas did not converge: digests {digests:?}");
    }
    println!("\nAll replicas hold identical records and per-field clocks.");
    Ok(())
}

/// Every replica merges what it has not seen from every other, until nothing changes.
fn exchange(replicas: &mut [Replica]) -> Result<usize> {
    for round in 1.. {
        let mut changed = false;
        for to in 0..replicas.len() {
            for from in 0..replicas.len() {
                if from == to {
                    continue;
                }
                let since = replicas[to].cursors[from];
                let batch: Vec<Change> = replicas[from]
                    .store
                    .changes_since(since)
                    .collect::<Result<_, _>>()?;
                let Some(last) = batch.last() else { continue };
                let upto = last.position.version;
                let report = replicas[to].store.apply(&batch)?;
                replicas[to].cursors[from] = upto;
                if report.version.is_some() {
                    changed = true;
                    println!(
                        "   {} <- {}: {} changes, {} applied, {} already known or superseded",
                        replicas[to].name,
                        replicas[from].name,
                        batch.len(),
                        report.applied,
                        report.not_newer + report.stale
                    );
                }
            }
        }
        if !changed {
            return Ok(round);
        }
    }
    unreachable!("the loop returns")
}

/// A digest of every slot version (value, clock, life) the replica holds.
fn state_digest(store: &Store) -> Result<String> {
    let mut lines: Vec<String> = store
        .changes_since(DbVersion(0))
        .map(|c| {
            c.map(|c| {
                format!(
                    "{} {} {:?} {:?} {} {}",
                    c.collection, c.id, c.slot, c.value, c.clock, c.life
                )
            })
        })
        .collect::<Result<_, _>>()?;
    lines.sort();
    Ok(blake3::hash(lines.join("\n").as_bytes()).to_hex()[..16].to_string())
}
