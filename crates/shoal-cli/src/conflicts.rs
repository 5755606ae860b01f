//! `shoal conflicts`: this node's conflict journal — values that lost a
//! merge to a concurrent edit on another machine — newest first, as text
//! lines or the HTTP API's JSON shape.
//!
//! This module owns the command's arguments (`--since` as a duration back
//! from now) and how an entry is shown; what is a conflict, and the
//! journal's bounds, are the library's. It never writes: restoring a value
//! is an ordinary `shoal patch` (or `shoal map set`).

use crate::output::{Output, TEXT_VALUE_MAX, hint, shorten};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use shoal::{CollectionName, ConflictQuery, ConflictSide, JournalledConflict, Slot, Store};
use shoal_server::api::ConflictInfo;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Entries listed unless `--limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

/// Arguments of `conflicts`.
#[derive(Debug, Args)]
pub struct ConflictsArgs {
    /// Only this collection's conflicts
    pub collection: Option<String>,
    /// Only conflicts journalled within this long before now (e.g. 30m, 2h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub since: Option<Duration>,
    /// At most this many entries, newest first (default 100)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=shoal::MAX_CONFLICTS_LISTED as u64))]
    pub limit: Option<u64>,
}

/// A duration back from now: `90s`, `30m`, `2h`, `7d` (a bare number is seconds).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    match text.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is not a duration (e.g. 30m, 2h, 7d)")),
        None => crate::node_args::parse_duration(text),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `shoal conflicts`.
pub fn run(store: &Store, args: ConflictsArgs, out: &mut Output) -> Result<()> {
    let collection = args
        .collection
        .as_deref()
        .map(CollectionName::new)
        .transpose()
        .map_err(|e| crate::exit::Usage(e.to_string()))?;
    let now = now_ms();
    let limit = args.limit.map_or(DEFAULT_LIMIT, |n| n as usize);
    let query = ConflictQuery {
        collection,
        since_ms: args.since.map(|d| now.saturating_sub(d.as_millis() as u64)),
        limit: Some(limit),
    };
    let entries = store
        .conflicts(&query)
        .context("cannot read the conflict journal")?;
    if out.is_json() {
        let shown: Vec<ConflictInfo> = entries.iter().map(ConflictInfo::from).collect();
        return Ok(out.json(&json!({ "conflicts": shown }))?);
    }
    if entries.is_empty() {
        hint("no conflicts journalled (values lost to a concurrent edit show here)");
        return Ok(());
    }
    for entry in &entries {
        for line in text(entry, now) {
            out.line(line)?;
        }
    }
    if entries.len() == limit {
        hint(format!(
            "the newest {limit} shown; more with --limit (up to {})",
            shoal::MAX_CONFLICTS_LISTED
        ));
    }
    Ok(())
}

/// Three lines per entry: when, where; the kept value; the lost value.
fn text(c: &JournalledConflict, now: u64) -> [String; 3] {
    let e = &c.entry;
    let slot = match &e.slot {
        Slot::Life => "(the record)".to_string(),
        Slot::Field(f) => format!(".{f}"),
        Slot::Entry(f, k) => format!(".{f}[{k}]"),
    };
    let age = Duration::from_secs(now.saturating_sub(e.at_ms) / 1000);
    [
        format!("{} ago  {}/{} {slot}", ago(age), e.collection, e.id),
        format!("  kept  {}", side(&e.kept)),
        format!("  lost  {}", side(&e.lost)),
    ]
}

fn side(side: &ConflictSide) -> String {
    let value = match &side.value {
        Some(v) => shorten(v.as_str(), TEXT_VALUE_MAX),
        None => "(removed)".to_string(),
    };
    format!("{value}  {}", side.clock)
}

/// `42s`, `5m`, `3h`, `2d`.
fn ago(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_days_and_the_usual_units() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert!(parse_age("xd").is_err());
        assert!(parse_age("3 weeks").is_err());
        assert_eq!(ago(Duration::from_secs(59)), "59s");
        assert_eq!(ago(Duration::from_secs(7200)), "2h");
    }
}
