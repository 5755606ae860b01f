//! `shoal status`: who this node is and what its database holds — site id,
//! peer id, db_version, per-collection live/deleted record counts, the
//! tombstones held (with the oldest one's age) and collected — and, when its
//! daemon runs, whether it is reachable from the internet and the WebSocket
//! addresses a browser tab dials.

use crate::datadir::DataDir;
use crate::output::{Output, pad};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use shoal::{CollectionStatus, Store};

/// `shoal status`.
pub fn run(data: &DataDir, store: &Store, out: &mut Output) -> Result<()> {
    let status = store.status().context("cannot read the store status")?;
    let tombstones = store.tombstones().context("cannot count tombstones")?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let oldest_age_ms = tombstones.oldest_ms.map(|t| now_ms.saturating_sub(t));
    let database = data.db_path();
    // Only a running daemon knows (AutoNAT probes through its relays).
    let node = crate::daemon_client::Daemon::find(data)
        .ok()
        .flatten()
        .and_then(|daemon| daemon.node().ok());
    let reachability = node
        .as_ref()
        .map(|node| node.reachability.clone())
        .filter(|r| !r.is_empty());
    // Where a browser tab (shoal-web's `store.connect`) dials this node.
    let websocket = node.map(|node| node.websocket).unwrap_or_default();
    if out.is_json() {
        out.json(&json!({
            "database": database,
            "site_id": status.site.to_string(),
            "peer_id": status.peer_id,
            "db_version": status.db_version.0,
            "reachability": reachability,
            "websocket": websocket,
            "collections": counts_json(&status.collections),
            "tombstones": {
                "held": tombstones.held,
                "oldest_age_ms": oldest_age_ms,
                "collected": tombstones.collected,
            },
        }))?;
        return Ok(());
    }
    out.line(format_args!("database    {}", database.display()))?;
    out.line(format_args!("site id     {}", status.site))?;
    out.line(format_args!("peer id     {}", status.peer_id))?;
    out.line(format_args!("db_version  {}", status.db_version))?;
    if let Some(reachability) = &reachability {
        out.line(format_args!("reachable   {reachability}"))?;
    }
    for address in &websocket {
        out.line(format_args!("websocket   {address}"))?;
    }
    let oldest = match oldest_age_ms {
        Some(age) => format!(", oldest {} old", age_text(age)),
        None => String::new(),
    };
    out.line(format_args!(
        "tombstones  {} held{oldest}, {} collected (`shoal gc`)",
        tombstones.held, tombstones.collected
    ))?;
    if status.collections.is_empty() {
        out.line("collections (none)")?;
        return Ok(());
    }
    out.line("collections")?;
    print_counts(out, &status.collections, "  ")
}

/// An age in the largest whole unit: 3d, 5h, 12m, 40s.
fn age_text(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The collections with their counts, as JSON.
pub fn counts_json(collections: &[CollectionStatus]) -> Value {
    collections
        .iter()
        .map(|c| json!({"name": c.name.as_str(), "live": c.live, "deleted": c.deleted}))
        .collect()
}

/// One aligned line per collection: name, live and deleted counts.
pub fn print_counts(
    out: &mut Output,
    collections: &[CollectionStatus],
    indent: &str,
) -> Result<()> {
    let width = collections
        .iter()
        .map(|c| c.name.as_str().len())
        .max()
        .unwrap_or(0);
    for c in collections {
        out.line(format_args!(
            "{indent}{}  {} live  {} deleted",
            pad(c.name.as_str(), width),
            c.live,
            c.deleted
        ))?;
    }
    Ok(())
}
